//! TLS-specific behaviour of `tls+tcp://` (native backend): credentials, mutual
//! authentication, refusals and what each side learns from them, and robustness of the
//! listener's handshakes. The general message contract over TLS is checked by the `tls::`
//! variant of every scenario in `tests/conformance.rs` (including 10,000 messages in order each
//! way and an 8 MiB message each way).
//!
//! Timeouts are generous and only stop a broken build from hanging; nothing asserts speed.
use mirai_transport::tls::{zero_config, zero_config_for, TlsErrorKind, ZeroConfig};
use mirai_transport::{Connection, Error, Event, Listener, Options, PeerId, TlsConfig};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

mod common;

const LONG: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Log capture: the listener's refusals are warnings naming the peer and the reason.

struct Capture;
static LOGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Warn
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            LOGS.lock().unwrap_or_else(|e| e.into_inner()).push(format!(
                "{} {}",
                r.level(),
                r.args()
            ));
        }
    }
    fn flush(&self) {}
}

fn init_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        log::set_logger(&Capture).expect("logger");
        log::set_max_level(log::LevelFilter::Warn);
    });
}

/// Waits for a warning that contains every one of `parts`, and returns it.
fn wait_log(parts: &[&str]) -> String {
    let deadline = Instant::now() + LONG;
    loop {
        if let Some(line) = LOGS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|l| parts.iter().all(|p| l.contains(p)))
        {
            return line.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no log line with {parts:?}; have {:?}",
            LOGS.lock().unwrap_or_else(|e| e.into_inner())
        );
        thread::sleep(Duration::from_millis(5));
    }
}

// ---------------------------------------------------------------------------------------------
// An echo hub polled by its own thread, as the host's dispatcher polls its listener.

struct Hub {
    l: Arc<Listener>,
    url: String,
    events: Arc<Mutex<Vec<Event>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Hub {
    fn start(url: &str, tls: TlsConfig) -> Hub {
        Hub::start_with(
            url,
            Options {
                tls: Some(tls),
                ..Options::default()
            },
        )
    }

    fn start_with(url: &str, opts: Options) -> Hub {
        init_logs();
        let l = Arc::new(Listener::bind(url, &opts).unwrap_or_else(|e| panic!("bind {url}: {e}")));
        let url = l.url().to_string();
        let events = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (l, events, stop) = (Arc::clone(&l), Arc::clone(&events), Arc::clone(&stop));
            thread::spawn(move || {
                let mut batch = Vec::new();
                while !stop.load(Ordering::Acquire) {
                    l.poll(&mut batch, Some(Duration::from_millis(50)))
                        .expect("poll");
                    // Recorded before echoing: whoever got an echo sees its events.
                    events.lock().unwrap().extend(batch.iter().cloned());
                    for e in batch.drain(..) {
                        if let Event::Message(id, m) = e {
                            // Gone peers are fine: the event log still shows what happened.
                            let _ = l.send(id, &m);
                        }
                    }
                }
            })
        };
        Hub {
            l,
            url,
            events,
            stop,
            thread: Some(thread),
        }
    }

    fn zero(z: &ZeroConfig) -> Hub {
        Hub::start(
            "tls+tcp://127.0.0.1:0",
            z.server_config().expect("server config"),
        )
    }

    /// Waits until `n` peers have connected (a dial returns on the listener's greeting, which
    /// may come before the hub thread has recorded the event).
    fn wait_connected(&self, n: usize) {
        let deadline = Instant::now() + LONG;
        while self.connected().len() < n {
            assert!(Instant::now() < deadline, "{n} peers never connected");
            thread::sleep(Duration::from_millis(2));
        }
    }

    fn connected(&self) -> Vec<PeerId> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::Connected(id) => Some(*id),
                _ => None,
            })
            .collect()
    }

    /// Every peer that ever sent a message.
    fn senders(&self) -> Vec<PeerId> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::Message(id, _) => Some(*id),
                _ => None,
            })
            .collect()
    }

    /// `tls+tcp://127.0.0.1:P` as `tls+tcp://<host>:P`.
    fn url_with_host(&self, host: &str) -> String {
        let port = self.url.rsplit(':').next().unwrap();
        format!("tls+tcp://{host}:{port}")
    }

    fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.l.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn client_opts(tls: TlsConfig) -> Options {
    Options {
        tls: Some(tls),
        ..Options::default()
    }
}

