//! The `Origin` check of the opening handshake.
//!
//! Owns deciding whether a browser page from a given origin may open a
//! connection ([`origin_allowed`]). WebSocket has no same-origin policy, so
//! without this check any web site a user visits could talk to a broker the user
//! can reach (cross-site WebSocket hijacking).

use crate::config::{OriginPolicy, WsServerConfig};

/// Whether a handshake with this `Origin` and `Host` is accepted under `config`:
///
/// - [`OriginPolicy::Any`], or `Auto` on a loopback listener: always;
/// - otherwise: a missing Origin (a non-browser client), an Origin naming the
///   request's own `Host` (same host and port, the port defaulting from the
///   scheme: 80 for `http`/`ws`, 443 for `https`/`wss`), or one listed in
///   [`WsServerConfig::allowed_origins`] (`*` lists every origin). The opaque
///   origin `null` is accepted only when listed.
///
/// ```
/// use stompkit_ws::{WsServerConfig, origin_allowed};
/// let config = WsServerConfig::new("10.0.0.5:61614".parse().unwrap())
///     .allow_origin("https://app.example.com");
/// assert!(origin_allowed(&config, None, Some("10.0.0.5:61614")));
/// assert!(origin_allowed(&config, Some("http://10.0.0.5:61614"), Some("10.0.0.5:61614")));
/// assert!(origin_allowed(&config, Some("https://APP.example.com"), Some("10.0.0.5:61614")));
/// assert!(!origin_allowed(&config, Some("https://evil.example"), Some("10.0.0.5:61614")));
/// ```
pub fn origin_allowed(config: &WsServerConfig, origin: Option<&str>, host: Option<&str>) -> bool {
    let any = match config.origin_policy {
        OriginPolicy::Any => true,
        OriginPolicy::Auto => config.is_loopback(),
        OriginPolicy::Strict => false,
    };
    let Some(origin) = origin else { return true };
    if any {
        return true;
    }
    let origin = origin.trim();
    if config
        .allowed_origins
        .iter()
        .any(|allowed| allowed == "*" || same_origin(allowed, origin))
    {
        return true;
    }
    match (parse_origin(origin), host) {
        (Some((scheme, o_host, o_port)), Some(host)) => {
            let Some((h_host, h_port)) = split_host_port(host.trim()) else {
                return false;
            };
            let h_port = h_port.or_else(|| default_port(scheme));
            o_host.eq_ignore_ascii_case(h_host) && Some(o_port) == h_port
        }
        _ => false,
    }
}

/// Two serialized origins equal after normalisation (case, default port,
/// trailing slash).
fn same_origin(a: &str, b: &str) -> bool {
    match (parse_origin(a.trim()), parse_origin(b)) {
        (Some((sa, ha, pa)), Some((sb, hb, pb))) => {
            sa.eq_ignore_ascii_case(sb) && ha.eq_ignore_ascii_case(hb) && pa == pb
        }
        _ => a.trim().eq_ignore_ascii_case(b),
    }
}

/// `scheme://host[:port]` → (scheme, host, port with the scheme's default).
fn parse_origin(origin: &str) -> Option<(&str, &str, u16)> {
    let (scheme, rest) = origin.split_once("://")?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest.contains(['/', '@', '?', '#']) {
        return None;
    }
    let (host, port) = split_host_port(rest)?;
    let port = port.or_else(|| default_port(scheme))?;
    Some((scheme, host, port))
}

/// `host[:port]`, with `[v6]` literals; `None` on a malformed port.
fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if let Some(v6) = s.strip_prefix('[') {
        let (addr, rest) = v6.split_once(']')?;
        return match rest {
            "" => Some((addr, None)),
            _ => Some((addr, Some(rest.strip_prefix(':')?.parse().ok()?))),
        };
    }
    match s.rsplit_once(':') {
        Some((host, port)) => Some((host, Some(port.parse().ok()?))),
        None => Some((s, None)),
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public() -> WsServerConfig {
        WsServerConfig::new("192.0.2.1:8080".parse().unwrap())
    }

    #[test]
    fn own_host_needs_matching_port() {
        let c = public();
        assert!(origin_allowed(
            &c,
            Some("http://broker.example:8080"),
            Some("broker.example:8080")
        ));
        assert!(!origin_allowed(
            &c,
            Some("http://broker.example:9090"),
            Some("broker.example:8080")
        ));
        assert!(origin_allowed(
            &c,
            Some("http://broker.example"),
            Some("broker.example")
        ));
        assert!(origin_allowed(
            &c,
            Some("https://broker.example"),
            Some("broker.example:443")
        ));
        // A Host without port takes the Origin scheme's default (TLS or not is not known here).
        assert!(origin_allowed(
            &c,
            Some("https://broker.example"),
            Some("broker.example")
        ));
        assert!(!origin_allowed(
            &c,
            Some("http://broker.example:8080"),
            Some("broker.example")
        ));
        assert!(origin_allowed(
            &c,
            Some("http://[::1]:8080"),
            Some("[::1]:8080")
        ));
        assert!(!origin_allowed(
            &c,
            Some("http://evil.example:8080"),
            Some("broker.example:8080")
        ));
        assert!(!origin_allowed(
            &c,
            Some("http://broker.example:8080"),
            None
        ));
    }

    #[test]
    fn null_and_garbage_refused_unless_listed() {
        let c = public();
        assert!(!origin_allowed(&c, Some("null"), Some("broker.example")));
        assert!(!origin_allowed(
            &c,
            Some("http://user@broker.example"),
            Some("broker.example")
        ));
        let c = c.allow_origin("null");
        assert!(origin_allowed(&c, Some("null"), Some("broker.example")));
        let c = public().allow_origin("*");
        assert!(origin_allowed(&c, Some("https://anything.example"), None));
    }

    #[test]
    fn listed_origins_normalised() {
        let c = public().allow_origin("https://app.example.com:443/");
        assert!(origin_allowed(
            &c,
            Some("https://App.Example.com"),
            Some("x")
        ));
        assert!(!origin_allowed(
            &c,
            Some("http://app.example.com"),
            Some("x")
        ));
    }

    #[test]
    fn loopback_and_policies() {
        let lo = WsServerConfig::new("127.0.0.1:0".parse().unwrap());
        assert!(origin_allowed(
            &lo,
            Some("https://evil.example"),
            Some("127.0.0.1:1")
        ));
        let strict = lo.clone().origin_policy(OriginPolicy::Strict);
        assert!(!origin_allowed(
            &strict,
            Some("https://evil.example"),
            Some("127.0.0.1:1")
        ));
        assert!(origin_allowed(&strict, None, None));
        let any = public().origin_policy(OriginPolicy::Any);
        assert!(origin_allowed(&any, Some("https://evil.example"), None));
        // No local address known: treated as not loopback.
        assert!(!origin_allowed(
            &WsServerConfig::default(),
            Some("http://e.example"),
            Some("h")
        ));
    }
}
