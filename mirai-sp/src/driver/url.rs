//! Endpoint URLs as NNG spells them: every scheme and alias, parsed into an [`Addr`], and
//! printed back with a listener's resolved port.
//!
//! Error codes follow libnng 1.5 (observed with the `nng` crate): text without `://` or with
//! a malformed bracketed host or port is 3 ([`Error::InvalidUrl`]), an unknown scheme 9, a
//! TCP address without a port or an empty ipc path 15.

use std::fmt;
use std::path::PathBuf;

use crate::error::Error;
use crate::frame::Framing;

/// A URL scheme, aliases kept apart so that a listener reports the scheme it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scheme {
    /// `inproc://`
    Inproc,
    /// `ipc://`
    Ipc,
    /// `unix://` (= ipc)
    Unix,
    /// `abstract://` (Linux abstract unix socket)
    Abstract,
    /// `tcp://`
    Tcp,
    /// `tcp4://`
    Tcp4,
    /// `tcp6://`
    Tcp6,
    /// `tls+tcp://`
    TlsTcp,
    /// `tls+tcp4://`
    TlsTcp4,
    /// `tls+tcp6://`
    TlsTcp6,
    /// `ws://`
    Ws,
    /// `ws4://`
    Ws4,
    /// `ws6://`
    Ws6,
    /// `wss://`
    Wss,
    /// `wss4://`
    Wss4,
    /// `wss6://`
    Wss6,
}

/// Which IP family a scheme allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Either (`tcp://`, `ws://`, ...).
    Any,
    /// IPv4 only (`tcp4://`, ...).
    V4,
    /// IPv6 only (`tcp6://`, ...).
    V6,
}

const SCHEMES: [(&str, Scheme); 16] = [
    ("inproc", Scheme::Inproc),
    ("ipc", Scheme::Ipc),
    ("unix", Scheme::Unix),
    ("abstract", Scheme::Abstract),
    ("tcp", Scheme::Tcp),
    ("tcp4", Scheme::Tcp4),
    ("tcp6", Scheme::Tcp6),
    ("tls+tcp", Scheme::TlsTcp),
    ("tls+tcp4", Scheme::TlsTcp4),
    ("tls+tcp6", Scheme::TlsTcp6),
    ("ws", Scheme::Ws),
    ("ws4", Scheme::Ws4),
    ("ws6", Scheme::Ws6),
    ("wss", Scheme::Wss),
    ("wss4", Scheme::Wss4),
    ("wss6", Scheme::Wss6),
];

impl Scheme {
    /// The scheme as written before `://`.
    pub fn name(self) -> &'static str {
        SCHEMES
            .iter()
            .find(|(_, s)| *s == self)
            .map_or("", |(n, _)| n)
    }

    /// The IP family the scheme allows.
    pub fn family(self) -> Family {
        match self {
            Scheme::Tcp4 | Scheme::TlsTcp4 | Scheme::Ws4 | Scheme::Wss4 => Family::V4,
            Scheme::Tcp6 | Scheme::TlsTcp6 | Scheme::Ws6 | Scheme::Wss6 => Family::V6,
            _ => Family::Any,
        }
    }

    /// True for the schemes that run over TLS (and so take a TLS configuration).
    pub fn is_tls(self) -> bool {
        matches!(
            self,
            Scheme::TlsTcp
                | Scheme::TlsTcp4
                | Scheme::TlsTcp6
                | Scheme::Wss
                | Scheme::Wss4
                | Scheme::Wss6
        )
    }
}

/// A parsed endpoint address.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Addr {
    /// `tcp://host:port` (host may be `*` or empty on a listener: all interfaces).
    Tcp(String, u16),
    /// `ipc://path` or `unix://path`.
    Ipc(PathBuf),
    /// `inproc://name`: a listener in this process.
    Inproc(String),
    /// `abstract://name`: a Linux abstract unix socket.
    Abstract(String),
    /// `tls+tcp://host:port`.
    TlsTcp(String, u16),
    /// `ws://host:port/path` or, with `tls`, `wss://`.
    Ws {
        /// Host (IPv6 without brackets; empty or `*` on a listener: all interfaces).
        host: String,
        /// Port (default 80, or 443 with TLS).
        port: u16,
        /// The path as given (empty when the URL had none; the request then asks for `/`).
        path: String,
        /// `wss://`: WebSocket over TLS.
        tls: bool,
    },
}

