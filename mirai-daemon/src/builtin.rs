//! The evaluator of the `mirai-daemon` binary, for tests and benchmarks.

use std::time::{Duration, Instant};

use crate::{EvalControl, Evaluation, Evaluator, Status, Task};

/// A small command language for exercising the engine without R.
///
/// The payload's prefix up to the first `:` selects the action:
/// - `echo:<bytes>`: ok, with the bytes after the prefix;
/// - `sleep:<ms>`: waits, interruptibly; interrupted (payload `interrupted`) if cancelled,
///   else ok with payload `slept`;
/// - `fail:<msg>`: error status with payload `<msg>`;
/// - `pid:`: ok with the daemon's process id as decimal text;
/// - `spin:<ms>`: keeps the CPU busy, checking for a cancel about every millisecond
///   (interrupted if cancelled, else ok with payload `spun`);
/// - `block:<ms>`: sleeps without looking at the connection at all (like R code that never
///   returns to the event loop), ok with payload `blocked`; only the autoexit watchdog can
///   stop it;
/// - anything else: ok, echoing the whole payload (so raw benchmark payloads work).
#[derive(Debug, Clone, Copy, Default)]
pub struct BuiltinEvaluator;

fn ok(payload: Vec<u8>) -> Evaluation {
    Evaluation {
        status: Status::Ok,
        payload,
    }
}

fn interrupted() -> Evaluation {
    Evaluation {
        status: Status::Interrupted,
        payload: b"interrupted".to_vec(),
    }
}

fn parse_ms(arg: &[u8]) -> Result<Duration, Evaluation> {
    std::str::from_utf8(arg)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(Duration::from_millis)
        .ok_or_else(|| Evaluation {
            status: Status::Error,
            payload: format!(
                "expected a whole number of milliseconds, got '{}'",
                String::from_utf8_lossy(arg)
            )
            .into_bytes(),
        })
}

fn spin(duration: Duration, ctl: &mut EvalControl<'_>) -> Evaluation {
    let start = Instant::now();
    let mut next_poll = start;
    loop {
        let now = Instant::now();
        if now.duration_since(start) >= duration {
            return ok(b"spun".to_vec());
        }
        if now >= next_poll {
            if ctl.poll_cancel() {
                return interrupted();
            }
            next_poll = now + Duration::from_millis(1);
        }
        std::hint::spin_loop();
    }
}

impl Evaluator for BuiltinEvaluator {
    fn evaluate(&mut self, task: Task, ctl: &mut EvalControl<'_>) -> Evaluation {
        let mut payload = task.payload;
        let Some(colon) = payload.iter().position(|&b| b == b':') else {
            return ok(payload);
        };
        let arg = &payload[colon + 1..];
        match &payload[..colon] {
            b"echo" => {
                payload.drain(..=colon);
                ok(payload)
            }
            b"sleep" => match parse_ms(arg) {
                Ok(d) if ctl.wait_cancel(d) => interrupted(),
                Ok(_) => ok(b"slept".to_vec()),
                Err(e) => e,
            },
            b"fail" => {
                payload.drain(..=colon);
                Evaluation {
                    status: Status::Error,
                    payload,
                }
            }
            b"pid" => ok(std::process::id().to_string().into_bytes()),
            b"spin" => match parse_ms(arg) {
                Ok(d) => spin(d, ctl),
                Err(e) => e,
            },
            b"block" => match parse_ms(arg) {
                Ok(d) => {
                    std::thread::sleep(d);
                    ok(b"blocked".to_vec())
                }
                Err(e) => e,
            },
            _ => ok(payload),
        }
    }
}