fn dial(url: &str, tls: TlsConfig) -> Result<Connection, Error> {
    Connection::dial(url, &client_opts(tls))
}

/// The connection echoes through the hub.
fn assert_echo(c: &Connection, msg: &[u8]) {
    c.send(msg).expect("send");
    let back = c.recv(Some(LONG)).expect("recv").expect("echo in time");
    assert_eq!(back, msg);
}

fn tls_error(r: Result<Connection, Error>) -> (String, TlsErrorKind, Error) {
    match r {
        Err(Error::Tls { reason, kind, url }) => {
            let e = Error::Tls {
                reason: reason.clone(),
                kind,
                url,
            };
            (reason, kind, e)
        }
        Err(other) => panic!("expected a TLS error, got {other:?}"),
        Ok(_) => panic!("expected the connection to be refused"),
    }
}

// ---------------------------------------------------------------------------------------------
// Certificates made here, for user-supplied and deliberately broken credentials.

struct TestCa {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

fn test_ca(name: &str) -> TestCa {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(rcgen::DnType::CommonName, name);
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    TestCa {
        cert: p.self_signed(&key).unwrap(),
        key,
    }
}

enum Role {
    Server(&'static [&'static str]),
    Client,
    Intermediate,
}

/// A certificate issued by `ca` (PEM) and its key (PKCS#8 PEM), valid over `years`.
fn issue(ca: &TestCa, role: Role, years: (i32, i32)) -> (String, String, TestCa) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::default();
    p.not_before = rcgen::date_time_ymd(years.0, 1, 1);
    p.not_after = rcgen::date_time_ymd(years.1, 1, 1);
    p.distinguished_name = rcgen::DistinguishedName::new();
    match role {
        Role::Server(names) => {
            p.distinguished_name
                .push(rcgen::DnType::CommonName, names[0]);
            p.subject_alt_names = rcgen::CertificateParams::new(
                names.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
            )
            .unwrap()
            .subject_alt_names;
            p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        }
        Role::Client => {
            p.distinguished_name
                .push(rcgen::DnType::CommonName, "test daemon");
            p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        }
        Role::Intermediate => {
            p.distinguished_name
                .push(rcgen::DnType::CommonName, "test intermediate");
            p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
            p.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
        }
    }
    let cert = p.signed_by(&key, &ca.cert, &ca.key).unwrap();
    let (pem, key_pem) = (cert.pem(), key.serialize_pem());
    (pem, key_pem, TestCa { cert, key })
}