impl Addr {
    /// Parses a URL (see [`Url::parse`]).
    pub fn parse(url: &str) -> Result<Addr, Error> {
        Url::parse(url).map(|u| u.addr)
    }

    /// The stream framing its connections use (WebSocket connections are adapted to tcp's).
    pub fn framing(&self) -> Framing {
        match self {
            Addr::Ipc(_) | Addr::Abstract(_) => Framing::Ipc,
            _ => Framing::Tcp,
        }
    }

    /// The TCP port, for the network transports.
    pub fn port(&self) -> Option<u16> {
        match self {
            Addr::Tcp(_, p) | Addr::TlsTcp(_, p) | Addr::Ws { port: p, .. } => Some(*p),
            _ => None,
        }
    }

    /// The host, for the network transports.
    pub fn host(&self) -> Option<&str> {
        match self {
            Addr::Tcp(h, _) | Addr::TlsTcp(h, _) | Addr::Ws { host: h, .. } => Some(h),
            _ => None,
        }
    }
}

/// A URL: its scheme as written and the address it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// The scheme (aliases kept).
    pub scheme: Scheme,
    /// The address.
    pub addr: Addr,
}

impl Url {
    /// Parses any URL NNG accepts: `inproc://name`, `ipc://path`, `unix://path`,
    /// `abstract://name`, `tcp[46]://host:port`, `tls+tcp[46]://host:port`,
    /// `ws[46]://host[:port][/path]`, `wss[46]://...`. Hosts may be bracketed IPv6 (`[::1]`),
    /// or `*`/empty for all interfaces (listeners).
    pub fn parse(url: &str) -> Result<Url, Error> {
        let bad = || Error::InvalidUrl(url.to_string());
        let (name, rest) = url.split_once("://").ok_or_else(bad)?;
        let scheme = SCHEMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| *s)
            .ok_or_else(|| Error::UnsupportedScheme(name.to_string()))?;
        let addr = match scheme {
            Scheme::Inproc => Addr::Inproc(rest.to_string()),
            Scheme::Ipc | Scheme::Unix if rest.is_empty() => {
                return Err(Error::AddressInvalid(url.to_string()))
            }
            Scheme::Ipc | Scheme::Unix => Addr::Ipc(PathBuf::from(rest)),
            Scheme::Abstract if rest.is_empty() || rest.len() > 107 => {
                return Err(Error::AddressInvalid(url.to_string()))
            }
            Scheme::Abstract => Addr::Abstract(rest.to_string()),
            Scheme::Tcp | Scheme::Tcp4 | Scheme::Tcp6 => {
                let (host, port) = host_port(url, rest, None)?;
                Addr::Tcp(host, port)
            }
            Scheme::TlsTcp | Scheme::TlsTcp4 | Scheme::TlsTcp6 => {
                let (host, port) = host_port(url, rest, None)?;
                Addr::TlsTcp(host, port)
            }
            _ => {
                let tls = scheme.is_tls();
                let (authority, path) = match rest.find('/') {
                    Some(i) => (&rest[..i], &rest[i..]),
                    None => (rest, ""),
                };
                let (host, port) = host_port(url, authority, Some(if tls { 443 } else { 80 }))?;
                Addr::Ws {
                    host,
                    port,
                    path: path.to_string(),
                    tls,
                }
            }
        };
        Ok(Url { scheme, addr })
    }

    /// The same URL with its port replaced (a listener's resolved port 0).
    pub fn with_port(&self, new: u16) -> Url {
        let mut u = self.clone();
        if let Addr::Tcp(_, p) | Addr::TlsTcp(_, p) | Addr::Ws { port: p, .. } = &mut u.addr {
            *p = new;
        }
        u
    }
}

