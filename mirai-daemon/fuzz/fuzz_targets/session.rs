//! The daemon's frame handling ([`mirai_daemon::session::Session`]) driven by arbitrary
//! sequences of host messages and worker events: it must never panic, keep its invariants,
//! serve early tasks in arrival order, start tasks only when idle, and give back (answer
//! `Withdrawn` for) exactly the waiting tasks that are withdrawn or cancelled, and every task
//! dropped or arriving after a `last` result.
//!
//! Input: a sequence of operations, each an opcode byte and its arguments. Raw messages are
//! arbitrary bytes; structured ones are valid frames built from a few bytes, so that the
//! fuzzer reaches the stateful paths (early tasks, cancels, acks) that random bytes rarely
//! decode to.
#![no_main]
use std::collections::VecDeque;

use libfuzzer_sys::fuzz_target;
use mirai_daemon::session::{Phase, Session, Step};
use mirai_proto::{encode, Frame, Hello, Init, Status, Task, TaskId, TaskResult, PROTOCOL_VERSION};

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
}

fn structured(kind: u8, arg: u8) -> Frame {
    let id = TaskId(u64::from(arg % 8));
    match kind % 8 {
        0 | 1 => Frame::Task(Task {
            id,
            flags: arg >> 7,
            payload: vec![arg; usize::from(arg % 5)],
            trace: None,
        }),
        2 => Frame::Cancel { id },
        3 => match arg % 3 {
            0 => Frame::Cancel { id },
            1 => Frame::Withdraw { id },
            _ => Frame::Withdrawn { id },
        },
        4 => Frame::Ack,
        5 => Frame::Exit,
        6 => Frame::Init(Init {
            stream: (arg % 2 == 0).then_some([10407, 1, 2, 3, 4, 5, 6]),
            serial: vec![arg],
        }),
        _ => match arg % 2 {
            0 => Frame::Hello(Hello {
                protocol: PROTOCOL_VERSION,
                pid: u32::from(arg),
            }),
            _ => Frame::Result(TaskResult {
                id,
                status: Status::Ok,
                last: arg % 3 == 0,
                payload: vec![],
            }),
        },
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let mut s = Session::new(1 << 16);
    // Ids of the tasks waiting in the session, in arrival order (a model of it).
    let mut waiting: VecDeque<TaskId> = VecDeque::new();
    let mut exited = false;
    let mut leaving = false;
    while let Some(op) = input.byte() {
        let before = s.phase();
        let bytes = match op % 7 {
            0 | 1 => {
                let len = usize::from(input.byte().unwrap_or(0));
                Some(input.bytes(len).to_vec())
            }
            2 | 3 => {
                let (k, a) = (input.byte().unwrap_or(0), input.byte().unwrap_or(0));
                Some(encode(&structured(k, a)))
            }
            4 => {
                // The evaluation (if any) ends; `last` with the opcode's high bit.
                if let Phase::Evaluating(_) = before {
                    let last = op & 0x80 != 0;
                    let left = s.finish(last);
                    if leaving {
                        assert!(left.is_empty());
                        assert_eq!(s.phase(), Phase::Leaving);
                    } else if last {
                        assert_eq!(left, Vec::from(std::mem::take(&mut waiting)));
                        assert_eq!(s.phase(), Phase::AwaitingAck);
                    } else {
                        assert!(left.is_empty());
                        assert_eq!(s.phase(), Phase::Idle);
                    }
                }
                None
            }
            5 => {
                // An idle limit: the worker sends its leave notice.
                let ok = s.leave();
                assert_eq!(ok, before == Phase::Idle);
                if ok {
                    leaving = true;
                    assert_eq!(s.phase(), Phase::Leaving);
                }
                None
            }
            _ => {
                // An idle or leaving worker serves early tasks first, in arrival order.
                let got = s.next_pending().map(|t| t.id);
                if matches!(before, Phase::Idle | Phase::Leaving) {
                    assert_eq!(got, waiting.pop_front());
                    if let Some(id) = got {
                        assert_eq!(s.phase(), Phase::Evaluating(id));
                    }
                } else {
                    assert_eq!(got, None);
                }
                None
            }
        };
        if let Some(bytes) = bytes {
            let step = s.on_frame(&bytes);
            let decoded = mirai_proto::decode(&bytes, 1 << 16);
            match &step {
                Step::Init(_) => assert_eq!(before, Phase::Handshake),
                Step::Start(t) => {
                    assert_eq!(before, Phase::Idle);
                    assert!(waiting.is_empty(), "a new task overtook early ones");
                    assert_eq!(s.phase(), Phase::Evaluating(t.id));
                }
                Step::Exit => exited = true,
                Step::Acked => assert!(matches!(before, Phase::AwaitingAck | Phase::Leaving)),
                Step::Fatal(_) => assert_eq!(before, Phase::Handshake),
                Step::Lost(_) => assert!(decoded.is_err()),
                Step::Continue => {}
                Step::Reply(Frame::Withdrawn { id }) => {
                    // Only a waiting task (withdrawn or cancelled), or a task arriving after
                    // the last result, is given back.
                    match &decoded {
                        Ok(Frame::Withdraw { id: w } | Frame::Cancel { id: w }) => {
                            assert_eq!(w, id);
                            let at = waiting.iter().position(|x| x == id);
                            assert!(at.is_some(), "gave back task {id} that was not waiting");
                            waiting.remove(at.unwrap_or(0));
                        }
                        Ok(Frame::Task(t)) => {
                            assert_eq!(t.id, *id);
                            assert_eq!(before, Phase::AwaitingAck);
                        }
                        other => panic!("withdrawn in answer to {other:?}"),
                    }
                }
                Step::Reply(other) => panic!("unexpected reply {other:?}"),
                // A batch's elements arriving after the last result, each given back.
                Step::Replies(frames) => {
                    assert_eq!(before, Phase::AwaitingAck);
                    assert!(matches!(decoded, Ok(Frame::Batch(_))));
                    assert!(frames.iter().all(|f| matches!(f, Frame::Withdrawn { .. })));
                }
                // A step added to the session after this target was written.
                other => panic!("unhandled step {other:?}"),
            }
            if let Step::Lost(why) | Step::Fatal(why) = &step {
                // Nothing of the host's bytes may be quoted in the reason: no run of 16
                // letters of the input (longer than any word of the messages) appears in it.
                for w in bytes.windows(16) {
                    if w.iter().all(u8::is_ascii_alphabetic) {
                        let text = std::str::from_utf8(w).unwrap_or_default();
                        assert!(!why.contains(text), "reason quotes the input: {why}");
                    }
                }
            }
            // An early task waits: during an evaluation, or while idle behind other early
            // tasks (the worker serves those before reading the connection again).
            if let (
                Ok(Frame::Task(t)),
                Phase::Evaluating(_) | Phase::Idle | Phase::Leaving,
                Step::Continue,
            ) = (&decoded, before, &step)
            {
                waiting.push_back(t.id);
            }
            if decoded.is_err() {
                assert!(matches!(step, Step::Lost(_) | Step::Fatal(_)));
            }
        }
        assert_eq!(s.exit_requested(), exited);
        if s.acked() {
            assert!(leaving, "acked without a leave notice");
        }
        assert_eq!(s.pending(), waiting.len());
        s.check_invariants();
    }
});
