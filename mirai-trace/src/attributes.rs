//! Span attributes derived from a mirai URL and a compute profile (the OpenTelemetry
//! `server.*` / `network.transport` conventions and mirai's own `mirai.*` keys).

use opentelemetry::KeyValue;

/// The `server.address`, `server.port` and `network.transport` attributes of a mirai URL:
/// host and port for `tcp://` and `tls+tcp://`, the path or name for `ipc://` and
/// `abstract://`; the transport is the scheme.
pub fn url_attributes(url: &str) -> Vec<KeyValue> {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let mut v = vec![KeyValue::new("network.transport", scheme.to_string())];
    if scheme.ends_with("tcp") || scheme.starts_with("ws") {
        let authority = rest.split('/').next().unwrap_or(rest);
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() && (!h.contains(':') || h.ends_with(']')) => {
                (h, p.parse::<u16>().ok())
            }
            _ => (authority, None),
        };
        v.push(KeyValue::new(
            "server.address",
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
        ));
        if let Some(p) = port {
            v.push(KeyValue::new("server.port", i64::from(p)));
        }
    } else {
        v.push(KeyValue::new("server.address", rest.to_string()));
    }
    v
}

/// The URL's attributes and the profile's `mirai.dispatcher` and `mirai.compute`.
pub(crate) fn profile_attributes(url: &str, dispatcher: bool, compute: &str) -> Vec<KeyValue> {
    let mut v = url_attributes(url);
    v.push(KeyValue::new("mirai.dispatcher", dispatcher));
    v.push(KeyValue::new("mirai.compute", compute.to_string()));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(url: &str) -> Vec<(String, String)> {
        url_attributes(url)
            .into_iter()
            .map(|kv| (kv.key.to_string(), kv.value.to_string()))
            .collect()
    }

    #[test]
    fn url_attributes_follow_the_scheme() {
        let kv = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(
            attrs("tcp://127.0.0.1:5555"),
            vec![
                kv("network.transport", "tcp"),
                kv("server.address", "127.0.0.1"),
                kv("server.port", "5555")
            ]
        );
        assert_eq!(
            attrs("tls+tcp://[::1]:40000"),
            vec![
                kv("network.transport", "tls+tcp"),
                kv("server.address", "::1"),
                kv("server.port", "40000")
            ]
        );
        assert_eq!(
            attrs("tcp://hostname"),
            vec![
                kv("network.transport", "tcp"),
                kv("server.address", "hostname")
            ]
        );
        assert_eq!(
            attrs("abstract://mirai-x"),
            vec![
                kv("network.transport", "abstract"),
                kv("server.address", "mirai-x")
            ]
        );
        assert_eq!(
            attrs("ipc:///tmp/s"),
            vec![
                kv("network.transport", "ipc"),
                kv("server.address", "/tmp/s")
            ]
        );
    }
}