/// `key_pem` (PKCS#8) encrypted with `password` (PBKDF2-SHA256 + AES-256-CBC).
fn encrypt_key(key_pem: &str, password: &str) -> String {
    let (_, doc) = pkcs8::der::Document::from_pem(key_pem).unwrap();
    let info = pkcs8::PrivateKeyInfo::try_from(doc.as_bytes()).unwrap();
    let salt = [7u8; 16];
    let iv = [9u8; 16];
    let params =
        pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(2048, &salt, &iv).unwrap();
    let enc = info.encrypt_with_params(params, password).unwrap();
    enc.to_pem("ENCRYPTED PRIVATE KEY", pkcs8::LineEnding::LF)
        .unwrap()
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// Working configurations

#[test]
fn zero_config_mutual_auth_round_trip() {
    let z = zero_config("127.0.0.1").unwrap();
    let server = z.server_config().unwrap();
    assert!(server.requires_client_certificates());
    let hub = Hub::zero(&z);
    let c = dial(&hub.url, z.client_config().unwrap()).expect("authorised dial");
    // dial returns only once the listener has accepted the peer.
    hub.wait_connected(1);
    assert_eq!(hub.connected().len(), 1);
    for i in 0..20u32 {
        assert_echo(&c, format!("task {i}").as_bytes());
    }
    // The launch-command form of the identity (one PEM text) works the same.
    let bundle = z.client_identity_pem();
    let c2 = dial(
        &hub.url,
        TlsConfig::client_with_identity(&z.ca_cert, &bundle, &bundle, None).unwrap(),
    )
    .expect("bundle identity");
    assert_echo(&c2, b"from the bundle");
    assert_echo(&c, b"first still fine");
}

#[test]
fn user_certificate_without_client_ca_is_server_only_auth() {
    // A chain (server <- intermediate <- root), a DNS name, certificate and key in one text.
    let root = test_ca("test root");
    let (inter_pem, _, inter) = issue(&root, Role::Intermediate, (2020, 2099));
    let (server_pem, server_key, _) = issue(&inter, Role::Server(&["localhost"]), (2020, 2099));
    let one_file = format!("{server_pem}{inter_pem}{server_key}");
    let server = TlsConfig::server(&one_file, &one_file, None).unwrap();
    assert!(!server.requires_client_certificates());
    let hub = Hub::start("tls+tcp://127.0.0.1:0", server);
    let url = hub.url_with_host("localhost");
    let root_pem = root.cert.pem();
    // No client certificate: accepted, since the listener asks for none.
    let c = dial(&url, TlsConfig::client(&root_pem).unwrap()).expect("server-only auth");
    assert_echo(&c, b"hello");
    // A client that has an identity is accepted all the same.
    let z = zero_config("127.0.0.1").unwrap();
    let with_id =
        TlsConfig::client_with_identity(&root_pem, &z.client_cert, &z.client_key, None).unwrap();
    let c2 = dial(&url, with_id).expect("identity not needed");
    assert_echo(&c2, b"also fine");
    // The daemon still verifies the host: trusting another CA fails.
    let other = test_ca("other root");
    let (reason, kind, _) = tls_error(dial(&url, TlsConfig::client(&other.cert.pem()).unwrap()));
    assert!(reason.contains("unknown issuer"), "{reason}");
    assert_eq!(kind, TlsErrorKind::PeerAuth);
}

#[test]
fn encrypted_key_needs_the_right_password() {
    let z = zero_config("127.0.0.1").unwrap();
    let encrypted = encrypt_key(&z.server_key, "s3cret pass");
    assert!(encrypted.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    let server = TlsConfig::server_with_client_auth(
        &z.server_cert,
        &encrypted,
        Some("s3cret pass"),
        &z.ca_cert,
    )
    .expect("right password");
    let hub = Hub::start("tls+tcp://127.0.0.1:0", server);
    let c = dial(&hub.url, z.client_config().unwrap()).expect("dial");
    assert_echo(&c, b"decrypted key works");

    for wrong in ["s3cret", "", "S3CRET PASS"] {
        match TlsConfig::server(&z.server_cert, &encrypted, Some(wrong)) {
            Err(e @ Error::TlsConfig(_)) => {
                let m = e.to_string();
                assert!(m.contains("wrong password"), "{m}");
                assert!(m.contains("server private key"), "{m}");
                assert_eq!(e.code(), (3, "Invalid argument"));
            }
            other => panic!("wrong password {wrong:?} accepted: {other:?}"),
        }
    }
    match TlsConfig::server(&z.server_cert, &encrypted, None) {
        Err(Error::TlsConfig(m)) => assert!(m.contains("password is needed"), "{m}"),
        other => panic!("no password accepted: {other:?}"),
    }
    // The client side decrypts too.
    let enc_client = encrypt_key(&z.client_key, "daemon");
    TlsConfig::client_with_identity(&z.ca_cert, &z.client_cert, &enc_client, Some("daemon"))
        .expect("client key decrypted");
    assert!(matches!(
        TlsConfig::client_with_identity(&z.ca_cert, &z.client_cert, &enc_client, Some("x")),
        Err(Error::TlsConfig(m)) if m.contains("client private key") && m.contains("wrong password")
    ));
}

#[test]
fn many_messages_of_many_sizes_in_order() {
    // Sizes straddle TLS record boundaries (16 KiB) and the dialer's write pieces.
    let z = zero_config("127.0.0.1").unwrap();
    let hub = Hub::zero(&z);
    let c = Arc::new(dial(&hub.url, z.client_config().unwrap()).unwrap());
    let sizes: Vec<usize> = (0..1000)
        .map(|i| match i % 5 {
            0 => i,
            1 => 16 * 1024 - 5 + i % 11,
            2 => 3,
            3 => 70_000 + i,
            _ => 300_000 + 17 * i,
        })
        .collect();
    let msg = |i: usize, len: usize| -> Vec<u8> {
        let mut m = (i as u32).to_le_bytes().to_vec();
        m.extend((0..len).map(|k| (k as u8).wrapping_mul(13).wrapping_add(i as u8)));
        m
    };
    let sender = {
        let (c, sizes) = (Arc::clone(&c), sizes.clone());
        thread::spawn(move || {
            for (i, len) in sizes.into_iter().enumerate() {
                c.send(&msg(i, len)).unwrap();
            }
        })
    };
    for (i, len) in sizes.iter().enumerate() {
        let back = c.recv(Some(LONG)).unwrap().expect("echo");
        assert!(
            back == msg(i, *len),
            "message {i} ({len} bytes) intact and in order"
        );
    }
    sender.join().unwrap();
}

#[test]
fn raw_fd_and_try_recv_over_tls() {
    let z = zero_config("127.0.0.1").unwrap();
    let hub = Hub::zero(&z);
    let c = dial(&hub.url, z.client_config().unwrap()).unwrap();
    assert_eq!(c.try_recv().unwrap(), None);
    assert_eq!(c.recv(Some(Duration::from_millis(30))).unwrap(), None);
    c.send(b"ping").unwrap();
    let fd = c.raw_fd().expect("native connection has an fd");
    let mut fds = [libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }];
    // SAFETY: `fds` is a valid array of one pollfd for the duration of the call.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), 1, LONG.as_millis() as i32) };
    assert_eq!(n, 1, "fd readable once the echo arrives");
    let deadline = Instant::now() + LONG;
    let got = loop {
        if let Some(m) = c.try_recv().unwrap() {
            break m;
        }
        assert!(Instant::now() < deadline);
        thread::sleep(Duration::from_millis(1));
    };
    assert_eq!(got, b"ping");
    assert_eq!(c.try_recv().unwrap(), None);
}

// ---------------------------------------------------------------------------------------------
// Refusals: each refused peer learns why, the listener logs it and keeps serving.

#[test]
fn plaintext_client_on_tls_port_is_refused() {
    let z = zero_config("127.0.0.1").unwrap();
    let hub = Hub::zero(&z);
    let good = dial(&hub.url, z.client_config().unwrap()).unwrap();
    let plain_url = format!("tcp://127.0.0.1:{}", hub.port());
    let plain = Connection::dial(&plain_url, &Options::default()).expect("TCP connects");
    plain.send(b"not encrypted").unwrap();
    match plain.recv(Some(LONG)) {
        Err(e @ Error::Tls { .. }) => {
            assert!(e.to_string().contains("the listener speaks TLS"), "{e}");
            assert_eq!(e.code().0, 26);
        }
        other => panic!("plaintext peer should learn that the port speaks TLS, got {other:?}"),
    }
    let line = wait_log(&["refused TLS connection", &hub.url, "does not speak TLS"]);
    assert!(line.starts_with("WARN"), "{line}");
    assert!(
        line.contains("127.0.0.1:"),
        "names the peer's address: {line}"
    );
    // The plaintext peer never became a peer; the good one keeps working.
    assert_echo(&good, b"still served");
    assert_eq!(hub.connected().len(), 1);
    assert_eq!(
        hub.senders()
            .iter()
            .filter(|id| **id != hub.connected()[0])
            .count(),
        0
    );
}

#[test]
fn daemon_with_the_wrong_ca_is_refused_naming_the_issuer() {
    let z = zero_config("127.0.0.1").unwrap();
    let hub = Hub::zero(&z);
    let good = dial(&hub.url, z.client_config().unwrap()).unwrap();
    let other = zero_config("127.0.0.1").unwrap();
    let (reason, kind, e) = tls_error(dial(&hub.url, other.client_config().unwrap()));
    assert!(
        reason.contains("listener's certificate was refused"),
        "{reason}"
    );
    assert!(reason.contains("unknown issuer"), "{reason}");
    assert_eq!(kind, TlsErrorKind::PeerAuth);
    assert_eq!(e.code(), (27, "Peer could not be authenticated"));
    assert!(!e.is_retryable());
    assert!(e.to_string().contains(&hub.url), "{e}");
    // The daemon's alert tells the listener why, and it says so.
    wait_log(&["refused TLS connection", &hub.url, "unknown CA"]);
    assert_echo(&good, b"unaffected");
    assert_eq!(hub.connected().len(), 1);
}

#[test]
fn client_without_certificate_is_refused() {
    let z = zero_config("127.0.0.1").unwrap();
    let hub = Hub::zero(&z);
    let good = dial(&hub.url, z.client_config().unwrap()).unwrap();
    let (reason, kind, _) = tls_error(dial(&hub.url, TlsConfig::client(&z.ca_cert).unwrap()));
    assert!(
        reason.contains("client certificate is required"),
        "{reason}"
    );
    assert_eq!(kind, TlsErrorKind::PeerAuth);
    wait_log(&[
        "refused TLS connection",
        &hub.url,
        "presented no certificate",
    ]);
    assert_echo(&good, b"unaffected");
    assert_eq!(hub.connected().len(), 1);
}

#[test]
fn foreign_client_certificate_is_refused() {
    let z = zero_config("127.0.0.1").unwrap();
    let hub = Hub::zero(&z);
    let good = dial(&hub.url, z.client_config().unwrap()).unwrap();
    // Trusts the right CA, but its identity comes from another profile.
    let other = zero_config("127.0.0.1").unwrap();
    let foreign =
        TlsConfig::client_with_identity(&z.ca_cert, &other.client_cert, &other.client_key, None)
            .unwrap();
    let (reason, kind, _) = tls_error(dial(&hub.url, foreign));
    assert!(reason.contains("unknown CA"), "{reason}");
    assert_eq!(kind, TlsErrorKind::PeerAuth);
    wait_log(&["refused TLS connection", &hub.url, "unknown issuer"]);
    assert_echo(&good, b"unaffected");
    assert_eq!(hub.connected().len(), 1);
}

#[test]
fn expired_client_certificate_is_refused() {
    let ca = test_ca("expiry CA");
    let (server_pem, server_key, _) = issue(&ca, Role::Server(&["127.0.0.1"]), (2020, 2099));
    let (good_pem, good_key, _) = issue(&ca, Role::Client, (2020, 2099));
    let (old_pem, old_key, _) = issue(&ca, Role::Client, (2019, 2021));
    let ca_pem = ca.cert.pem();
    let server =
        TlsConfig::server_with_client_auth(&server_pem, &server_key, None, &ca_pem).unwrap();
    let hub = Hub::start("tls+tcp://127.0.0.1:0", server);
    let good = dial(
        &hub.url,
        TlsConfig::client_with_identity(&ca_pem, &good_pem, &good_key, None).unwrap(),
    )
    .expect("valid client certificate");
    let expired = TlsConfig::client_with_identity(&ca_pem, &old_pem, &old_key, None).unwrap();
    let (reason, kind, _) = tls_error(dial(&hub.url, expired));
    assert!(reason.contains("expired"), "{reason}");
    assert_eq!(kind, TlsErrorKind::PeerAuth);
    wait_log(&["refused TLS connection", &hub.url, "has expired"]);
    assert_echo(&good, b"unaffected");
    assert_eq!(hub.connected().len(), 1);
}

#[test]
fn host_name_is_checked_against_the_certificate() {
    let z = zero_config("localhost").unwrap();
    let hub = Hub::zero(&z);
    let ok = dial(&hub.url_with_host("localhost"), z.client_config().unwrap()).expect("by name");
    assert_echo(&ok, b"named right");
    let (reason, kind, _) = tls_error(dial(&hub.url, z.client_config().unwrap()));
    assert!(reason.contains("not valid for '127.0.0.1'"), "{reason}");
    assert!(reason.contains("localhost"), "{reason}");
    assert_eq!(kind, TlsErrorKind::PeerAuth);
}

#[test]
fn early_data_from_a_refused_client_is_never_delivered() {
    // A raw TLS 1.3 client finishes its side of the handshake and sends a framed message at
    // once, before the listener has checked it has no certificate: nothing may come of it.
    let z = zero_config("127.0.0.1").unwrap();
    let hub = Hub::zero(&z);
    let good = dial(&hub.url, z.client_config().unwrap()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from(
            pkcs8::der::Document::from_pem(&z.ca_cert)
                .unwrap()
                .1
                .as_bytes()
                .to_vec(),
        ))
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let sock = TcpStream::connect(("127.0.0.1", hub.port())).unwrap();
    sock.set_read_timeout(Some(LONG)).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    let mut frame = 5u64.to_le_bytes().to_vec();
    frame.extend_from_slice(b"sneak");
    tls.write_all(&frame)
        .expect("client side of the handshake completes");
    tls.flush().unwrap();
    let mut buf = [0u8; 16];
    let res = tls.read(&mut buf);
    let text = format!("{res:?}");
    assert!(
        text.contains("CertificateRequired"),
        "refused with an alert: {text}"
    );
    wait_log(&[
        "refused TLS connection",
        &hub.url,
        "presented no certificate",
    ]);
    assert_echo(&good, b"unaffected");
    assert_eq!(hub.connected().len(), 1);
    let good_id = hub.connected()[0];
    assert!(
        hub.senders().iter().all(|id| *id == good_id),
        "no message from the refused peer"
    );
}

#[test]
fn tls_dial_to_a_plain_listener_names_the_cause() {
    init_logs();
    let l = Arc::new(Listener::bind("tcp://127.0.0.1:0", &Options::default()).unwrap());
    let port = l.url().rsplit(':').next().unwrap().to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let (l, stop) = (Arc::clone(&l), Arc::clone(&stop));
        thread::spawn(move || {
            let mut ev = Vec::new();
            while !stop.load(Ordering::Acquire) {
                l.poll(&mut ev, Some(Duration::from_millis(20))).unwrap();
                ev.clear();
            }
        })
    };
    let z = zero_config("127.0.0.1").unwrap();
    let url = format!("tls+tcp://127.0.0.1:{port}");
    let (reason, kind, e) = tls_error(dial(&url, z.client_config().unwrap()));
    assert!(reason.contains("plain tcp:// listener"), "{reason}");
    assert_eq!(kind, TlsErrorKind::Protocol);
    assert_eq!(e.code(), (26, "Cryptographic error"));
    stop.store(true, Ordering::Release);
    l.wake();
    poller.join().unwrap();
}

