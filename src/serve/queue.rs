//! The bounded queue and the worker threads that run the speculation loop.
//!
//! Each worker takes one request at a time and runs [`solve_observed`] on it, sending every
//! decided step to the request's channel as it is decided. The loop's interruption check is
//! "has the request's receiver gone?", so a client that disconnects (or an answer cut by a stop
//! string) ends the loop at the next step, and the loop's own clean-up frees the problem's KV
//! cache.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::mpsc::UnboundedSender;

use super::api::{ApiError, Endpoint, Generation};
use super::metrics::Metrics;
use super::{ModelSet, ServerSettings};
use crate::backend::EngineError;
use crate::method::speculate::{Solution, SolveError, StepSink, Task, TraceStep, solve};

/// What a worker tells a request, in this order: `Started` (or `Failed`), then `Step`s, then
/// `Finished` or `Failed`.
#[derive(Debug)]
pub enum Event {
    /// A worker took the request; the prompt fits.
    Started {
        prompt_tokens: Option<usize>,
    },
    Step {
        index: usize,
        step: TraceStep,
    },
    Finished(Box<Solution>),
    Failed(ApiError),
}

/// A request waiting for a worker.
pub struct Job {
    /// Numbers the request as a problem for the engines' caches.
    pub id: u64,
    pub generation: Generation,
    pub events: UnboundedSender<Event>,
}

/// The sending side of the queue.
pub struct Queue {
    sender: Mutex<Option<SyncSender<Job>>>,
    capacity: usize,
    concurrency: usize,
    metrics: Arc<Metrics>,
}

/// The worker threads; [`Workers::join`] waits for them once the queue is closed.
pub struct Workers(Vec<JoinHandle<()>>);

impl Workers {
    pub fn join(self) {
        for handle in self.0 {
            let _ = handle.join();
        }
    }
}

