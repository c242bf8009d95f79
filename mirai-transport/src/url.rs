//! Parsing and display of mirai URLs.
//!
//! Forms: `ipc:///absolute/path`, `ipc://relative/path`, `abstract://name`,
//! `tcp://host:port`, `tls+tcp://host:port`, `ws://host:port/path` and `wss://host:port/path`
//! (the path is optional, default `/`), where `host` is an IPv4 address, a host name,
//! a bracketed IPv6 address (`[::1]`), or empty / `*` for every interface (listening only).
use crate::Error;
use std::path::PathBuf;

/// Longest socket path or abstract name Linux accepts: `sun_path` is 108 bytes, one of which
/// is the terminating NUL (or, for abstract names, the leading NUL).
pub(crate) const MAX_UNIX_PATH: usize = 107;

/// The transport a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    /// `ipc:///absolute/path` or `ipc://relative`: a Unix socket file.
    Ipc(std::path::PathBuf),
    /// `abstract://name`: a Linux abstract Unix socket.
    Abstract(String),
    /// `tcp://host:port`.
    Tcp {
        /// Host name or IP (IPv6 without brackets).
        host: String,
        /// Port; 0 asks for an ephemeral one when listening.
        port: u16,
    },
    /// `tls+tcp://host:port`.
    TlsTcp {
        /// Host name or IP (IPv6 without brackets).
        host: String,
        /// Port.
        port: u16,
    },
    /// `ws://host:port/path`: WebSocket over TCP.
    Ws {
        /// Host name or IP (IPv6 without brackets).
        host: String,
        /// Port; 0 asks for an ephemeral one when listening.
        port: u16,
        /// The HTTP path, starting with `/` (default `/`).
        path: String,
    },
    /// `wss://host:port/path`: WebSocket over TLS (native backend).
    Wss {
        /// Host name or IP (IPv6 without brackets).
        host: String,
        /// Port; 0 asks for an ephemeral one when listening.
        port: u16,
        /// The HTTP path, starting with `/` (default `/`).
        path: String,
    },
}

impl Scheme {
    /// The scheme's name as written before `://`.
    pub fn name(&self) -> &'static str {
        match self {
            Scheme::Ipc(_) => "ipc",
            Scheme::Abstract(_) => "abstract",
            Scheme::Tcp { .. } => "tcp",
            Scheme::TlsTcp { .. } => "tls+tcp",
            Scheme::Ws { .. } => "ws",
            Scheme::Wss { .. } => "wss",
        }
    }
}

/// A parsed URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// What it names.
    pub scheme: Scheme,
}

impl Url {
    /// The same URL with its TCP port replaced (used to report an ephemeral port once bound).
    /// URLs without a port are returned unchanged.
    pub fn with_port(&self, new_port: u16) -> Url {
        let scheme = match &self.scheme {
            Scheme::Tcp { host, .. } => Scheme::Tcp {
                host: host.clone(),
                port: new_port,
            },
            Scheme::TlsTcp { host, .. } => Scheme::TlsTcp {
                host: host.clone(),
                port: new_port,
            },
            Scheme::Ws { host, path, .. } => Scheme::Ws {
                host: host.clone(),
                port: new_port,
                path: path.clone(),
            },
            Scheme::Wss { host, path, .. } => Scheme::Wss {
                host: host.clone(),
                port: new_port,
                path: path.clone(),
            },
            other => other.clone(),
        };
        Url { scheme }
    }

    /// True for an empty or `*` host: every interface (only meaningful when listening).
    pub fn is_wildcard_host(&self) -> bool {
        match &self.scheme {
            Scheme::Tcp { host, .. }
            | Scheme::TlsTcp { host, .. }
            | Scheme::Ws { host, .. }
            | Scheme::Wss { host, .. } => host.is_empty() || host == "*",
            _ => false,
        }
    }
}

fn invalid(url: &str, reason: impl Into<String>) -> Error {
    Error::InvalidUrl {
        url: url.to_string(),
        reason: reason.into(),
    }
}

