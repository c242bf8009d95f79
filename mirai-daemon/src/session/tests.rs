//! Unit tests of the daemon session: one rule each.

use super::*;
use mirai_proto::Batch;
use mirai_proto::{encode, Hello, Status, TaskResult, PROTOCOL_VERSION};

fn task(id: u64) -> Vec<u8> {
    encode(&Frame::Task(Task {
        id: TaskId(id),
        flags: 0,
        payload: b"secret-payload".to_vec(),
        trace: None,
    }))
}

fn ready() -> Session {
    let mut s = Session::new(1 << 20);
    let init = Init {
        stream: None,
        serial: vec![],
    };
    assert_eq!(
        s.on_frame(&encode(&Frame::Init(init.clone()))),
        Step::Init(init)
    );
    s
}

fn batch(id: u64, offset: u32, count: u32) -> Vec<u8> {
    encode(&Frame::Batch(Batch {
        id: TaskId(id),
        flags: 0,
        offset,
        count,
        payload: b"chunk".to_vec(),
        trace: None,
    }))
}

#[test]
fn a_coalesced_batch_names_its_chunk_for_its_elements_and_a_plain_one_does_not() {
    let mut s = ready();
    let mut frame = Batch {
        id: TaskId(1),
        flags: mirai_proto::flags::COALESCE,
        offset: 0,
        count: 2,
        payload: b"chunk".to_vec(),
        trace: None,
    };
    assert!(matches!(
        s.on_frame(&encode(&Frame::Batch(frame.clone()))),
        Step::Start(_)
    ));
    frame.id = TaskId(3);
    frame.flags = 0;
    assert_eq!(s.on_frame(&encode(&Frame::Batch(frame))), Step::Continue);
    let chunk = s.coalesced(TaskId(1)).expect("coalesced");
    assert_eq!(s.coalesced(TaskId(2)), Some(chunk));
    assert_eq!(s.coalesced(TaskId(3)), None, "not coalesced");
    assert_eq!(s.next_unit_chunk(), Some(chunk), "its next element waits");
    s.finish(false);
    assert_eq!(s.next_pending().map(|t| t.id), Some(TaskId(2)));
    s.finish(false);
    let next = s.next_unit_chunk().expect("an element of the second batch");
    assert_ne!(next, chunk, "a batch of its own");
    s.check_invariants();
}

#[test]
fn a_batch_becomes_one_task_per_element_served_in_order_with_its_chunk() {
    let mut s = ready();
    let Step::Start(t) = s.on_frame(&batch(10, 4, 3)) else {
        panic!("the first element starts at once");
    };
    assert_eq!(t.id, TaskId(10));
    let u = s.unit(TaskId(10)).expect("an element");
    assert_eq!((u.index, &u.payload[..]), (4, &b"chunk"[..]));
    assert_eq!(s.unit(TaskId(12)).map(|u| u.index), Some(6));
    assert_eq!(s.unit(TaskId(13)), None);
    assert_eq!(s.pending(), 2);
    s.check_invariants();
    s.finish(false);
    assert_eq!(s.next_pending().map(|t| t.id), Some(TaskId(11)));
    s.finish(false);
    assert_eq!(s.next_pending().map(|t| t.id), Some(TaskId(12)));
    assert!(
        s.unit(TaskId(12)).is_some(),
        "kept while its last element runs"
    );
    s.finish(false);
    assert_eq!(s.unit(TaskId(12)), None, "freed after its last element");
    s.check_invariants();
}

#[test]
fn an_element_not_started_is_given_back_alone_when_cancelled_or_withdrawn() {
    let mut s = ready();
    assert!(matches!(s.on_frame(&batch(1, 0, 4)), Step::Start(_)));
    assert_eq!(
        s.on_frame(&encode(&Frame::Withdraw { id: TaskId(4) })),
        Step::Reply(Frame::Withdrawn { id: TaskId(4) })
    );
    assert_eq!(
        s.on_frame(&encode(&Frame::Cancel { id: TaskId(2) })),
        Step::Reply(Frame::Withdrawn { id: TaskId(2) })
    );
    // The element being evaluated is interrupted by its cancel, not given back.
    assert_eq!(
        s.on_frame(&encode(&Frame::Cancel { id: TaskId(1) })),
        Step::Continue
    );
    assert!(s.cancelled());
    s.check_invariants();
    s.finish(false);
    assert_eq!(s.next_pending().map(|t| t.id), Some(TaskId(3)));
    assert!(!s.cancelled());
    s.finish(false);
    assert_eq!(s.next_pending(), None);
    s.check_invariants();
}