// ---------------------------------------------------------------------------------------------
// Handshakes never stall the listener.

#[test]
fn silent_peers_do_not_block_handshakes_and_time_out() {
    let z = zero_config("127.0.0.1").unwrap();
    let server = z
        .server_config()
        .unwrap()
        .with_handshake_timeout(Duration::from_millis(300));
    let hub = Hub::start("tls+tcp://127.0.0.1:0", server);
    // One connects and says nothing; another sends half a record header and stops.
    let mut silent = TcpStream::connect(("127.0.0.1", hub.port())).unwrap();
    let mut partial = TcpStream::connect(("127.0.0.1", hub.port())).unwrap();
    partial.write_all(&[0x16, 0x03]).unwrap();
    // Meanwhile an authorised daemon connects and works.
    let good = dial(&hub.url, z.client_config().unwrap()).expect("not blocked by silent peers");
    assert_echo(&good, b"served meanwhile");
    // The silent ones are dropped at their deadline, with a warning.
    for s in [&mut silent, &mut partial] {
        s.set_read_timeout(Some(LONG)).unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap_or(0);
        assert_eq!(n, 0, "dropped without a reply");
    }
    wait_log(&[
        "refused TLS connection",
        &hub.url,
        "no TLS handshake completed within 300ms",
    ]);
    assert_echo(&good, b"still served");
    assert_eq!(hub.connected().len(), 1);
}

