//! Our transports against real NNG (libnng 1.5.2, built with mbedTLS): ipc, abstract, tcp,
//! tls+tcp, ws and wss, each in both directions (our listener with an NNG dialer, an NNG
//! listener with our dialer), for pair1 and req/rep, with small and 1 MiB messages.
//!
//! TLS credentials come from `mirai_transport::tls::zero_config_for(["localhost",
//! "127.0.0.1"])`: NNG (mbedTLS 2.28) checks the certificate against the URL's host by DNS
//! name only, so it dials `tls+tcp4://localhost:port`; rustls checks the IP address SAN.

mod common;
mod tp;

use std::path::PathBuf;
use std::time::Duration;

use common::{big, nng_recv, nng_send, nng_socket, WAIT};
use mirai_sp::driver::TransportOptions;
use mirai_sp::{Protocol, Socket};
use nng::options::transport::tls::{CaFile, CertKeyFile};
use nng::options::Options;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum T {
    Ipc,
    Abstract,
    Tcp,
    Ws,
    Tls,
    Wss,
}

const ALL: [T; 6] = [T::Ipc, T::Abstract, T::Tcp, T::Ws, T::Tls, T::Wss];

/// Credentials as PEM files for NNG and as options for us; the files go with the value.
struct Creds {
    dir: PathBuf,
    ca: String,
    server: String,
    client: String,
    ours_listen: TransportOptions,
    ours_dial: TransportOptions,
}

impl Creds {
    fn new() -> Creds {
        let z = mirai_transport::tls::zero_config_for(&["localhost", "127.0.0.1"]).unwrap();
        let dir = std::env::temp_dir().join(tp::name("tls"));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |file: &str, text: String| {
            let p = dir.join(file);
            std::fs::write(&p, text).unwrap();
            p.display().to_string()
        };
        Creds {
            ca: write("ca.pem", z.ca_cert.clone()),
            server: write("server.pem", format!("{}{}", z.server_cert, z.server_key)),
            client: write("client.pem", z.client_identity_pem()),
            ours_listen: tp::with(z.server_config().unwrap()),
            ours_dial: tp::with(z.client_config().unwrap()),
            dir,
        }
    }
}

