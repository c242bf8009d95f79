//! Helpers shared by the transport's integration tests.

use std::io::Read;
use std::net::TcpStream;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use mirai_transport::tls::ZeroConfig;
use mirai_transport::{Event, Listener};

/// Polls `l` until thread `t` has finished (so that the listener flushes what it queued for a
/// peer that `t` reads from), then joins it: its result, and the events seen meanwhile.
#[allow(dead_code)] // not every test file that includes this module uses it
pub fn poll_until_joined<T>(l: &Listener, t: JoinHandle<T>) -> (T, Vec<Event>) {
    let mut ev = Vec::new();
    while !t.is_finished() {
        l.poll(&mut ev, Some(Duration::from_millis(20))).unwrap();
    }
    (t.join().unwrap(), ev)
}

/// A plain rustls client (not the transport's dialer) holding the zero-config client identity,
/// connected to `127.0.0.1:port` over the given TLS versions and past the listener's 8-byte
/// greeting, for writing frames by hand.
#[allow(dead_code)] // not every test file that includes this module uses it
pub fn raw_tls_client(
    z: &ZeroConfig,
    port: u16,
    versions: &[&'static rustls::SupportedProtocolVersion],
    timeout: Duration,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let der = |pem: &str| {
        pkcs8::der::Document::from_pem(pem)
            .unwrap()
            .1
            .as_bytes()
            .to_vec()
    };
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from(der(&z.ca_cert)))
        .unwrap();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(der(&z.client_key).into());
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(
        vec![rustls_pki_types::CertificateDer::from(der(&z.client_cert))],
        key,
    )
    .unwrap();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(timeout)).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    let mut greeting = [0u8; 8];
    tls.read_exact(&mut greeting).expect("greeting");
    assert_eq!(&greeting, b"miraiTLS");
    tls
}
