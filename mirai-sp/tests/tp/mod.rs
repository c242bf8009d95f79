//! Helpers for the transport tests: fresh URLs per transport, TLS credentials from
//! `mirai_transport::tls::zero_config`, and listen-then-dial with every wait bounded.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mirai_sp::driver::TransportOptions;
use mirai_sp::Socket;
use mirai_transport::tls::{zero_config, ZeroConfig};
use mirai_transport::TlsConfig;

/// Upper bound for any single wait in these tests.
pub const WAIT: Duration = Duration::from_secs(5);

fn n() -> u32 {
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A unique name for inproc and abstract URLs.
pub fn name(tag: &str) -> String {
    format!("mirai-sp-{tag}-{}-{}", std::process::id(), n())
}

/// A fresh socket path in the temp directory (removed if stale).
pub fn sock_path() -> String {
    let p = std::env::temp_dir().join(format!("mirai-sp-t-{}-{}.sock", std::process::id(), n()));
    let _stale = std::fs::remove_file(&p);
    p.display().to_string()
}

/// True if this machine has an IPv6 loopback to test `[::1]` with.
pub fn have_ipv6() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

/// Credentials for 127.0.0.1 (one set per call: a fresh CA each time).
pub fn creds() -> ZeroConfig {
    zero_config("127.0.0.1").expect("zero config")
}

/// Options carrying `cfg`.
pub fn with(cfg: TlsConfig) -> TransportOptions {
    TransportOptions::new().with_tls(Arc::new(cfg))
}

/// Listener options (server part, client certificates required) and dialer options (CA and
/// client identity) of one zero-config set.
pub fn tls_pair() -> (TransportOptions, TransportOptions) {
    let c = creds();
    (
        with(c.server_config().expect("server config")),
        with(c.client_config().expect("client config")),
    )
}

/// The URL a dialer uses for a listener that reported `bound` (wildcard hosts: loopback).
pub fn dial_url(bound: &str) -> String {
    bound.replacen("://:", "://127.0.0.1:", 1)
}

/// `listener` listens at `url` with `lo`, `dialer` dials what it reported with `do_`; both
/// wait for their pipe. Returns the reported URL.
pub fn link(
    listener: &Socket,
    dialer: &Socket,
    url: &str,
    lo: &TransportOptions,
    do_: &TransportOptions,
) -> String {
    let bound = listener
        .listen_with(url, lo)
        .unwrap_or_else(|e| panic!("listen {url}: {e}"));
    dialer
        .dial_with(&dial_url(&bound), do_)
        .unwrap_or_else(|e| panic!("dial {bound}: {e}"));
    dialer
        .wait_pipes(1, WAIT)
        .unwrap_or_else(|e| panic!("dialer pipe {bound}: {e}"));
    listener
        .wait_pipes(1, WAIT)
        .unwrap_or_else(|e| panic!("listener pipe {bound}: {e}"));
    bound
}

/// A 1 MiB body with a recognisable pattern (several WebSocket fragments, many TLS records).
pub fn big() -> Vec<u8> {
    (0..1 << 20).map(|i: u32| (i % 251) as u8).collect()
}
