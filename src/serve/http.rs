//! Routes, answers, Server-Sent Events, and graceful shutdown.
//!
//! A generation request is validated, queued, and answered once a worker takes it: errors that
//! show before the first step (a prompt too long for the context window) still get a plain 4xx.
//! A streamed answer sends one chunk per decided step; a non-streamed one collects them.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use super::answer::Answer;
use super::api::{self, ApiError, Ending, Endpoint, Generation};
use super::metrics::Metrics;
use super::queue::{Event, Job, Queue, Workers};
use super::{ModelSet, ServerSettings};
use crate::method::speculate::TraceStep;

/// A started server: its queue, workers and metrics, not yet listening.
pub struct Server {
    app: App,
    workers: Workers,
}

#[derive(Clone)]
struct App(Arc<Inner>);

struct Inner {
    settings: ServerSettings,
    queue: Queue,
    metrics: Arc<Metrics>,
    next_id: AtomicU64,
}

impl Server {
    /// Starts the workers.
    pub fn start(models: Arc<dyn ModelSet>, settings: ServerSettings) -> std::io::Result<Server> {
        let metrics = Arc::new(Metrics::new());
        let (queue, workers) = Queue::start(models, &settings, Arc::clone(&metrics))?;
        Ok(Server {
            app: App(Arc::new(Inner {
                settings,
                queue,
                metrics,
                next_id: AtomicU64::new(1),
            })),
            workers,
        })
    }

    /// Serves on `listener` until `shutdown` resolves, then lets in-flight requests finish,
    /// stops the workers and returns.
    pub async fn run(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Server { app, workers } = self;
        let routes = routes(app.clone());
        axum::serve(listener, routes)
            .with_graceful_shutdown(shutdown)
            .await?;
        app.0.queue.close();
        tokio::task::spawn_blocking(move || workers.join())
            .await
            .map_err(std::io::Error::other)?;
        Ok(())
    }
}

fn routes(app: App) -> Router {
    let limit = app.0.settings.max_body_bytes;
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/completions", post(completions))
        .route("/v1/models", get(models))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(app)
}

async fn chat_completions(State(app): State<App>, body: Result<Bytes, BytesRejection>) -> Response {
    generate(app, Endpoint::Chat, body).await
}

async fn completions(State(app): State<App>, body: Result<Bytes, BytesRejection>) -> Response {
    generate(app, Endpoint::Completions, body).await
}

async fn models(State(app): State<App>) -> Response {
    axum::Json(json!({
        "object": "list",
        "data": [{
            "id": app.0.settings.model_name,
            "object": "model",
            "created": 0,
            "owned_by": "arbitrage",
        }],
    }))
    .into_response()
}

async fn health(State(app): State<App>) -> Response {
    let m = &app.0.metrics;
    axum::Json(json!({
        "status": "ok",
        "queue_depth": m.queue_depth.get(),
        "in_flight": m.in_flight.get(),
    }))
    .into_response()
}

async fn metrics(State(app): State<App>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.0.metrics.render(),
    )
        .into_response()
}

async fn not_found() -> Response {
    ApiError::not_found(
        "no such route; see /v1/chat/completions, /v1/completions, /v1/models, /health, /metrics",
    )
    .into_response()
}

/// Counts a request once: with its status when answered, as 499 when the client went first.
struct Record {
    metrics: Arc<Metrics>,
    endpoint: &'static str,
    started: Instant,
    done: bool,
}

impl Record {
    fn finish(&mut self, status: StatusCode) {
        if !self.done {
            self.done = true;
            self.metrics
                .request(self.endpoint, status.as_u16(), self.started.elapsed());
        }
    }

    fn fail(&mut self, error: ApiError) -> Response {
        self.finish(error.status);
        error.into_response()
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        if !self.done {
            self.done = true;
            self.metrics
                .request(self.endpoint, 499, self.started.elapsed());
        }
    }
}

/// One request's answer in the making.
struct Reply {
    app: App,
    generation: Generation,
    id: String,
    created: u64,
    record: Record,
    answer: Answer,
    steps: Vec<TraceStep>,
    prompt_tokens: usize,
}

async fn generate(app: App, endpoint: Endpoint, body: Result<Bytes, BytesRejection>) -> Response {
    let mut record = Record {
        metrics: Arc::clone(&app.0.metrics),
        endpoint: endpoint.label(),
        started: Instant::now(),
        done: false,
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let status = rejection.status();
            let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "body_too_large"
            } else {
                "invalid_body"
            };
            return record.fail(
                ApiError::invalid(None, rejection.body_text())
                    .with_status(status)
                    .with_code(code),
            );
        }
    };
    let settings = &app.0.settings;
    let parsed = match endpoint {
        Endpoint::Chat => api::chat_request(&body, settings),
        Endpoint::Completions => api::completion_request(&body, settings),
    };
    let generation = match parsed {
        Ok(g) => g,
        Err(e) => return record.fail(e),
    };
    let number = app.0.next_id.fetch_add(1, Ordering::Relaxed);
    let (events, mut rx) = unbounded_channel();
    if let Err(e) = app.0.queue.submit(Job {
        id: number,
        generation: generation.clone(),
        events,
    }) {
        return record.fail(e);
    }
    let prompt_tokens = match rx.recv().await {
        Some(Event::Started { prompt_tokens }) => prompt_tokens.unwrap_or(0),
        Some(Event::Failed(e)) => return record.fail(e),
        _ => return record.fail(ApiError::internal("the worker stopped without answering")),
    };
    let prefix = match endpoint {
        Endpoint::Chat => "chatcmpl",
        Endpoint::Completions => "cmpl",
    };
    let reply = Reply {
        id: format!("{prefix}-{number}"),
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        answer: Answer::new(generation.stops.clone()),
        app,
        generation,
        record,
        steps: Vec::new(),
        prompt_tokens,
    };
    if reply.generation.stream {
        stream(reply, rx)
    } else {
        collect(reply, rx).await
    }
}