#[test]
fn pending_handshake_bound_pauses_accepting_until_one_ends() {
    let z = zero_config("127.0.0.1").unwrap();
    let server = z
        .server_config()
        .unwrap()
        .with_handshake_timeout(Duration::from_millis(500))
        .with_max_pending_handshakes(2);
    let hub = Hub::start("tls+tcp://127.0.0.1:0", server);
    let _a = TcpStream::connect(("127.0.0.1", hub.port())).unwrap();
    let _b = TcpStream::connect(("127.0.0.1", hub.port())).unwrap();
    // At the bound, the daemon waits in the backlog until the silent peers time out; then its
    // handshake goes through.
    let good = dial(&hub.url, z.client_config().unwrap()).expect("accepted after the wait");
    assert_echo(&good, b"made it");
    wait_log(&["refused TLS connection", &hub.url, "within 500ms"]);
    // Accepting resumed for good: more daemons join at once.
    let more = dial(&hub.url, z.client_config().unwrap()).expect("second daemon");
    assert_echo(&more, b"and another");
    assert_eq!(hub.connected().len(), 2);
}

#[test]
fn zero_config_for_several_names() {
    let z = zero_config_for(&["localhost", "127.0.0.1", "[::1]"]).unwrap();
    let hub = Hub::zero(&z);
    for host in ["localhost", "127.0.0.1"] {
        let c = dial(&hub.url_with_host(host), z.client_config().unwrap())
            .unwrap_or_else(|e| panic!("{host}: {e}"));
        assert_echo(&c, host.as_bytes());
    }
    let v6 = Hub::start("tls+tcp://[::1]:0", z.server_config().unwrap());
    let c = dial(&v6.url, z.client_config().unwrap()).expect("IPv6 SAN");
    assert_echo(&c, b"v6");
}

