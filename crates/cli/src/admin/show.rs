//! What `stompkit admin` prints without `--json`: the API's answers as
//! aligned tables (lists), `name  value` lines (the overview), a short
//! sentence (changes) or the messages themselves (a peek); every text from
//! the broker with its control characters escaped (`printable.rs`).

use super::http::Answer;
use super::table::{Align, Table};
use super::{AdminCommand, printable, queue_name};
use anyhow::{Context as _, Result};
use serde::Deserialize;
use serde_json::Value;
use std::time::{SystemTime, UNIX_EPOCH};

/// The text to print for `command`'s answer.
pub fn render(command: &AdminCommand, answer: &Answer) -> Result<String> {
    let json = || -> Result<Value> {
        serde_json::from_str(&answer.body)
            .context("the admin listener's answer is not JSON (is --admin-url the admin listener?)")
    };
    Ok(match command {
        AdminCommand::Overview => overview(&json()?),
        AdminCommand::Connections => connections(&json()?),
        AdminCommand::Queues => queues(&json()?),
        AdminCommand::Topics => topics(&json()?),
        AdminCommand::Subscriptions => subscriptions(&json()?),
        AdminCommand::Purge { name } => {
            let purged = printable::line(&text(&json()?, "purged"));
            let name = printable::line(queue_name(name));
            format!("purged {purged} message(s) from /queue/{name}\n")
        }
        AdminCommand::DeleteQueue { name } => {
            format!("deleted /queue/{}\n", printable::line(queue_name(name)))
        }
        AdminCommand::DeleteSubscription { id } => {
            format!("deleted subscription {}\n", printable::line(id))
        }
        AdminCommand::Kick { id } => format!("closed connection {id}\n"),
        AdminCommand::Peek { name, .. } => {
            let messages: Vec<Peeked> = serde_json::from_str(&answer.body)
                .context("the admin listener's answer is not a list of messages")?;
            peek(queue_name(name), &messages)
        }
    })
}

/// `/api/overview` as `name  value` lines.
fn overview(v: &Value) -> String {
    let rate = |key: &str| {
        let r = v
            .get("rates")
            .and_then(|r| r.get(key))
            .and_then(Value::as_f64);
        r.map_or_else(String::new, |r| format!(" ({r:.1}/s)"))
    };
    let uptime = v.get("uptime_s").and_then(Value::as_u64).map(duration);
    let mut lines = vec![
        ("version", text(v, "version")),
        ("uptime", uptime.unwrap_or_default()),
        ("connections", text(v, "connections")),
        ("subscriptions", text(v, "subscriptions")),
        ("queues", text(v, "queues")),
        ("topics", text(v, "topics")),
        (
            "published",
            text(v, "messages_published") + &rate("published_per_s"),
        ),
        (
            "delivered",
            text(v, "messages_delivered") + &rate("delivered_per_s"),
        ),
    ];
    if let Some(cluster) = v.get("cluster").filter(|c| !c.is_null()) {
        lines.push(("cluster", cluster_state(cluster)));
    }
    let mut t = Table::new(&[("", Align::Left), ("", Align::Left)]);
    for (name, value) in lines {
        t.row(vec![name.to_owned(), value]);
    }
    // The title row is blank: leave it out.
    t.render().trim_start_matches('\n').to_owned()
}

/// The overview's `cluster`: this node and whether NATS is reachable.
fn cluster_state(c: &Value) -> String {
    let reach = match c.get("connected").and_then(Value::as_bool) {
        Some(true) => "NATS connected",
        _ => "NATS UNREACHABLE",
    };
    format!("node {}, {reach}", text(c, "node"))
}

/// `/api/connections` as a table.
fn connections(v: &Value) -> String {
    let (l, r) = (Align::Left, Align::Right);
    let mut t = Table::new(&[
        ("ID", r),
        ("PEER", l),
        ("LOGIN", l),
        ("VERSION", l),
        ("TRANSPORT", l),
        ("SUBS", r),
        ("IN", r),
        ("OUT", r),
        ("PENDING", r),
        ("CONNECTED", r),
    ]);
    let now = now_ms();
    for c in items(v) {
        let since = c.get("connected_at").and_then(Value::as_u64);
        let age = since.map(|t| duration(now.saturating_sub(t) / 1000) + " ago");
        t.row(vec![
            text(c, "id"),
            text(c, "peer"),
            text(c, "login"),
            text(c, "version"),
            text(c, "transport"),
            text(c, "subscriptions"),
            text(c, "messages_in"),
            text(c, "messages_out"),
            text(c, "pending_bytes"),
            age.unwrap_or_default(),
        ]);
    }
    t.render()
}

