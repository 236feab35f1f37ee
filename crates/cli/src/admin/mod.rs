//! `stompkit admin`: the broker's admin API from a shell.
//!
//! Owns the `admin` command line (`--admin-url`, credentials, `--json`, one
//! subcommand per API call) and what each subcommand asks the admin listener
//! (`stompkit-broker --admin ADDR`). Which login and secret to send is
//! `credentials.rs`'s. Speaking HTTP and turning a failure into
//! one line is `http.rs`'s; readable tables are `show.rs`'s (with `table.rs`),
//! and every text from the broker they print is made safe for a terminal by
//! `printable.rs`.
//! With `--json` the API's JSON is printed as it came.

mod credentials;
mod http;
mod printable;
mod show;
mod table;

use anyhow::Result;
use clap::{ArgMatches, Args, Subcommand};
use credentials::Given;
use http::{AdminClient, Answer};
use std::path::PathBuf;
use std::process::ExitCode;

/// Options of `stompkit admin`.
#[derive(Args, Debug)]
pub struct AdminArgs {
    /// The broker's admin listener (stompkit-broker --admin ADDR): http:// or
    /// https:// (--url stays the STOMP address and is not used here).
    #[arg(
        long,
        global = true,
        env = "STOMPKIT_ADMIN_URL",
        default_value = "http://127.0.0.1:61680"
    )]
    pub admin_url: String,
    /// User name (a user with admin = true), with --passcode or --token. Not
    /// needed on a loopback admin address.
    #[arg(long, global = true, env = "STOMPKIT_LOGIN")]
    pub login: Option<String>,
    /// The user's password (over https://, or plain http:// on loopback only).
    /// Without a login, $STOMPKIT_PASSCODE is not used.
    #[arg(long, global = true, env = "STOMPKIT_PASSCODE", hide_env_values = true)]
    pub passcode: Option<String>,
    /// A signed token for the user (v1.EXPIRY.SIGNATURE, as for STOMP logins);
    /// wins over a passcode from the environment.
    #[arg(long, global = true, env = "STOMPKIT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// PEM file with the CA certificate(s) that signed the admin listener's
    /// certificate, for https://. Without it the system's root certificates
    /// are trusted.
    #[arg(long, global = true, value_name = "PEM", env = "STOMPKIT_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Print the API's JSON as it came (for scripts) instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to ask or do.
    #[command(subcommand)]
    pub command: AdminCommand,
}

/// One admin API call.
#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Version, uptime, counts and message rates.
    Overview,
    /// Every connection: peer, login, transport, subscriptions, messages in/out.
    Connections,
    /// Every queue: ready and unacknowledged messages, consumers, bytes.
    Queues,
    /// Every topic with subscribers or durable subscriptions.
    Topics,
    /// Every subscription, live and durable.
    Subscriptions,
    /// Drop a queue's ready messages (unacknowledged ones stay).
    Purge {
        /// The queue: its name after /queue/ (or the whole /queue/... name).
        name: String,
    },
    /// Delete a queue: its consumers get ERROR and are disconnected.
    DeleteQueue {
        /// The queue: its name after /queue/ (or the whole /queue/... name).
        name: String,
    },
    /// Remove a durable subscription for good (its subscriber gets ERROR).
    DeleteSubscription {
        /// Its id, as `stompkit admin subscriptions` shows it.
        id: String,
    },
    /// Disconnect a client (it gets ERROR "closed by administrator").
    Kick {
        /// The connection's id, as `stompkit admin connections` shows it.
        id: u64,
    },
    /// Show a queue's first messages without consuming them.
    Peek {
        /// The queue: its name after /queue/ (or the whole /queue/... name).
        name: String,
        /// How many messages (1 to 1000).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
        count: u32,
    },
}

/// Runs `stompkit admin`; `matches` (the `admin` subcommand's) tell which
/// options came from the command line rather than the environment.
pub fn run(a: AdminArgs, matches: Option<&ArgMatches>) -> Result<ExitCode> {
    let credentials = credentials::resolve(
        Given::of(a.login.as_deref(), matches, "login"),
        Given::of(a.passcode.as_deref(), matches, "passcode"),
        Given::of(a.token.as_deref(), matches, "token"),
    )?;
    let client = AdminClient::new(&a.admin_url, credentials.as_ref(), a.ca_file.as_deref())?;
    let answer = ask(&client, &a.command)?;
    if a.json {
        if !answer.body.is_empty() {
            println!("{}", answer.body.trim_end());
        }
    } else {
        print!("{}", show::render(&a.command, &answer)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// Sends the request `command` stands for.
fn ask(client: &AdminClient, command: &AdminCommand) -> Result<Answer> {
    match command {
        AdminCommand::Overview => client.get("/api/overview"),
        AdminCommand::Connections => client.get("/api/connections"),
        AdminCommand::Queues => client.get("/api/queues"),
        AdminCommand::Topics => client.get("/api/topics"),
        AdminCommand::Subscriptions => client.get("/api/subscriptions"),
        AdminCommand::Purge { name } => {
            client.delete(&format!("/api/queues/{}/contents", queue_segment(name)))
        }
        AdminCommand::DeleteQueue { name } => {
            client.delete(&format!("/api/queues/{}", queue_segment(name)))
        }
        AdminCommand::DeleteSubscription { id } => {
            client.delete(&format!("/api/subscriptions/{}", path_segment(id)))
        }
        AdminCommand::Kick { id } => client.delete(&format!("/api/connections/{id}")),
        AdminCommand::Peek { name, count } => client.get(&format!(
            "/api/queues/{}/messages?count={count}",
            queue_segment(name)
        )),
    }
}

/// A queue's name as the API's path names it: what follows `/queue/`,
/// URL-encoded.
fn queue_segment(name: &str) -> String {
    path_segment(queue_name(name))
}

/// A queue's name after `/queue/` (given with or without the prefix).
fn queue_name(name: &str) -> &str {
    name.strip_prefix("/queue/").unwrap_or(name)
}

/// `text` as one URL path segment: every byte but the unreserved ones
/// (RFC 3986: letters, digits, `-._~`) percent-encoded.
fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_one_encoded_path_segment() {
        assert_eq!(queue_segment("orders"), "orders");
        assert_eq!(queue_segment("/queue/orders"), "orders");
        assert_eq!(queue_segment("a/b c?é"), "a%2Fb%20c%3F%C3%A9");
        assert_eq!(
            path_segment("durable/alice//s%"),
            "durable%2Falice%2F%2Fs%25"
        );
        assert_eq!(path_segment("7/sub-0.x_~"), "7%2Fsub-0.x_~");
    }
}