impl Drop for Creds {
    fn drop(&mut self) {
        let _gone = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port nobody listens on now (for NNG ws listeners, whose port 0 we cannot read back).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Our listener for `t`; returns the URL an NNG dialer uses.
fn ours_listen(ours: &Socket, t: T, c: &Creds) -> String {
    let none = TransportOptions::new();
    let (url, opts) = match t {
        T::Ipc => (format!("ipc://{}", tp::sock_path()), &none),
        T::Abstract => (format!("abstract://{}", tp::name("nng")), &none),
        T::Tcp => ("tcp://127.0.0.1:0".to_string(), &none),
        T::Ws => ("ws://127.0.0.1:0/sp".to_string(), &none),
        T::Tls => ("tls+tcp://127.0.0.1:0".to_string(), &c.ours_listen),
        T::Wss => ("wss://127.0.0.1:0/sec".to_string(), &c.ours_listen),
    };
    let bound = ours.listen_with(&url, opts).unwrap();
    // NNG names the host it checks the certificate against by DNS name.
    bound
        .replace("tls+tcp://127.0.0.1:", "tls+tcp4://localhost:")
        .replace("wss://127.0.0.1:", "wss4://localhost:")
}

/// An NNG dialer for `t` at `url`, started synchronously.
fn nng_dial(theirs: &nng::Socket, t: T, url: &str, c: &Creds) {
    let d = nng::DialerBuilder::new(theirs, url).unwrap();
    if matches!(t, T::Tls | T::Wss) {
        d.set_opt::<CaFile>(c.ca.clone()).unwrap();
        d.set_opt::<CertKeyFile>(c.client.clone()).unwrap();
    }
    d.start(false)
        .map_err(|(_, e)| e)
        .unwrap_or_else(|e| panic!("nng dial {url}: {e}"));
}

/// An NNG listener for `t`; returns the URL our dialer uses.
fn nng_listen(theirs: &nng::Socket, t: T, c: &Creds) -> String {
    let url = match t {
        T::Ipc => format!("ipc://{}", tp::sock_path()),
        T::Abstract => format!("abstract://{}", tp::name("nngl")),
        T::Tcp => format!("tcp://127.0.0.1:{}", free_port()),
        T::Ws => format!("ws://127.0.0.1:{}/sp", free_port()),
        T::Tls => format!("tls+tcp://127.0.0.1:{}", free_port()),
        T::Wss => format!("wss://127.0.0.1:{}/sec", free_port()),
    };
    let l = nng::ListenerBuilder::new(theirs, &url).unwrap();
    if matches!(t, T::Tls | T::Wss) {
        l.set_opt::<CertKeyFile>(c.server.clone()).unwrap();
    }
    l.start()
        .map_err(|(_, e)| e)
        .unwrap_or_else(|e| panic!("nng listen {url}: {e}"));
    url
}

/// Connects `ours` and `theirs` over `t`, ours listening or dialing, and waits for the pipe.
fn connect(ours: &Socket, theirs: &nng::Socket, t: T, ours_listens: bool, c: &Creds) {
    if ours_listens {
        let url = ours_listen(ours, t, c);
        nng_dial(theirs, t, &url, c);
    } else {
        let url = nng_listen(theirs, t, c);
        let opts = if matches!(t, T::Tls | T::Wss) {
            &c.ours_dial
        } else {
            &TransportOptions::new()
        };
        ours.dial_with(&url, opts)
            .unwrap_or_else(|e| panic!("our dial {url}: {e}"));
    }
    ours.wait_pipes(1, WAIT)
        .unwrap_or_else(|e| panic!("{t:?}: {e}"));
    // NNG attaches its side of the pipe just after ours: let it, so nothing is dropped.
    std::thread::sleep(Duration::from_millis(100));
}

fn finish(ours: Socket, theirs: nng::Socket) {
    ours.close().unwrap();
    drop(ours);
    std::thread::sleep(Duration::from_millis(50));
    drop(theirs);
}

#[test]
fn pair1_both_directions_every_transport() {
    let c = Creds::new();
    for t in ALL {
        for ours_listens in [true, false] {
            let ours = Socket::new(Protocol::Pair1).unwrap();
            let theirs = nng_socket(nng::Protocol::Pair1);
            connect(&ours, &theirs, t, ours_listens, &c);
            let what = format!("{t:?} ours_listens={ours_listens}");
            ours.send(b"from ours", Some(WAIT)).unwrap();
            assert_eq!(nng_recv(&theirs), b"from ours", "{what}");
            nng_send(&theirs, b"from nng");
            assert_eq!(ours.recv(Some(WAIT)).unwrap(), b"from nng", "{what}");
            let b = big();
            ours.send(&b, Some(WAIT)).unwrap();
            assert_eq!(nng_recv(&theirs), b, "{what}");
            nng_send(&theirs, &b);
            assert_eq!(ours.recv(Some(WAIT)).unwrap(), b, "{what}");
            finish(ours, theirs);
        }
    }
}

#[test]
fn our_req_against_nng_rep_every_transport() {
    let c = Creds::new();
    for t in ALL {
        for ours_listens in [true, false] {
            let ours = Socket::new(Protocol::Req0).unwrap();
            let theirs = nng_socket(nng::Protocol::Rep0);
            connect(&ours, &theirs, t, ours_listens, &c);
            for i in 0..3u8 {
                ours.send(&[b'q', i], Some(WAIT)).unwrap();
                assert_eq!(nng_recv(&theirs), [b'q', i], "{t:?}");
                nng_send(&theirs, &[b'a', i]);
                assert_eq!(ours.recv(Some(WAIT)).unwrap(), [b'a', i], "{t:?}");
            }
            finish(ours, theirs);
        }
    }
}

#[test]
fn nng_req_against_our_rep_every_transport() {
    let c = Creds::new();
    for t in ALL {
        for ours_listens in [true, false] {
            let ours = Socket::new(Protocol::Rep0).unwrap();
            let theirs = nng_socket(nng::Protocol::Req0);
            connect(&ours, &theirs, t, ours_listens, &c);
            let b = big();
            nng_send(&theirs, &b);
            assert_eq!(ours.recv(Some(WAIT)).unwrap(), b, "{t:?}");
            ours.send(b"got it", Some(WAIT)).unwrap();
            assert_eq!(nng_recv(&theirs), b"got it", "{t:?}");
            finish(ours, theirs);
        }
    }
}

#[test]
fn nng_refuses_what_we_refuse() {
    // NNG dialing our ws listener at another path, or with another protocol, is refused by
    // our HTTP answer (404 / 400), as NNG's own listener does.
    let ours = Socket::new(Protocol::Rep0).unwrap();
    let url = ours.listen("ws://127.0.0.1:0/right").unwrap();
    let theirs = nng_socket(nng::Protocol::Req0);
    // NNG reports them as its own listener's: refused (6) and protocol error (13).
    let wrong = theirs.dial(&url.replace("/right", "/wrong"));
    assert!(
        matches!(wrong, Err(nng::Error::ConnectionRefused)),
        "{wrong:?}"
    );
    let sub = nng_socket(nng::Protocol::Sub0);
    let other = sub.dial(&url);
    assert!(matches!(other, Err(nng::Error::Protocol)), "{other:?}");
    // Our dialer against NNG's ws listener: the same codes.
    let nng_rep = nng_socket(nng::Protocol::Rep0);
    let nng_ws = nng_listen(&nng_rep, T::Ws, &Creds::new());
    let req = Socket::new(Protocol::Req0).unwrap();
    let elsewhere = nng_ws.replace("/sp", "/nowhere");
    assert_eq!(req.dial(&elsewhere).unwrap_err().code(), 6);
    let publ = Socket::new(Protocol::Pub0).unwrap();
    assert_eq!(publ.dial(&nng_ws).unwrap_err().code(), 13);
    theirs.dial(&url).unwrap();
    // A TLS dialer trusting another CA cannot reach our TLS listener, and ours cannot reach
    // NNG's: 27 on our side.
    let c = Creds::new();
    let other = Creds::new();
    let tls = ours_listen(&ours, T::Tls, &c);
    let stranger = nng_socket(nng::Protocol::Req0);
    let d = nng::DialerBuilder::new(&stranger, &tls).unwrap();
    d.set_opt::<CaFile>(other.ca.clone()).unwrap();
    assert!(d.start(false).is_err());
    let nng_rep = nng_socket(nng::Protocol::Rep0);
    let nng_url = nng_listen(&nng_rep, T::Tls, &c);
    let req = Socket::new(Protocol::Req0).unwrap();
    assert_eq!(
        req.dial_with(&nng_url, &other.ours_dial)
            .unwrap_err()
            .code(),
        27
    );
}

#[test]
fn ipv6_and_scheme_aliases_against_nng() {
    if !tp::have_ipv6() {
        // No IPv6 loopback here: the aliases are still checked over IPv4.
        eprintln!("no [::1]: IPv6 part skipped");
    }
    let mut cases = vec![
        ("tcp4://127.0.0.1:0", "tcp4"),
        ("ws4://127.0.0.1:0/a", "ws4"),
    ];
    if tp::have_ipv6() {
        cases.push(("tcp6://[::1]:0", "tcp6"));
        cases.push(("tcp://[::1]:0", "tcp"));
        cases.push(("ws6://[::1]:0/v6", "ws6"));
    }
    for (url, scheme) in cases {
        let ours = Socket::new(Protocol::Pair0).unwrap();
        let bound = ours.listen(url).unwrap();
        assert!(bound.starts_with(&format!("{scheme}://")), "{bound}");
        let theirs = nng_socket(nng::Protocol::Pair0);
        theirs
            .dial(&bound)
            .unwrap_or_else(|e| panic!("nng dial {bound}: {e}"));
        ours.wait_pipes(1, WAIT).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        nng_send(&theirs, b"six");
        assert_eq!(ours.recv(Some(WAIT)).unwrap(), b"six", "{bound}");
        ours.send(b"four", Some(WAIT)).unwrap();
        assert_eq!(nng_recv(&theirs), b"four", "{bound}");
        finish(ours, theirs);
    }
    // NNG listening on IPv6, our dialer.
    if tp::have_ipv6() {
        let port = std::net::TcpListener::bind("[::1]:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        for url in [
            format!("tcp6://[::1]:{port}"),
            format!("ws6://[::1]:{port}/x"),
        ] {
            let theirs = nng_socket(nng::Protocol::Rep0);
            theirs.listen(&url).unwrap();
            let ours = Socket::new(Protocol::Req0).unwrap();
            ours.dial(&url)
                .unwrap_or_else(|e| panic!("our dial {url}: {e}"));
            ours.wait_pipes(1, WAIT).unwrap();
            ours.send(b"v6?", Some(WAIT)).unwrap();
            assert_eq!(nng_recv(&theirs), b"v6?", "{url}");
            nng_send(&theirs, b"v6!");
            assert_eq!(ours.recv(Some(WAIT)).unwrap(), b"v6!", "{url}");
            finish(ours, theirs);
        }
    }
}