/// `/api/queues` as a table.
fn queues(v: &Value) -> String {
    let (l, r) = (Align::Left, Align::Right);
    let mut t = Table::new(&[
        ("NAME", l),
        ("READY", r),
        ("UNACKED", r),
        ("CONSUMERS", r),
        ("BYTES", r),
        ("DURABLE", l),
    ]);
    for q in items(v) {
        t.row(vec![
            text(q, "name"),
            text(q, "ready"),
            text(q, "unacked"),
            text(q, "consumers"),
            text(q, "bytes"),
            text(q, "durable"),
        ]);
    }
    t.render()
}

/// `/api/topics` as a table.
fn topics(v: &Value) -> String {
    let (l, r) = (Align::Left, Align::Right);
    let mut t = Table::new(&[
        ("NAME", l),
        ("SUBSCRIBERS", r),
        ("DURABLE SUBSCRIPTIONS", r),
    ]);
    for topic in items(v) {
        t.row(vec![
            match text(topic, "destination") {
                d if d.is_empty() => text(topic, "name"),
                d => d,
            },
            text(topic, "subscribers"),
            text(topic, "durable_subscriptions"),
        ]);
    }
    t.render()
}

/// `/api/subscriptions` as a table.
fn subscriptions(v: &Value) -> String {
    let (l, r) = (Align::Left, Align::Right);
    let mut t = Table::new(&[
        ("ID", l),
        ("CONNECTION", r),
        ("DESTINATION", l),
        ("ACK", l),
        ("UNACKED", r),
        ("DURABLE", l),
        ("SELECTOR", l),
    ]);
    for s in items(v) {
        t.row(vec![
            text(s, "id"),
            text(s, "connection"),
            text(s, "destination"),
            text(s, "ack"),
            text(s, "unacked"),
            text(s, "durable"),
            text(s, "selector"),
        ]);
    }
    t.render()
}

/// One message of a peek, its headers in the order the API wrote them.
#[derive(Debug, Deserialize)]
struct Peeked {
    headers: Headers,
    #[serde(default)]
    body: String,
    body_len: Option<u64>,
}

/// A JSON object of header names and values, kept in order.
#[derive(Debug, Default)]
struct Headers(Vec<(String, String)>);

impl<'de> Deserialize<'de> for Headers {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Headers, D::Error> {
        struct InOrder;
        impl<'de> serde::de::Visitor<'de> for InOrder {
            type Value = Headers;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of header names and values")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Headers, A::Error> {
                let mut headers = Vec::new();
                while let Some((name, value)) = map.next_entry::<String, Value>()? {
                    let value = value
                        .as_str()
                        .map_or_else(|| value.to_string(), str::to_owned);
                    headers.push((name, value));
                }
                Ok(Headers(headers))
            }
        }
        d.deserialize_map(InOrder)
    }
}