#[test]
fn elements_left_at_a_last_result_or_arriving_after_it_are_given_back() {
    let mut s = ready();
    assert!(matches!(s.on_frame(&batch(1, 0, 3)), Step::Start(_)));
    assert_eq!(s.finish(true), vec![TaskId(2), TaskId(3)]);
    assert_eq!(s.unit(TaskId(2)), None);
    assert_eq!(
        s.on_frame(&batch(7, 3, 2)),
        Step::Replies(vec![
            Frame::Withdrawn { id: TaskId(7) },
            Frame::Withdrawn { id: TaskId(8) }
        ])
    );
    s.check_invariants();
}

#[test]
fn a_batch_whose_ids_overflow_is_empty() {
    let mut s = ready();
    assert_eq!(s.on_frame(&batch(u64::MAX, 0, 2)), Step::Continue);
    assert_eq!(s.pending(), 0);
    s.check_invariants();
}

#[test]
fn handshake_wants_init_and_nothing_else() {
    for bad in [
        task(1),
        encode(&Frame::Ack),
        encode(&Frame::Cancel { id: TaskId(1) }),
    ] {
        let mut s = Session::new(1 << 20);
        assert!(matches!(s.on_frame(&bad), Step::Fatal(_)));
    }
    let mut s = Session::new(1 << 20);
    assert_eq!(s.on_frame(&encode(&Frame::Exit)), Step::Exit);
    assert!(s.exit_requested());
    let mut s = Session::new(1 << 20);
    assert!(matches!(s.on_frame(b"garbage"), Step::Fatal(_)));
}

#[test]
fn tasks_arriving_during_an_evaluation_wait_in_order_and_a_cancel_drops_one_unstarted() {
    let mut s = ready();
    assert!(matches!(s.on_frame(&task(1)), Step::Start(t) if t.id == TaskId(1)));
    assert_eq!(s.phase(), Phase::Evaluating(TaskId(1)));
    assert_eq!(s.on_frame(&task(2)), Step::Continue);
    assert_eq!(s.on_frame(&task(3)), Step::Continue);
    assert_eq!(s.on_frame(&task(4)), Step::Continue);
    // A cancel of a waiting task: it never starts, and the host is told so.
    assert_eq!(
        s.on_frame(&encode(&Frame::Cancel { id: TaskId(3) })),
        Step::Reply(Frame::Withdrawn { id: TaskId(3) })
    );
    assert_eq!(s.pending(), 2);
    assert_eq!(
        s.on_frame(&encode(&Frame::Cancel { id: TaskId(99) })),
        Step::Continue
    );
    assert!(!s.cancelled());
    assert_eq!(
        s.on_frame(&encode(&Frame::Cancel { id: TaskId(1) })),
        Step::Continue
    );
    assert!(s.cancelled());
    s.check_invariants();
    assert_eq!(s.finish(false), Vec::<TaskId>::new());
    assert_eq!(s.next_pending().map(|t| t.id), Some(TaskId(2)));
    assert!(!s.cancelled());
    s.finish(false);
    assert_eq!(s.next_pending().map(|t| t.id), Some(TaskId(4)));
    assert!(!s.cancelled());
    s.finish(false);
    assert_eq!(s.next_pending(), None);
    s.check_invariants();
}

#[test]
fn a_withdraw_gives_back_a_waiting_task_and_leaves_a_started_one_alone() {
    let mut s = ready();
    assert!(matches!(s.on_frame(&task(1)), Step::Start(_)));
    assert_eq!(s.on_frame(&task(2)), Step::Continue);
    // The task being evaluated is not given back: its result follows.
    assert_eq!(
        s.on_frame(&encode(&Frame::Withdraw { id: TaskId(1) })),
        Step::Continue
    );
    assert!(!s.cancelled(), "a withdraw is not a cancel");
    assert_eq!(
        s.on_frame(&encode(&Frame::Withdraw { id: TaskId(2) })),
        Step::Reply(Frame::Withdrawn { id: TaskId(2) })
    );
    assert_eq!(s.pending(), 0);
    // Asked twice, or for an unknown task: nothing to give back.
    assert_eq!(
        s.on_frame(&encode(&Frame::Withdraw { id: TaskId(2) })),
        Step::Continue
    );
    s.finish(false);
    assert_eq!(s.next_pending(), None);
    // Once started, a pipelined task is no longer given back.
    assert!(matches!(s.on_frame(&task(3)), Step::Start(_)));
    assert_eq!(s.on_frame(&task(4)), Step::Continue);
    s.finish(false);
    assert_eq!(s.next_pending().map(|t| t.id), Some(TaskId(4)));
    assert_eq!(
        s.on_frame(&encode(&Frame::Withdraw { id: TaskId(4) })),
        Step::Continue
    );
    s.check_invariants();
    // During the handshake a withdraw is a protocol error like any other frame.
    let mut h = Session::new(1 << 20);
    assert!(matches!(
        h.on_frame(&encode(&Frame::Withdraw { id: TaskId(1) })),
        Step::Fatal(_)
    ));
}