/// Splits `host:port`; `default` is the port when none is given (ws), else one is required.
fn host_port(url: &str, s: &str, default: Option<u16>) -> Result<(String, u16), Error> {
    let bad = || Error::InvalidUrl(url.to_string());
    let (host, port) = if let Some(after) = s.strip_prefix('[') {
        let (h, tail) = after.split_once(']').ok_or_else(bad)?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad());
        }
        match tail.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if tail.is_empty() => (h, None),
            None => return Err(bad()),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match (port, default) {
        (Some(p), _) if !p.is_empty() => p.parse().map_err(|_| bad())?,
        (_, Some(d)) => d,
        _ => return Err(Error::AddressInvalid(url.to_string())),
    };
    Ok((host.to_string(), port))
}

fn fmt_host(f: &mut fmt::Formatter<'_>, host: &str) -> fmt::Result {
    match host {
        "*" => Ok(()),
        h if h.contains(':') => write!(f, "[{h}]"),
        h => f.write_str(h),
    }
}

impl fmt::Display for Url {
    /// The URL as NNG reports it: the scheme as given, a wildcard host as empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme.name())?;
        match &self.addr {
            Addr::Ipc(p) => write!(f, "{}", p.display()),
            Addr::Inproc(n) | Addr::Abstract(n) => f.write_str(n),
            Addr::Tcp(h, p) | Addr::TlsTcp(h, p) => {
                fmt_host(f, h)?;
                write!(f, ":{p}")
            }
            Addr::Ws {
                host, port, path, ..
            } => {
                fmt_host(f, host)?;
                write!(f, ":{port}{path}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(u: &str) -> String {
        Url::parse(u).unwrap().to_string()
    }

    #[test]
    fn parses_every_scheme() {
        assert_eq!(
            Addr::parse("tcp6://[::1]:5").unwrap(),
            Addr::Tcp("::1".into(), 5)
        );
        assert_eq!(
            Addr::parse("inproc://a b").unwrap(),
            Addr::Inproc("a b".into())
        );
        assert_eq!(
            Addr::parse("abstract://m").unwrap(),
            Addr::Abstract("m".into())
        );
        assert_eq!(
            Addr::parse("tls+tcp4://h:1").unwrap(),
            Addr::TlsTcp("h".into(), 1)
        );
        assert_eq!(
            Addr::parse("wss6://[::1]/p/q").unwrap(),
            Addr::Ws {
                host: "::1".into(),
                port: 443,
                path: "/p/q".into(),
                tls: true
            }
        );
        assert_eq!(Addr::parse("ws://h").unwrap().port(), Some(80));
        assert_eq!(
            Url::parse("tcp4://h:1").unwrap().scheme.family(),
            Family::V4
        );
        assert!(Url::parse("wss://h:1").unwrap().scheme.is_tls());
        assert!(!Url::parse("ws://h:1").unwrap().scheme.is_tls());
    }

    #[test]
    fn prints_back_as_given() {
        assert_eq!(round("tcp://*:0"), "tcp://:0");
        assert_eq!(round("tcp4://127.0.0.1:9"), "tcp4://127.0.0.1:9");
        assert_eq!(round("tcp://[::1]:9"), "tcp://[::1]:9");
        assert_eq!(round("ws://a:1/x"), "ws://a:1/x");
        assert_eq!(round("unix:///tmp/s"), "unix:///tmp/s");
        let u = Url::parse("tls+tcp://127.0.0.1:0").unwrap().with_port(77);
        assert_eq!(u.to_string(), "tls+tcp://127.0.0.1:77");
    }

    #[test]
    fn errors_carry_nng_codes() {
        for (u, code) in [
            ("garbage", 3),
            ("tcp://[::1:0", 3),
            ("tcp://h:port", 3),
            ("tcp://nope", 15),
            ("tcp://1.2.3.4", 15),
            ("ipc://", 15),
            ("foo://x", 9),
        ] {
            assert_eq!(Url::parse(u).unwrap_err().code(), code, "{u}");
        }
    }
}
