//! Unit tests of the host runtime, driving hand-written daemons over real connections so that
//! every frame the host sends can be checked.

use std::future::Future;
use std::pin::Pin;
use std::process::ExitStatus;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use mirai_proto::{flags, Frame, Init, TaskId, PROTOCOL_VERSION};
use mirai_trace::Span;

use crate::body::TaskBody;
use crate::deferred::Deferred;
use crate::handle::{run_callback, Slot};
use crate::supervise::{backoff, crashed};
use crate::sync::lock;
use crate::*;
use mirai_proto::{Hello, Task, TaskResult};
use mirai_transport::{Connection, Options};
use std::sync::atomic::AtomicUsize;

pub(super) const LONG: Duration = Duration::from_secs(10);

pub(super) fn host() -> Host {
    Host::start(HostConfig::new("tcp://127.0.0.1:0")).expect("host starts")
}

/// A daemon played by the test: every frame is sent and checked by hand.
pub(super) struct Fake {
    pub(super) conn: Connection,
}

impl Fake {
    pub(super) fn dial(host: &Host) -> Fake {
        Fake {
            conn: Connection::dial(host.url(), &Options::default()).expect("dial"),
        }
    }

    /// Dials, says hello and returns the init bundle.
    pub(super) fn join(host: &Host) -> (Fake, Init) {
        let f = Fake::dial(host);
        f.send(&Frame::Hello(Hello {
            protocol: PROTOCOL_VERSION,
            pid: 4242,
        }));
        match f.recv() {
            Frame::Init(i) => (f, i),
            other => panic!("expected init, got {other:?}"),
        }
    }

    pub(super) fn send(&self, f: &Frame) {
        self.conn.send(&mirai_proto::encode(f)).expect("send");
    }

    pub(super) fn recv(&self) -> Frame {
        self.try_recv(LONG).expect("a frame within the timeout")
    }

    pub(super) fn try_recv(&self, t: Duration) -> Option<Frame> {
        let bytes = self.conn.recv(Some(t)).expect("connection open")?;
        Some(mirai_proto::decode(&bytes, usize::MAX).expect("host frames decode"))
    }

    pub(super) fn task(&self) -> Task {
        match self.recv() {
            Frame::Task(t) => t,
            other => panic!("expected task, got {other:?}"),
        }
    }

    pub(super) fn reply(&self, t: &Task, last: bool) {
        let r = TaskResult {
            id: t.id,
            status: Status::Ok,
            last,
            payload: t.payload.clone(),
        };
        self.send(&Frame::Result(r));
    }

    /// True once the host has closed this connection.
    pub(super) fn closed_within(&self, t: Duration) -> bool {
        let end = Instant::now() + t;
        while Instant::now() < end {
            if self.conn.recv(Some(Duration::from_millis(50))).is_err() {
                return true;
            }
        }
        false
    }
}

pub(super) fn value(payload: &[u8]) -> Option<Outcome> {
    Some(Outcome::Value {
        status: Status::Ok,
        payload: payload.to_vec(),
    })
}

mod handles;
mod notify;
mod peers;
mod reliability;
mod tasks;