/// A peek: each message's headers and the start of its body.
fn peek(queue: &str, messages: &[Peeked]) -> String {
    let queue = printable::line(queue);
    if messages.is_empty() {
        return format!("no ready messages in /queue/{queue}\n");
    }
    let mut out = String::new();
    for (i, m) in messages.iter().enumerate() {
        let shown = match m.body_len {
            Some(len) if len > m.body.len() as u64 => format!("{len} bytes, the first shown"),
            Some(len) => format!("{len} bytes"),
            None => String::new(),
        };
        out.push_str(&format!("--- message {} ({shown})\n", i + 1));
        for (name, value) in &m.headers.0 {
            let (name, value) = (printable::line(name), printable::line(value));
            out.push_str(&format!("{name}:{value}\n"));
        }
        out.push('\n');
        let body = printable::body(&m.body);
        out.push_str(&body);
        if !body.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// The objects of a JSON list (none if `v` is not one).
fn items(v: &Value) -> Vec<&Value> {
    v.as_array().map(|a| a.iter().collect()).unwrap_or_default()
}

/// A field as table text: strings as they are, numbers, `yes`/`no`, `-` for null.
fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) => "-".to_owned(),
        Some(Value::Bool(b)) => if *b { "yes" } else { "no" }.to_owned(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// A duration in seconds as `3d 4h`, `4h 5m`, `5m 6s` or `6s`.
fn duration(s: u64) -> String {
    let (d, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// Now, in ms since the Unix epoch.
fn now_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn queues_are_a_table() {
        let v = json!([
            {"name": "orders", "destination": "/queue/orders", "ready": 12, "unacked": 0,
             "consumers": 1, "durable": true, "bytes": 3400},
            {"name": "a", "destination": "/queue/a", "ready": 0, "unacked": 3,
             "consumers": 0, "durable": false, "bytes": 0}
        ]);
        assert_eq!(
            queues(&v),
            "NAME    READY  UNACKED  CONSUMERS  BYTES  DURABLE\n\
             orders     12        0          1   3400  yes\n\
             a           0        3          0      0  no\n"
        );
    }

    #[test]
    fn subscriptions_show_null_as_a_dash() {
        let v = json!([{"id": "durable///s", "connection": null, "destination": "/topic/t",
            "ack": "client", "selector": "x > 1", "unacked": 0, "durable": true}]);
        let out = subscriptions(&v);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(
            lines[1].starts_with("durable///s           -  /topic/t     client"),
            "{out}"
        );
        assert!(lines[1].ends_with("yes      x > 1"), "{out}");
    }

    #[test]
    fn the_overview_is_name_value_lines() {
        let v = json!({"version": "0.1.0", "uptime_s": 3725, "connections": 3,
            "subscriptions": 4, "queues": 2, "topics": 1, "messages_published": 100,
            "messages_delivered": 98, "rates": {"published_per_s": 1.5, "delivered_per_s": 1.2},
            "history": []});
        let out = overview(&v);
        assert!(
            out.starts_with("version        0.1.0\nuptime         1h 2m\n"),
            "{out}"
        );
        assert!(out.contains("\npublished      100 (1.5/s)\n"), "{out}");
        assert!(out.ends_with("delivered      98 (1.2/s)\n"), "{out}");
        let mut v = v;
        v["cluster"] = json!({"node": "n1", "connected": false});
        let out = overview(&v);
        assert!(
            out.ends_with("cluster        node n1, NATS UNREACHABLE\n"),
            "{out}"
        );
    }

    #[test]
    fn a_peek_shows_headers_in_order_and_body() {
        let text = r#"[{"headers": {"destination": "/queue/q", "z": "1", "a": "2"},
            "body": "hi", "body_len": 2}, {"headers": {}, "body": "x", "body_len": 2000}]"#;
        let messages: Vec<Peeked> = serde_json::from_str(text).unwrap();
        assert_eq!(
            peek("q", &messages),
            "--- message 1 (2 bytes)\ndestination:/queue/q\nz:1\na:2\n\nhi\n\
             --- message 2 (2000 bytes, the first shown)\n\nx\n"
        );
        assert_eq!(peek("q", &[]), "no ready messages in /queue/q\n");
    }

    #[test]
    fn client_text_is_escaped_in_tables_and_peeks() {
        let v = json!([{"name": "q\nfake 9 9 9", "destination": "/queue/q\nfake 9 9 9",
            "ready": 1, "unacked": 0, "consumers": 0, "durable": false, "bytes": 5}]);
        let out = queues(&v);
        assert_eq!(out.lines().count(), 2, "{out}");
        assert!(out.contains("\nq\\nfake 9 9 9      1"), "{out}");
        let v = json!([{"id": 7, "peer": "127.0.0.1:5", "login": "\u{1b}]0;owned\u{7}",
            "version": "1.2", "transport": "tcp", "subscriptions": 0, "messages_in": 0,
            "messages_out": 0, "pending_bytes": 0, "connected_at": 0}]);
        let out = connections(&v);
        assert!(out.contains("  \\x1b]0;owned\\x07  1.2"), "{out}");
        let v = json!([{"id": "7/s\u{9b}", "connection": 7, "destination": "/topic/t",
            "ack": "auto", "selector": "a = '\u{1b}[31m'", "unacked": 0, "durable": false}]);
        let out = subscriptions(&v);
        assert!(out.contains("\n7/s\\u{9b}  "), "{out}");
        assert!(out.ends_with("a = '\\x1b[31m'\n"), "{out}");
        assert!(!out.contains('\u{1b}') && !out.contains('\u{9b}'), "{out}");

        let text = r#"[{"headers": {"destination": "/queue/a\nb", "x\u001b[2J": "1\r\n2"},
            "body": "line 1\n\tline 2\u001b[2J\\", "body_len": 19}]"#;
        let messages: Vec<Peeked> = serde_json::from_str(text).unwrap();
        assert_eq!(
            peek("a\nb", &messages),
            "--- message 1 (19 bytes)\ndestination:/queue/a\\nb\nx\\x1b[2J:1\\r\\n2\n\n\
             line 1\n\tline 2\\x1b[2J\\\n"
        );
        assert_eq!(peek("a\u{1b}", &[]), "no ready messages in /queue/a\\x1b\n");
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(duration(5), "5s");
        assert_eq!(duration(65), "1m 5s");
        assert_eq!(duration(3725), "1h 2m");
        assert_eq!(duration(90_000), "1d 1h");
    }
}
