//! Per-layer micro-benchmarks (divan): `cargo bench -p mirai-bench --bench layers`.
//!
//! - `proto`: encoding and decoding a task frame and a result frame with 16-byte and 1 MiB
//!   payloads (what every task costs in `mirai-proto`, on each side);
//! - `sched`: the scheduler's dispatch cycle, a submit to an idle daemon and its result, and a
//!   queued submit drained by results (operations per second of `mirai-sched`, no I/O).

use mirai::proto::{
    decode, encode, encode_into, Frame, Status, Task, TaskResult, DEFAULT_MAX_FRAME,
};
use mirai::sched::{Action, Config, DaemonId, Mode, Scheduler, TaskId, TaskKind};

fn main() {
    divan::main();
}

const SIZES: [usize; 2] = [16, 1 << 20];

fn task_frame(n: usize) -> Frame {
    Frame::Task(Task {
        id: TaskId(42),
        flags: 0,
        payload: vec![7u8; n],
        trace: None,
    })
}

fn result_frame(n: usize) -> Frame {
    Frame::Result(TaskResult {
        id: TaskId(42),
        status: Status::Ok,
        last: false,
        payload: vec![7u8; n],
    })
}

#[divan::bench_group]
mod proto {
    use super::*;

    #[divan::bench(args = SIZES)]
    fn encode_task(b: divan::Bencher, n: usize) {
        let f = task_frame(n);
        b.counter(divan::counter::BytesCount::new(n))
            .bench(|| encode(divan::black_box(&f)));
    }

    #[divan::bench(args = SIZES)]
    fn encode_task_into_reused_buffer(b: divan::Bencher, n: usize) {
        let f = task_frame(n);
        let mut out = Vec::with_capacity(n + 64);
        b.counter(divan::counter::BytesCount::new(n))
            .bench_local(|| {
                out.clear();
                encode_into(divan::black_box(&f), &mut out);
            });
    }

    #[divan::bench(args = SIZES)]
    fn decode_task(b: divan::Bencher, n: usize) {
        let bytes = encode(&task_frame(n));
        b.counter(divan::counter::BytesCount::new(n))
            .bench(|| decode(divan::black_box(&bytes), DEFAULT_MAX_FRAME).map(|_| ()));
    }

    #[divan::bench(args = SIZES)]
    fn encode_result(b: divan::Bencher, n: usize) {
        let f = result_frame(n);
        b.counter(divan::counter::BytesCount::new(n))
            .bench(|| encode(divan::black_box(&f)));
    }

    #[divan::bench(args = SIZES)]
    fn decode_result(b: divan::Bencher, n: usize) {
        let bytes = encode(&result_frame(n));
        b.counter(divan::counter::BytesCount::new(n))
            .bench(|| decode(divan::black_box(&bytes), DEFAULT_MAX_FRAME).map(|_| ()));
    }
}

/// A dispatcher-mode scheduler with `n` daemons that completed the handshake.
fn scheduler(n: u64) -> Scheduler<()> {
    let mut s = Scheduler::new(
        Config::new()
            .with_mode(Mode::Dispatcher)
            .with_memory_limit(None),
    );
    for d in 0..n {
        s.connected(DaemonId(d));
        s.hello(DaemonId(d));
    }
    while s.poll_action().is_some() {}
    s
}

#[divan::bench_group]
mod sched {
    use super::*;

    /// One task submitted to an idle daemon, dispatched, and answered: the per-task cycle when
    /// daemons keep up.
    #[divan::bench(args = [1, 1000])]
    fn submit_dispatch_result(b: divan::Bencher, daemons: u64) {
        let mut s = scheduler(daemons);
        let mut id = 0u64;
        b.counter(divan::counter::ItemsCount::new(1usize))
            .bench_local(|| {
                id += 1;
                s.submit(TaskId(id), (), 16, TaskKind::Normal, None);
                let mut to = None;
                while let Some(a) = s.poll_action() {
                    if let Action::Dispatch { daemon, task, .. } = a {
                        to = Some((daemon, task));
                    }
                }
                if let Some((daemon, task)) = to {
                    divan::black_box(s.result(daemon, task, false));
                }
                while s.poll_action().is_some() {}
            });
    }

    /// 10,000 tasks queued behind 2 busy daemons, then drained result by result: queue
    /// operations per second.
    #[divan::bench]
    fn queue_10k_then_drain(b: divan::Bencher) {
        b.counter(divan::counter::ItemsCount::new(10_000usize))
            .bench_local(|| {
                let mut s = scheduler(2);
                let mut running = Vec::new();
                for id in 1..=10_000u64 {
                    s.submit(TaskId(id), (), 16, TaskKind::Normal, None);
                    while let Some(a) = s.poll_action() {
                        if let Action::Dispatch { daemon, task, .. } = a {
                            running.push((daemon, task));
                        }
                    }
                }
                while let Some((daemon, task)) = running.pop() {
                    divan::black_box(s.result(daemon, task, false));
                    while let Some(a) = s.poll_action() {
                        if let Action::Dispatch { daemon, task, .. } = a {
                            running.push((daemon, task));
                        }
                    }
                }
            });
    }
}
