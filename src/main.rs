//! The `arbitrage` command line. Only this binary prints; the library reports through return
//! values and `tracing`.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    if prints_tables(&args.command) {
        stop_quietly_on_a_closed_pipe();
    }
    cli::init_logging(args.verbose);
    match cli::dispatch(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Commands that print tables to stdout and talk to no server: what a user pipes into `head`.
fn prints_tables(command: &cli::Command) -> bool {
    use cli::Command::*;
    matches!(
        command,
        Report(_) | Grade(_) | TrainRouter(_) | TrainHeads(_)
    )
}

/// `arbitrage report DIR | head` should end quietly when `head` has read enough, as other
/// command-line tools do, rather than panic in `println!`. Rust ignores SIGPIPE by default, so a
/// write to a closed pipe is an error that `println!` turns into a panic; the default action
/// ends the process instead. Only for [`prints_tables`]: `serve` and runs against remote
/// servers keep Rust's default, where a closed socket is an error to handle, never a signal.
fn stop_quietly_on_a_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in `main`, before any thread exists; restoring a signal's
    // default disposition touches no memory of ours.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