/// Splits `host:port` (host possibly bracketed IPv6) and validates both.
fn parse_host_port(url: &str, rest: &str) -> Result<(String, u16), Error> {
    if rest.contains('/') || rest.contains('?') || rest.contains('#') {
        return Err(invalid(
            url,
            "a TCP address takes no path, query or fragment: use host:port",
        ));
    }
    let (host, port_text) = if let Some(after) = rest.strip_prefix('[') {
        let close = after
            .find(']')
            .ok_or_else(|| invalid(url, "missing ']' after the bracketed IPv6 address"))?;
        let host = &after[..close];
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(invalid(
                url,
                format!("'{host}' is not a valid IPv6 address"),
            ));
        }
        let tail = &after[close + 1..];
        let port = tail
            .strip_prefix(':')
            .ok_or_else(|| invalid(url, "missing port: write [address]:port"))?;
        (host, port)
    } else {
        let colon = rest
            .rfind(':')
            .ok_or_else(|| invalid(url, "missing port: write host:port"))?;
        let host = &rest[..colon];
        if host.contains(':') {
            return Err(invalid(
                url,
                "an IPv6 address must be in brackets, as in tcp://[::1]:5555",
            ));
        }
        (host, &rest[colon + 1..])
    };
    if port_text.is_empty() {
        return Err(invalid(url, "missing port number after ':'"));
    }
    if !port_text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(
            url,
            format!("bad port '{port_text}': not a number"),
        ));
    }
    let port: u16 = port_text
        .parse()
        .map_err(|_| invalid(url, format!("bad port '{port_text}': must be 0 to 65535")))?;
    if host.chars().any(|c| c.is_whitespace() || c == '@') {
        return Err(invalid(url, format!("bad host '{host}'")));
    }
    Ok((host.to_string(), port))
}

/// Splits `host:port/path` of a WebSocket URL.
fn parse_ws(url: &str, rest: &str) -> Result<(String, u16, String), Error> {
    let (addr, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if path.contains('?') || path.contains('#') || addr.contains('?') || addr.contains('#') {
        return Err(invalid(url, "a WebSocket URL takes no query or fragment"));
    }
    if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(invalid(
            url,
            "the path contains spaces or control characters",
        ));
    }
    let (host, port) = parse_host_port(url, addr)?;
    Ok((host, port, path.to_string()))
}

impl std::str::FromStr for Url {
    type Err = Error;
    fn from_str(s: &str) -> Result<Url, Error> {
        let (scheme, rest) = s.split_once("://").ok_or_else(|| {
            invalid(
                s,
                "missing scheme: expected ipc://, abstract://, tcp://, tls+tcp://, ws:// or wss://",
            )
        })?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "ipc" => {
                if rest.is_empty() {
                    return Err(invalid(s, "empty socket path"));
                }
                if rest.contains('\0') {
                    return Err(invalid(s, "socket path contains a NUL byte"));
                }
                if rest.len() > MAX_UNIX_PATH {
                    return Err(invalid(
                        s,
                        format!(
                            "socket path is {} bytes; Unix sockets allow at most {MAX_UNIX_PATH}",
                            rest.len()
                        ),
                    ));
                }
                Scheme::Ipc(PathBuf::from(rest))
            }
            "abstract" => {
                if rest.is_empty() {
                    return Err(invalid(s, "empty abstract socket name"));
                }
                if rest.len() > MAX_UNIX_PATH {
                    return Err(invalid(
                        s,
                        format!(
                            "abstract name is {} bytes; at most {MAX_UNIX_PATH} are allowed",
                            rest.len()
                        ),
                    ));
                }
                Scheme::Abstract(rest.to_string())
            }
            "tcp" => {
                let (host, port) = parse_host_port(s, rest)?;
                Scheme::Tcp { host, port }
            }
            "tls+tcp" => {
                let (host, port) = parse_host_port(s, rest)?;
                Scheme::TlsTcp { host, port }
            }
            "ws" => {
                let (host, port, path) = parse_ws(s, rest)?;
                Scheme::Ws { host, port, path }
            }
            "wss" => {
                let (host, port, path) = parse_ws(s, rest)?;
                Scheme::Wss { host, port, path }
            }
            other => {
                return Err(invalid(
                    s,
                    format!(
                        "unknown scheme '{other}': expected ipc, abstract, tcp, tls+tcp, ws or wss"
                    ),
                ))
            }
        };
        Ok(Url { scheme })
    }
}

