//! `stompkit`: talk to a STOMP broker from a shell, and load-test one.
//!
//! - `stompkit send DEST [BODY|-]` sends one message and (by default) waits for
//!   the broker's RECEIPT, so exit status 0 means the broker has it.
//! - `stompkit sub DEST` prints messages as they arrive (body, `-v` with headers,
//!   `--json` one object a line).
//! - `stompkit bench` is a load generator for any STOMP broker (throughput and
//!   publish-to-delivery latency); `stompkit bench idle` holds many idle sessions.
//! - `stompkit admin` asks a stompkit-broker's admin API (`--admin-url`, not
//!   `--url`): overview, connections, queues, topics and subscriptions as
//!   tables (`--json`: the API's JSON as it came), purge or delete a queue,
//!   disconnect a client, peek at a queue's messages.
//!
//! `--url` takes `stomp://`, `stomp+ssl://`, `ws://` and `wss://` (TLS trusts
//! `--ca-file` when given, else the system's root certificates; a build without
//! the `tls` feature refuses TLS URLs with one line); every scheme is opened
//! through `stompkit_ws::connector`. `send` and `sub` take several `--url`s:
//! they connect to the first that answers, and `sub` fails over to the next
//! (reporting it on stderr) when its connection is lost. Run
//! `stompkit <command> --help` for every option.

mod admin;
mod args;
mod bench;
mod client;
mod send;
mod sub;
mod transport;

use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use std::process::ExitCode;

/// Send, receive and benchmark STOMP messages; operate a stompkit-broker.
///
/// send, sub and bench take --url (default stomp://127.0.0.1:61613, or
/// $STOMPKIT_URL) and --login/--passcode; admin takes --admin-url (default
/// http://127.0.0.1:61680, or $STOMPKIT_ADMIN_URL). Errors are reported as one
/// line on stderr with a non-zero exit status.
#[derive(Parser, Debug)]
#[command(name = "stompkit", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Send one message. Waits for the broker's RECEIPT (exit 0 = the broker has
    /// it); an ERROR or a timeout exits non-zero with one line on stderr.
    ///
    /// Example: stompkit send /queue/orders '{"id":7}' --content-type application/json
    Send(send::SendArgs),
    /// Subscribe and print messages as they arrive (body only; -v whole frames;
    /// --json one JSON object a line). Stops after --count messages or on Ctrl-C.
    ///
    /// Example: stompkit sub /topic/news --json --count 10
    Sub(sub::SubArgs),
    /// Measure a broker: publishers and subscribers over TCP, TLS or WebSocket,
    /// reporting msg/s, MB/s and publish-to-delivery latency percentiles.
    ///
    /// Example: stompkit bench --mode topic -p 1 -s 10 --size 256 --count 1000000
    Bench(Box<bench::BenchArgs>),
    /// Ask a stompkit-broker's admin API (--admin-url, default
    /// http://127.0.0.1:61680): overview, connections, queues, topics,
    /// subscriptions as tables (--json: the API's JSON); purge or delete a
    /// queue, disconnect a client, peek at a queue's messages.
    ///
    /// Example: stompkit admin queues; stompkit admin purge orders
    Admin(admin::AdminArgs),
}

fn main() -> ExitCode {
    raise_open_file_limit();
    let matches = Cli::command().get_matches();
    let cli =
        Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut Cli::command()).exit());
    let result = match cli.command {
        Command::Send(args) => send::run(args),
        Command::Sub(args) => sub::run(args),
        Command::Bench(args) => bench::run(*args),
        Command::Admin(args) => admin::run(args, matches.subcommand_matches("admin")),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("stompkit: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A multi-threaded tokio runtime with `threads` workers (default: one per CPU).
pub(crate) fn runtime(threads: Option<usize>) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = threads {
        builder.worker_threads(threads.max(1));
    }
    Ok(builder.enable_all().build()?)
}

/// Raises the soft RLIMIT_NOFILE to the hard limit (many connections need many
/// descriptors); failure only matters once connections fail, so it is not fatal.
fn raise_open_file_limit() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
}