impl Reply {
    /// Takes a decided step; returns the text to send now.
    fn step(&mut self, step: TraceStep) -> String {
        if self.steps.is_empty() {
            self.app
                .0
                .metrics
                .first_step_seconds
                .observe(self.record.started.elapsed().as_secs_f64());
        }
        let text = self.answer.push(&step.text);
        self.steps.push(step);
        text
    }

    fn usage(&self) -> Value {
        api::usage(self.prompt_tokens, &self.steps)
    }
}

async fn collect(mut reply: Reply, mut rx: UnboundedReceiver<Event>) -> Response {
    let (ending, solution) = loop {
        match rx.recv().await {
            Some(Event::Step { step, .. }) => {
                reply.step(step);
                if reply.answer.stopped() {
                    break (Ending::StopString, None);
                }
            }
            Some(Event::Finished(solution)) => {
                break (Ending::Solved(solution.stop), Some(solution));
            }
            Some(Event::Failed(e)) => return reply.record.fail(e),
            Some(Event::Started { .. }) => {}
            None => {
                return reply
                    .record
                    .fail(ApiError::internal("the worker stopped without answering"));
            }
        }
    };
    // A stop string ended the answer: the worker sees the channel close and stops.
    drop(rx);
    reply.answer.finish();
    let g = &reply.generation;
    let extension = api::summary(g, &reply.steps, ending, solution.as_deref(), true);
    let body = api::completion_body(
        g,
        &reply.id,
        reply.created,
        reply.answer.text(),
        ending.finish_reason(),
        reply.usage(),
        extension,
    );
    reply.record.finish(StatusCode::OK);
    axum::Json(body).into_response()
}

/// Where a stream is.
struct Streaming {
    reply: Reply,
    rx: UnboundedReceiver<Event>,
    pending: VecDeque<SseEvent>,
    finished: bool,
}

fn data(value: &Value) -> SseEvent {
    SseEvent::default().data(value.to_string())
}

impl Streaming {
    /// Reads the worker's next event and turns it into SSE events.
    async fn advance(&mut self) {
        let event = self.rx.recv().await;
        let reply = &mut self.reply;
        let first = reply.steps.is_empty();
        match event {
            Some(Event::Step { index, step }) => {
                let extension = api::step_extension(index, &step);
                let text = reply.step(step);
                let chunk = api::chunk_body(
                    &reply.generation,
                    &reply.id,
                    reply.created,
                    Some(&text),
                    first,
                    None,
                    extension,
                );
                self.pending.push_back(data(&chunk));
                if reply.answer.stopped() {
                    self.end(Ending::StopString, None);
                }
            }
            Some(Event::Finished(solution)) => {
                let rest = reply.answer.finish();
                if !rest.is_empty() {
                    let chunk = api::chunk_body(
                        &reply.generation,
                        &reply.id,
                        reply.created,
                        Some(&rest),
                        first,
                        None,
                        json!({}),
                    );
                    self.pending.push_back(data(&chunk));
                }
                self.end(Ending::Solved(solution.stop), Some(&solution));
            }
            Some(Event::Started { .. }) => {}
            Some(Event::Failed(e)) => {
                reply.record.finish(e.status);
                self.pending.push_back(data(&e.body()));
                self.pending.push_back(SseEvent::default().data("[DONE]"));
                self.finished = true;
            }
            None => {
                let e = ApiError::internal("the worker stopped without answering");
                reply.record.finish(e.status);
                self.pending.push_back(data(&e.body()));
                self.pending.push_back(SseEvent::default().data("[DONE]"));
                self.finished = true;
            }
        }
    }

    fn end(&mut self, ending: Ending, solution: Option<&crate::method::speculate::Solution>) {
        let reply = &mut self.reply;
        let g = &reply.generation;
        let extension = api::summary(g, &reply.steps, ending, solution, false);
        let last = api::chunk_body(
            g,
            &reply.id,
            reply.created,
            None,
            reply.steps.is_empty(),
            Some(ending.finish_reason()),
            extension,
        );
        self.pending.push_back(data(&last));
        if g.include_usage {
            let usage = api::usage_chunk(g, &reply.id, reply.created, reply.usage());
            self.pending.push_back(data(&usage));
        }
        self.pending.push_back(SseEvent::default().data("[DONE]"));
        reply.record.finish(StatusCode::OK);
        self.finished = true;
        // A stop string ended the answer: closing the channel stops the worker.
        self.rx.close();
    }
}

fn stream(reply: Reply, rx: UnboundedReceiver<Event>) -> Response {
    let state = Streaming {
        reply,
        rx,
        pending: VecDeque::new(),
        finished: false,
    };
    let events = futures_util::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(event) = state.pending.pop_front() {
                return Some((Ok::<_, Infallible>(event), state));
            }
            if state.finished {
                return None;
            }
            state.advance().await;
        }
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}
