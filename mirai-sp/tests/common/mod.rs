//! Shared helpers for the NNG interop tests: connect one of our sockets to an `nng::Socket`
//! over tcp or ipc, in either direction, with every wait bounded.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use mirai_sp::{Protocol, Socket};
use nng::options::{Options, RecvMaxSize, RecvTimeout, SendTimeout};

/// Upper bound for any single wait in these tests.
pub const WAIT: Duration = Duration::from_secs(5);
/// Bound for waits that are expected to time out.
pub const SHORT: Duration = Duration::from_millis(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tp {
    Tcp,
    Ipc,
}

/// Every transport and direction: (transport, ours_listens).
pub const MATRIX: [(Tp, bool); 4] = [
    (Tp::Tcp, true),
    (Tp::Tcp, false),
    (Tp::Ipc, true),
    (Tp::Ipc, false),
];

/// A fresh ipc path in the temp directory.
pub fn ipc_url() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let p = std::env::temp_dir().join(format!("mirai-sp-{}-{n}.sock", std::process::id()));
    let _stale = std::fs::remove_file(&p);
    format!("ipc://{}", p.display())
}

/// An NNG socket with bounded send/receive and no receive size limit (nanonext's default).
pub fn nng_socket(p: nng::Protocol) -> nng::Socket {
    let s = nng::Socket::new(p).expect("nng socket");
    s.set_opt::<RecvTimeout>(Some(WAIT))
        .expect("nng recv timeout");
    s.set_opt::<SendTimeout>(Some(WAIT))
        .expect("nng send timeout");
    s.set_opt::<RecvMaxSize>(0).expect("nng recv max");
    s
}

/// Listens on `theirs` and returns the URL to dial.
pub fn nng_listen(theirs: &nng::Socket, tp: Tp) -> String {
    match tp {
        Tp::Tcp => {
            let l = nng::Listener::new(theirs, "tcp://127.0.0.1:0").expect("nng listen");
            let port = l
                .get_opt::<nng::options::transport::tcp::BoundPort>()
                .expect("bound port");
            format!("tcp://127.0.0.1:{port}")
        }
        Tp::Ipc => {
            let url = ipc_url();
            theirs.listen(&url).expect("nng listen ipc");
            url
        }
    }
}

/// Connects `ours` and `theirs` (listener chosen by `ours_listens`) and waits for the pipe.
pub fn connect(ours: &Socket, theirs: &nng::Socket, tp: Tp, ours_listens: bool) {
    if ours_listens {
        let url = match tp {
            Tp::Tcp => ours.listen("tcp://127.0.0.1:0").expect("listen"),
            Tp::Ipc => ours.listen(&ipc_url()).expect("listen ipc"),
        };
        theirs.dial(&url).expect("nng dial");
    } else {
        let url = nng_listen(theirs, tp);
        ours.dial(&url).expect("dial");
    }
    let before = ours.pipes().len();
    ours.wait_pipes(before.max(1), WAIT).expect("pipe up");
    // NNG attaches its side of the pipe just after ours: let it, so nothing is dropped.
    std::thread::sleep(Duration::from_millis(100));
}

/// Our socket for `proto`, connected to a new NNG socket of `theirs`.
pub fn pair_up(
    proto: Protocol,
    theirs: nng::Protocol,
    tp: Tp,
    ours_listens: bool,
) -> (Socket, nng::Socket) {
    let ours = Socket::new(proto).expect("socket");
    let t = nng_socket(theirs);
    connect(&ours, &t, tp, ours_listens);
    (ours, t)
}

pub fn nng_send(s: &nng::Socket, body: &[u8]) {
    s.send(nng::Message::from(body))
        .map_err(|(_, e)| e)
        .expect("nng send");
}

pub fn nng_recv(s: &nng::Socket) -> Vec<u8> {
    s.recv().expect("nng recv").as_slice().to_vec()
}

/// A 1 MiB body with a recognisable pattern.
pub fn big() -> Vec<u8> {
    (0..1 << 20).map(|i: u32| (i % 251) as u8).collect()
}

/// Closes our socket first, then NNG's once it has seen the pipe go. Observed with libnng
/// 1.5.2: `nng_close` on an ipc socket whose peer is still connected sometimes never returns
/// (in about half the runs of the req-resend and respondent tests), so NNG closes last.
pub fn finish(ours: Socket, theirs: nng::Socket) {
    ours.close().expect("close");
    drop(ours);
    std::thread::sleep(Duration::from_millis(50));
    drop(theirs);
}