impl Queue {
    /// Starts `settings.concurrency` workers behind a queue of `settings.queue` places.
    pub fn start(
        models: Arc<dyn ModelSet>,
        settings: &ServerSettings,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<(Queue, Workers)> {
        // A zero-capacity channel is a rendezvous: a request is taken only by an idle worker.
        let (sender, receiver) = sync_channel::<Job>(settings.queue);
        let receiver = Arc::new(Mutex::new(receiver));
        let mut handles = Vec::new();
        for n in 0..settings.concurrency.max(1) {
            let worker = Worker {
                models: Arc::clone(&models),
                receiver: Arc::clone(&receiver),
                metrics: Arc::clone(&metrics),
                context_window: settings.context_window,
            };
            handles.push(
                std::thread::Builder::new()
                    .name(format!("serve-worker-{n}"))
                    .spawn(move || worker.run())?,
            );
        }
        Ok((
            Queue {
                sender: Mutex::new(Some(sender)),
                capacity: settings.queue,
                concurrency: settings.concurrency.max(1),
                metrics,
            },
            Workers(handles),
        ))
    }

    /// Queues a request, or refuses it at once when the queue is full.
    pub fn submit(&self, job: Job) -> Result<(), ApiError> {
        let guard = self.sender.lock().unwrap_or_else(|e| e.into_inner());
        let Some(sender) = guard.as_ref() else {
            return Err(ApiError::unavailable("the server is shutting down"));
        };
        // Counted before sending: a worker may take the job (and count it down) at once.
        self.metrics.queue_depth.inc();
        match sender.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                self.metrics.queue_depth.dec();
                Err(ApiError::queue_full(self.capacity, self.retry_after()))
            }
            Err(TrySendError::Disconnected(_)) => {
                self.metrics.queue_depth.dec();
                Err(ApiError::unavailable("the workers have stopped"))
            }
        }
    }

    /// Seconds until a place is likely free: the queue ahead, at the mean time a worker spends
    /// on a request.
    fn retry_after(&self) -> u64 {
        let mean = self.metrics.mean_solve_seconds().unwrap_or(1.0);
        let ahead = (self.capacity + self.concurrency) as f64 / self.concurrency as f64;
        (mean * ahead).ceil().clamp(1.0, 600.0) as u64
    }

    /// Takes no more requests; workers finish what is queued and stop.
    pub fn close(&self) {
        self.sender.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

struct Worker {
    models: Arc<dyn ModelSet>,
    receiver: Arc<Mutex<Receiver<Job>>>,
    metrics: Arc<Metrics>,
    context_window: Option<u32>,
}

impl Worker {
    fn run(self) {
        loop {
            let job = {
                let receiver = self.receiver.lock().unwrap_or_else(|e| e.into_inner());
                match receiver.recv() {
                    Ok(job) => job,
                    Err(_) => return,
                }
            };
            self.metrics.queue_depth.dec();
            if job.events.is_closed() {
                // The client left while its request waited.
                self.metrics
                    .solves
                    .with_label_values(&["interrupted"])
                    .inc();
                continue;
            }
            self.metrics.in_flight.inc();
            let started = Instant::now();
            let events = job.events.clone();
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| self.solve(job)));
            self.metrics
                .solve_seconds
                .observe(started.elapsed().as_secs_f64());
            self.metrics.in_flight.dec();
            if outcome.is_err() {
                self.metrics.solves.with_label_values(&["failed"]).inc();
                let _ = events.send(Event::Failed(ApiError::internal(
                    "the speculation loop panicked; see the server log",
                )));
            }
        }
    }

    fn solve(&self, job: Job) {
        let g = &job.generation;
        let events = &job.events;
        let prompt_tokens = self.models.count_tokens(&g.prompt);
        if let (Some(tokens), Some(window)) = (prompt_tokens, self.context_window)
            && tokens + 1 >= window as usize
        {
            self.metrics.solves.with_label_values(&["failed"]).inc();
            let _ = events.send(Event::Failed(ApiError::context_length(
                g.endpoint, tokens, window,
            )));
            return;
        }
        let _ = events.send(Event::Started { prompt_tokens });
        let mut limits = g.limits.clone();
        limits.step.sampling = limits.step.sampling.seeded_as_problem_zero(job.id);
        let task = Task {
            problem: job.id,
            question: &g.question,
            prompt: &g.prompt,
        };
        let mut sink = Streamer {
            events,
            metrics: &self.metrics,
            last: Instant::now(),
        };
        let models = self.models.models();
        let result = solve(&models, &task, g.rule.clone(), &limits, &mut sink);
        match result {
            Ok(solution) => {
                self.metrics.solved(&solution);
                let _ = events.send(Event::Finished(Box::new(solution)));
            }
            Err(SolveError::Interrupted) => {
                tracing::debug!(request = job.id, "stopped: the client no longer reads");
                self.metrics
                    .solves
                    .with_label_values(&["interrupted"])
                    .inc();
            }
            Err(e) => {
                self.metrics.solves.with_label_values(&["failed"]).inc();
                let _ = events.send(Event::Failed(failure(g.endpoint, &e)));
            }
        }
    }
}

/// A request's steps, streamed to its client as they are decided; a client that went away
/// stops the loop at the next step boundary.
struct Streamer<'a> {
    events: &'a UnboundedSender<Event>,
    metrics: &'a Metrics,
    last: Instant,
}

impl StepSink for Streamer<'_> {
    fn step_decided(&mut self, index: usize, step: &TraceStep) {
        self.metrics.step(step.model, self.last.elapsed());
        self.last = Instant::now();
        let _ = self.events.send(Event::Step {
            index,
            step: step.clone(),
        });
    }

    fn should_stop(&mut self) -> bool {
        self.events.is_closed()
    }
}

/// What a failed loop tells the client. A context that outgrew the window is the request's
/// doing (400); anything else is the server's (500), with the cause chain in the message.
fn failure(endpoint: Endpoint, e: &SolveError) -> ApiError {
    if let SolveError::Engine {
        source: EngineError::ContextFull { needed, n_ctx },
        ..
    } = e
    {
        return ApiError::context_length(endpoint, *needed, *n_ctx);
    }
    let mut message = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        message.push_str(&format!(": {c}"));
        cause = c.source();
    }
    tracing::warn!(error = %message, "a request failed");
    ApiError::internal(message)
}
