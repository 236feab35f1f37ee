//! Which endpoint a request names, and whether its method fits.
//!
//! Owns the admin listener's paths (the dashboard's files, `/metrics`,
//! `/healthz` and `/api/...`), the methods each takes (`GET`, with `HEAD`
//! for the same headers, and `DELETE`; a wrong one is a 405 with `Allow`),
//! the percent-decoding of `{name}` and `{id}` segments, and the rule that a
//! `POST` carries `Content-Type: application/json` (415 otherwise; no
//! endpoint takes one, so a JSON `POST` gets its 405). Unknown paths are 404.

use super::reply::Reply;
use super::request::{Request, decode};
use super::{Admin, api, pages};

/// An endpoint, with its decoded path parameter.
#[derive(Debug, PartialEq, Eq)]
enum Endpoint {
    /// A dashboard file.
    File(&'static pages::File),
    /// `/metrics`.
    Metrics,
    /// `/healthz`.
    Health,
    /// `/api/overview`.
    Overview,
    /// `/api/connections`.
    Connections,
    /// `/api/connections/{id}`.
    Connection(String),
    /// `/api/queues`.
    Queues,
    /// `/api/queues/{name}`.
    Queue(String),
    /// `/api/queues/{name}/contents`.
    QueueContents(String),
    /// `/api/queues/{name}/messages`.
    QueueMessages(String),
    /// `/api/topics`.
    Topics,
    /// `/api/subscriptions`.
    Subscriptions,
    /// `/api/subscriptions/{id}`.
    Subscription(String),
}

/// Reading methods.
const GET: &str = "GET, HEAD";
/// Reading and deleting.
const GET_DELETE: &str = "GET, HEAD, DELETE";
/// Deleting only.
const DELETE: &str = "DELETE";

impl Endpoint {
    /// The endpoint at `path`: `Ok(None)` when there is none, `Err` (400)
    /// when a parameter is badly percent-encoded.
    fn at(path: &str) -> Result<Option<Endpoint>, Reply> {
        if let Some(file) = pages::file(path) {
            return Ok(Some(Endpoint::File(file)));
        }
        let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
        let param = |raw: &str| -> Result<String, Reply> { decode(raw) };
        let endpoint = match segments[..] {
            ["metrics"] => Endpoint::Metrics,
            ["healthz"] => Endpoint::Health,
            ["api", "overview"] => Endpoint::Overview,
            ["api", "connections"] => Endpoint::Connections,
            ["api", "connections", id] if !id.is_empty() => Endpoint::Connection(param(id)?),
            ["api", "queues"] => Endpoint::Queues,
            ["api", "queues", name] if !name.is_empty() => Endpoint::Queue(param(name)?),
            ["api", "queues", name, "contents"] if !name.is_empty() => {
                Endpoint::QueueContents(param(name)?)
            }
            ["api", "queues", name, "messages"] if !name.is_empty() => {
                Endpoint::QueueMessages(param(name)?)
            }
            ["api", "topics"] => Endpoint::Topics,
            ["api", "subscriptions"] => Endpoint::Subscriptions,
            ["api", "subscriptions", id] if !id.is_empty() => Endpoint::Subscription(param(id)?),
            _ => return Ok(None),
        };
        Ok(Some(endpoint))
    }

    /// The methods it takes (the `Allow` value).
    fn allow(&self) -> &'static str {
        match self {
            Endpoint::Queue(_) => GET_DELETE,
            Endpoint::Connection(_) | Endpoint::QueueContents(_) | Endpoint::Subscription(_) => {
                DELETE
            }
            _ => GET,
        }
    }
}

/// Answers an admitted request (the security check is done).
pub(super) async fn route(admin: &Admin, request: &Request) -> Reply {
    answer(admin, request)
        .await
        .unwrap_or_else(|refusal| refusal)
}

async fn answer(admin: &Admin, request: &Request) -> Result<Reply, Reply> {
    if request.method == "POST" && !is_json(request.header("content-type")) {
        return Err(Reply::error(
            415,
            "a POST needs Content-Type: application/json",
        ));
    }
    let endpoint = Endpoint::at(&request.path)?.ok_or_else(|| Reply::error(404, "not found"))?;
    let reading = matches!(request.method.as_str(), "GET" | "HEAD");
    let deleting = request.method == "DELETE";
    let allow = endpoint.allow();
    if !(reading && allow.contains("GET") || deleting && allow.contains("DELETE")) {
        return Err(Reply::method_not_allowed(allow));
    }
    match endpoint {
        Endpoint::File((_, content_type, body)) => Ok(Reply::page(content_type, body)),
        Endpoint::Metrics => Ok(pages::metrics(admin).await),
        Endpoint::Health => Ok(pages::health(admin)),
        Endpoint::Overview => api::overview(admin).await,
        Endpoint::Connections => api::connections(admin).await,
        Endpoint::Connection(id) => api::kick(admin, &id).await,
        Endpoint::Queues => api::queues(admin).await,
        Endpoint::Queue(name) if deleting => api::delete_queue(admin, name).await,
        Endpoint::Queue(name) => api::queue(admin, name).await,
        Endpoint::QueueContents(name) => api::purge(admin, name).await,
        Endpoint::QueueMessages(name) => api::peek(admin, name, request).await,
        Endpoint::Topics => api::topics(admin).await,
        Endpoint::Subscriptions => api::subscriptions(admin).await,
        Endpoint::Subscription(id) => api::delete_subscription(admin, id).await,
    }
}

/// Whether a `Content-Type` is JSON (`application/json`, parameters allowed).
fn is_json(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(path: &str) -> Option<Endpoint> {
        Endpoint::at(path).unwrap()
    }

    #[test]
    fn paths_and_parameters() {
        assert!(matches!(
            at("/"),
            Some(Endpoint::File(("/", "text/html; charset=utf-8", _)))
        ));
        assert!(matches!(
            at("/admin.js"),
            Some(Endpoint::File(("/admin.js", _, _)))
        ));
        assert_eq!(at("/api/overview"), Some(Endpoint::Overview));
        assert_eq!(
            at("/api/queues/a%2Fb%20c"),
            Some(Endpoint::Queue("a/b c".into()))
        );
        assert_eq!(
            at("/api/queues/q/messages"),
            Some(Endpoint::QueueMessages("q".into()))
        );
        assert_eq!(
            at("/api/subscriptions/7%2Fsub-0"),
            Some(Endpoint::Subscription("7/sub-0".into()))
        );
        for unknown in [
            "/api",
            "/api/",
            "/api/queues/",
            "/api/queues//contents",
            "/api/queues/q/other",
            "/api/overview/x",
            "/index.html",
            "",
        ] {
            assert_eq!(at(unknown), None, "{unknown:?}");
        }
        assert_eq!(Endpoint::at("/api/queues/%zz").unwrap_err().status, 400);
    }

    #[test]
    fn methods_per_endpoint() {
        assert_eq!(Endpoint::Queue("q".into()).allow(), "GET, HEAD, DELETE");
        assert_eq!(Endpoint::QueueContents("q".into()).allow(), "DELETE");
        assert_eq!(Endpoint::Queues.allow(), "GET, HEAD");
    }

    #[test]
    fn json_content_types() {
        assert!(is_json(Some("application/json")));
        assert!(is_json(Some("Application/JSON; charset=utf-8")));
        for other in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
        ] {
            assert!(!is_json(other), "{other:?}");
        }
    }
}
