//! Coalesced batches (`flags::COALESCE`): the worker holds its elements' results and sends
//! them together, in order; against a fake host, in-process.

mod common;

use std::time::Duration;

use common::*;
use mirai_daemon::{
    BuiltinEvaluator, DaemonConfig, EvalControl, Evaluation, Evaluator, ExitCode, Status, Task,
    Unit,
};
use mirai_proto::{flags, Batch, Frame, TaskId, TaskResult};

/// Evaluates element `i` of a chunk of `;`-separated builtin tasks as that task.
struct Elements;

impl Evaluator for Elements {
    fn evaluate(&mut self, task: Task, ctl: &mut EvalControl<'_>) -> Evaluation {
        BuiltinEvaluator.evaluate(task, ctl)
    }
    fn evaluate_unit(&mut self, task: Task, unit: &Unit, ctl: &mut EvalControl<'_>) -> Evaluation {
        let payload = unit
            .payload
            .split(|&b| b == b';')
            .nth(unit.index as usize)
            .unwrap_or_default()
            .to_vec();
        BuiltinEvaluator.evaluate(Task { payload, ..task }, ctl)
    }
}

fn batch(id: u64, elements: &[String], coalesce: bool) -> Frame {
    Frame::Batch(Batch {
        id: TaskId(id),
        flags: if coalesce { flags::COALESCE } else { 0 },
        offset: 0,
        count: elements.len() as u32,
        payload: elements.join(";").into_bytes(),
        trace: None,
    })
}

/// Receives results until `n` have come: the messages, each a list of results (one for a
/// `Result` frame), and any other frames.
fn collect(host: &mut FakeHost, n: usize) -> (Vec<Vec<TaskResult>>, Vec<Frame>) {
    let (mut messages, mut others) = (Vec::new(), Vec::new());
    let mut got = 0;
    while got < n {
        match host.recv() {
            Frame::Results(rs) => {
                got += rs.len();
                messages.push(rs);
            }
            Frame::Result(r) => {
                got += 1;
                messages.push(vec![r]);
            }
            other => others.push(other),
        }
    }
    (messages, others)
}

fn ids(messages: &[Vec<TaskResult>]) -> Vec<u64> {
    messages.iter().flatten().map(|r| r.id.get()).collect()
}

#[test]
fn a_coalesced_batch_of_tiny_elements_answers_in_a_few_messages_in_order() {
    let mut host = FakeHost::tcp();
    let d = spawn_daemon(DaemonConfig::new(host.url()), Elements);
    host.handshake();
    let elements: Vec<String> = (0..200).map(|i| format!("echo:{i}")).collect();
    host.send(&batch(1, &elements, true));
    let (messages, others) = collect(&mut host, 200);
    // (A machine that stalls the daemon for a millisecond may make it say where it is.)
    assert!(
        others.iter().all(|f| matches!(f, Frame::Running { .. })),
        "{others:?}"
    );
    assert_eq!(ids(&messages), (1..=200).collect::<Vec<u64>>());
    for (i, r) in messages.iter().flatten().enumerate() {
        assert_eq!((r.status, r.last), (Status::Ok, false));
        assert_eq!(r.payload, i.to_string().into_bytes());
    }
    // 200 echoes take far less than the 1 ms hold: a message or a few (a busy machine may
    // stall the daemon), never one per element.
    assert!(messages.len() < 20, "{} messages", messages.len());
    // Nothing is held once the batch is done: a task behind it is answered on its own.
    host.task(500, b"echo:after");
    assert_eq!(host.result().id, TaskId(500));
    host.send(&Frame::Exit);
    assert_eq!(join(d).unwrap(), ExitCode::Disconnected);
}

#[test]
fn a_batch_not_coalesced_answers_each_element_in_its_own_result() {
    let mut host = FakeHost::tcp();
    let d = spawn_daemon(DaemonConfig::new(host.url()), Elements);
    host.handshake();
    let elements: Vec<String> = (0..20).map(|i| format!("echo:{i}")).collect();
    host.send(&batch(1, &elements, false));
    for i in 1..=20u64 {
        assert_eq!(host.result().id, TaskId(i));
    }
    host.send(&Frame::Exit);
    assert_eq!(join(d).unwrap(), ExitCode::Disconnected);
}

#[test]
fn held_results_go_after_about_a_millisecond_without_waiting_for_the_batch_end() {
    let mut host = FakeHost::tcp();
    let d = spawn_daemon(DaemonConfig::new(host.url()), Elements);
    host.handshake();
    // The echo's result is held; the 3 ms sleep passes the hold, so both go before the third
    // element, which blocks for 400 ms, has ended.
    let elements = ["echo:a", "sleep:3", "block:400"].map(String::from);
    let sent = std::time::Instant::now();
    host.send(&batch(1, &elements, true));
    let (messages, _) = collect(&mut host, 2);
    assert!(
        sent.elapsed() < Duration::from_millis(300),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!(ids(&messages), vec![1, 2]);
    // And the host hears that the third is running, after the results before it.
    assert_eq!(host.recv(), Frame::Running { id: TaskId(3) });
    let (messages, _) = collect(&mut host, 1);
    assert_eq!(ids(&messages), vec![3]);
    assert!(sent.elapsed() >= Duration::from_millis(400));
    host.send(&Frame::Exit);
    assert_eq!(join(d).unwrap(), ExitCode::Disconnected);
}

#[test]
fn cancels_of_a_coalesced_batch_are_answered_and_the_rest_in_order() {
    let mut host = FakeHost::tcp();
    let d = spawn_daemon(DaemonConfig::new(host.url()), Elements);
    host.handshake();
    // The first element polls while it sleeps: it is interrupted, the third is dropped
    // unstarted, and the daemon goes on with the rest.
    let mut elements = vec!["sleep:5000".to_string()];
    elements.extend((1..6).map(|i| format!("echo:{i}")));
    host.send(&batch(1, &elements, true));
    host.cancel(3);
    let mut frames = vec![host.recv(), host.recv()];
    frames.sort_by_key(|f| f.kind());
    assert_eq!(
        frames,
        vec![
            Frame::Running { id: TaskId(1) },
            Frame::Withdrawn { id: TaskId(3) }
        ]
    );
    host.cancel(1);
    let (messages, others) = collect(&mut host, 5);
    assert!(others.is_empty(), "{others:?}");
    assert_eq!(ids(&messages), vec![1, 2, 4, 5, 6]);
    let first = &messages[0][0];
    assert_eq!(first.status, Status::Interrupted);
    assert!(
        host.try_recv(Duration::from_millis(100)).is_none(),
        "element 3 was evaluated after all"
    );
    host.send(&Frame::Exit);
    assert_eq!(join(d).unwrap(), ExitCode::Disconnected);
}