fn fmt_host(f: &mut std::fmt::Formatter<'_>, host: &str) -> std::fmt::Result {
    if host.contains(':') {
        write!(f, "[{host}]")
    } else {
        f.write_str(host)
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.scheme {
            Scheme::Ipc(path) => write!(f, "ipc://{}", path.display()),
            Scheme::Abstract(name) => write!(f, "abstract://{name}"),
            Scheme::Tcp { host, port } => {
                f.write_str("tcp://")?;
                fmt_host(f, host)?;
                write!(f, ":{port}")
            }
            Scheme::TlsTcp { host, port } => {
                f.write_str("tls+tcp://")?;
                fmt_host(f, host)?;
                write!(f, ":{port}")
            }
            Scheme::Ws { host, port, path } | Scheme::Wss { host, port, path } => {
                f.write_str(self.scheme.name())?;
                f.write_str("://")?;
                fmt_host(f, host)?;
                write!(f, ":{port}{path}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Url {
        s.parse()
            .unwrap_or_else(|e| panic!("{s} should parse: {e}"))
    }

    fn reason(s: &str) -> String {
        match s.parse::<Url>() {
            Err(Error::InvalidUrl { url, reason }) => {
                assert_eq!(url, s, "the error names the URL");
                reason
            }
            other => panic!("{s} should be invalid, got {other:?}"),
        }
    }

    #[test]
    fn ipc_absolute_and_relative() {
        assert_eq!(
            parse("ipc:///tmp/x.sock").scheme,
            Scheme::Ipc("/tmp/x.sock".into())
        );
        assert_eq!(parse("ipc://rel/x").scheme, Scheme::Ipc("rel/x".into()));
        assert_eq!(parse("ipc:///tmp/x.sock").to_string(), "ipc:///tmp/x.sock");
        assert_eq!(parse("ipc://rel").to_string(), "ipc://rel");
    }

    #[test]
    fn abstract_name() {
        assert_eq!(
            parse("abstract://mirai-1").scheme,
            Scheme::Abstract("mirai-1".into())
        );
        assert_eq!(
            parse("abstract://mirai-1").to_string(),
            "abstract://mirai-1"
        );
    }

    #[test]
    fn tcp_forms() {
        assert_eq!(
            parse("tcp://127.0.0.1:5555").scheme,
            Scheme::Tcp {
                host: "127.0.0.1".into(),
                port: 5555
            }
        );
        assert_eq!(
            parse("tcp://localhost:0").scheme,
            Scheme::Tcp {
                host: "localhost".into(),
                port: 0
            }
        );
        assert_eq!(
            parse("tcp://[::1]:5555").scheme,
            Scheme::Tcp {
                host: "::1".into(),
                port: 5555
            }
        );
        assert_eq!(parse("tcp://[::1]:5555").to_string(), "tcp://[::1]:5555");
        assert_eq!(
            parse("tcp://host.example:80").to_string(),
            "tcp://host.example:80"
        );
        assert_eq!(
            parse("TCP://a:1").scheme,
            Scheme::Tcp {
                host: "a".into(),
                port: 1
            }
        );
        assert_eq!(
            parse("tls+tcp://h:443").scheme,
            Scheme::TlsTcp {
                host: "h".into(),
                port: 443
            }
        );
        assert_eq!(
            parse("tls+tcp://[fe80::1]:443").to_string(),
            "tls+tcp://[fe80::1]:443"
        );
    }

    #[test]
    fn ws_forms() {
        assert_eq!(
            parse("ws://127.0.0.1:5555/path").scheme,
            Scheme::Ws {
                host: "127.0.0.1".into(),
                port: 5555,
                path: "/path".into()
            }
        );
        assert_eq!(parse("ws://h:1").to_string(), "ws://h:1/");
        assert_eq!(parse("wss://[::1]:0/a/b").to_string(), "wss://[::1]:0/a/b");
        assert_eq!(parse("ws://h:0/x").with_port(7).to_string(), "ws://h:7/x");
        assert!(parse("ws://:0/x").is_wildcard_host());
        assert!(reason("ws://h:1/p?q").contains("query"));
        assert!(reason("ws://h/p").contains("missing port"));
        assert!(reason("ws://h:1/a b").contains("spaces"));
    }

    #[test]
    fn wildcard_host_and_with_port() {
        let u = parse("tcp://:0");
        assert!(u.is_wildcard_host());
        assert!(parse("tcp://*:7").is_wildcard_host());
        assert!(!parse("tcp://127.0.0.1:7").is_wildcard_host());
        assert_eq!(
            parse("tcp://127.0.0.1:0").with_port(4242).to_string(),
            "tcp://127.0.0.1:4242"
        );
        assert_eq!(parse("ipc:///x").with_port(1).to_string(), "ipc:///x");
    }

    #[test]
    fn errors_name_the_problem() {
        assert!(reason("tcp://127.0.0.1").contains("missing port"));
        assert!(reason("tcp://127.0.0.1:").contains("missing port"));
        assert!(reason("tcp://127.0.0.1:http").contains("bad port"));
        assert!(reason("tcp://127.0.0.1:70000").contains("bad port"));
        assert!(reason("tcp://127.0.0.1:-1").contains("bad port"));
        assert!(reason("tcp://::1:5555").contains("brackets"));
        assert!(reason("tcp://[::1:5555").contains("']'"));
        assert!(reason("tcp://[nothex]:1").contains("IPv6"));
        assert!(reason("tcp://[::1]").contains("missing port"));
        assert!(reason("tcp://h:1/path").contains("path"));
        assert!(reason("udp://h:1").contains("unknown scheme 'udp'"));
        assert!(reason("127.0.0.1:5555").contains("missing scheme"));
        assert!(reason("ipc://").contains("empty socket path"));
        assert!(reason("abstract://").contains("empty abstract"));
        let long = format!("ipc:///{}", "x".repeat(200));
        assert!(reason(&long).contains("at most 107"));
    }

    #[test]
    fn error_display_names_url() {
        let e = "tcp://h".parse::<Url>().unwrap_err();
        let text = e.to_string();
        assert!(text.contains("tcp://h"), "{text}");
        assert!(text.contains("missing port"), "{text}");
    }
}