#[test]
fn tls12_client_speaks_the_documented_wire_format() {
    // A plain rustls client restricted to TLS 1.2 (where the listener checks the client's
    // certificate before finishing its handshake): greeting, then length-prefixed frames.
    let z = zero_config("127.0.0.1").unwrap();
    let hub = Hub::zero(&z);
    let mut tls = common::raw_tls_client(&z, hub.port(), &[&rustls::version::TLS12], LONG);
    assert_eq!(
        tls.conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    let mut frame = 6u64.to_le_bytes().to_vec();
    frame.extend_from_slice(b"tls1.2");
    tls.write_all(&frame).unwrap();
    let mut back = [0u8; 14];
    tls.read_exact(&mut back).expect("echo");
    assert_eq!(&back[..], &frame[..]);
    hub.wait_connected(1);
}

/// A plain rustls client past the hub's greeting (TLS 1.2 or 1.3), for writing frames by hand.
fn raw_tls_client(
    z: &ZeroConfig,
    port: u16,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    common::raw_tls_client(z, port, rustls::DEFAULT_VERSIONS, LONG)
}

#[test]
fn first_message_over_the_bound_is_dropped_over_tls() {
    // As over plain TCP (tests/native.rs): an authenticated peer whose first message claims
    // 4 GiB is dropped at the prefix, naming its address but never its bytes; a peer that
    // opened with a small message goes on and may then send more than the bound.
    let z = zero_config("127.0.0.1").unwrap();
    let hub = Hub::start_with(
        "tls+tcp://127.0.0.1:0",
        Options {
            tls: Some(z.server_config().unwrap()),
            max_first_message: Some(64 * 1024),
            ..Options::default()
        },
    );
    let good = dial(&hub.url, z.client_config().unwrap()).expect("dial");
    assert_echo(&good, b"hello");

    let mut raw = raw_tls_client(&z, hub.port());
    let label = raw.sock.local_addr().unwrap().to_string();
    raw.write_all(&(4u64 << 30).to_le_bytes()).unwrap();
    raw.write_all(b"PEERBYTESMARKER").unwrap();
    raw.flush().unwrap();
    let line = wait_log(&["dropped", "first message", "4294967296", "65536", &label]);
    assert!(
        !line.contains("PEERBYTES"),
        "the log quotes the peer: {line}"
    );
    // The event carries the same reason, and the socket is closed (no close_notify: a
    // dropped peer gets an abrupt end).
    let deadline = Instant::now() + LONG;
    let text = loop {
        let found = hub.events.lock().unwrap().iter().find_map(|e| match e {
            Event::Disconnected(_, mirai_transport::DisconnectReason::Protocol(t))
                if t.contains("first message") =>
            {
                Some(t.clone())
            }
            _ => None,
        });
        if let Some(t) = found {
            break t;
        }
        assert!(
            Instant::now() < deadline,
            "no Disconnected event for the stranger"
        );
        thread::sleep(Duration::from_millis(5));
    };
    assert!(!text.contains("PEERBYTES"), "{text}");
    let mut buf = [0u8; 16];
    assert!(matches!(raw.read(&mut buf), Ok(0) | Err(_)));

    // 1 MiB, past the first-message bound, from the peer that has opened properly.
    let big: Vec<u8> = (0..(1usize << 20)).map(|i| (i % 253) as u8).collect();
    assert_echo(&good, &big);

    // A first message exactly at the bound passes over TLS too.
    let mut ok = raw_tls_client(&z, hub.port());
    let mut first = (64u64 * 1024).to_le_bytes().to_vec();
    first.extend_from_slice(&[6u8; 64 * 1024]);
    ok.write_all(&first).unwrap();
    ok.flush().unwrap();
    let mut back = vec![0u8; first.len()];
    ok.read_exact(&mut back)
        .expect("echo of a first message at the bound");
    assert!(back == first);
}