#[test]
fn after_a_last_result_nothing_starts_and_everything_is_given_back() {
    let mut s = ready();
    assert!(matches!(s.on_frame(&task(1)), Step::Start(_)));
    assert_eq!(s.on_frame(&task(2)), Step::Continue);
    assert_eq!(
        s.finish(true),
        vec![TaskId(2)],
        "the pipelined task is handed back"
    );
    assert_eq!(s.phase(), Phase::AwaitingAck);
    assert_eq!(s.next_pending(), None);
    assert_eq!(
        s.on_frame(&task(3)),
        Step::Reply(Frame::Withdrawn { id: TaskId(3) }),
        "a task crossing the last result is given back"
    );
    assert_eq!(s.next_pending(), None);
    assert_eq!(s.on_frame(&encode(&Frame::Ack)), Step::Acked);
    s.check_invariants();
}

#[test]
fn leaving_gives_back_a_cancelled_waiting_task() {
    let mut s = ready();
    s.leave();
    assert_eq!(s.on_frame(&task(1)), Step::Continue);
    assert_eq!(
        s.on_frame(&encode(&Frame::Cancel { id: TaskId(1) })),
        Step::Reply(Frame::Withdrawn { id: TaskId(1) })
    );
    assert_eq!(s.next_pending(), None);
    s.check_invariants();
}

#[test]
fn last_result_waits_for_the_ack() {
    let mut s = ready();
    assert!(matches!(s.on_frame(&task(1)), Step::Start(_)));
    s.on_frame(&task(2));
    assert_eq!(
        s.finish(true),
        vec![TaskId(2)],
        "the early task is reported as not evaluated"
    );
    assert_eq!(
        s.on_frame(&task(3)),
        Step::Reply(Frame::Withdrawn { id: TaskId(3) })
    );
    assert_eq!(s.next_pending(), None);
    assert_eq!(s.on_frame(&encode(&Frame::Ack)), Step::Acked);
}

#[test]
fn leaving_serves_what_arrives_before_the_ack() {
    let mut s = ready();
    assert!(s.leave());
    assert_eq!(s.phase(), Phase::Leaving);
    assert_eq!(s.on_frame(&task(1)), Step::Continue);
    assert_eq!(s.next_pending().map(|t| t.id), Some(TaskId(1)));
    assert_eq!(s.on_frame(&task(2)), Step::Continue);
    // The ack arrives during the evaluation of task 1, after task 2.
    assert_eq!(s.on_frame(&encode(&Frame::Ack)), Step::Continue);
    assert!(s.acked());
    s.finish(true);
    assert_eq!(s.phase(), Phase::Leaving);
    assert_eq!(s.next_pending().map(|t| t.id), Some(TaskId(2)));
    s.finish(true);
    assert_eq!(s.next_pending(), None);
    s.check_invariants();
    let mut s = ready();
    s.leave();
    assert_eq!(s.on_frame(&encode(&Frame::Ack)), Step::Acked);
}

#[test]
fn garbage_loses_the_connection_without_quoting_it() {
    let mut s = ready();
    // A frame whose body holds a text string where a number belongs: CBOR error messages
    // quote such values.
    let mut b = mirai_proto::MAGIC.to_vec();
    b.push(PROTOCOL_VERSION);
    b.extend_from_slice(&[0xa1, 0x66]);
    b.extend_from_slice(b"Cancel");
    b.extend_from_slice(&[0xa1, 0x62]);
    b.extend_from_slice(b"id");
    b.push(0x6e);
    b.extend_from_slice(b"secret-payload");
    match s.on_frame(&b) {
        Step::Lost(why) => assert!(!why.contains("secret"), "{why}"),
        other => panic!("expected Lost, got {other:?}"),
    }
    let hello = encode(&Frame::Hello(Hello {
        protocol: PROTOCOL_VERSION,
        pid: 1,
    }));
    assert_eq!(
        s.on_frame(&hello),
        Step::Continue,
        "unexpected kinds are ignored"
    );
    let result = encode(&Frame::Result(TaskResult {
        id: TaskId(1),
        status: Status::Ok,
        last: false,
        payload: vec![],
    }));
    assert_eq!(s.on_frame(&result), Step::Continue);
}
