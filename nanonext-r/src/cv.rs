//! Condition variables (`cv()`): a value counted up by signals and down by waits, and a flag
//! that pipe events can trip (spec §3). The core type is plain Rust, shared with other
//! packages' threads through `mirai_rapi::abi` (mirai signals its profile's cv per completion).

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// The flag of a cv (spec §3.1, §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flag {
    /// Pipe events only signal.
    Disarmed,
    /// The next pipe event trips the flag (and raises `signal` if > 1).
    Armed { signal: i32 },
    /// Waits return `FALSE`. Made by pipe events (`pipe_notify()`), which come with sockets.
    #[allow(dead_code)]
    Tripped,
}

#[derive(Debug)]
pub(crate) struct State {
    /// The cv's value: signals add one, successful waits take one.
    pub(crate) value: i32,
    /// Signals so far (never decremented): forwarders compare it to see new signals.
    pub(crate) signals: u64,
    pub(crate) flag: Flag,
}

/// A condition variable: every signal wakes every waiter (broadcast).
#[derive(Debug)]
pub(crate) struct Cv {
    state: Mutex<State>,
    cond: Condvar,
}

impl Default for Cv {
    fn default() -> Self {
        Cv {
            state: Mutex::new(State {
                value: 0,
                signals: 0,
                flag: Flag::Disarmed,
            }),
            cond: Condvar::new(),
        }
    }
}

impl Cv {
    /// The state, locked (a waiter that panicked leaves it usable: it holds plain counters).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds one to the value and wakes every waiter.
    pub(crate) fn signal(&self) {
        let mut st = self.lock();
        st.value = st.value.saturating_add(1);
        st.signals += 1;
        drop(st);
        self.cond.notify_all();
    }

    /// Waits until the value is positive or `deadline` passes (`None`: no limit); takes one on
    /// success. Whether it took one.
    pub(crate) fn until(&self, deadline: Option<Instant>) -> bool {
        let mut st = self.lock();
        loop {
            if st.value > 0 {
                st.value -= 1;
                return true;
            }
            st = match deadline {
                None => self.cond.wait(st).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return false;
                    }
                    self.cond
                        .wait_timeout(st, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }
}

impl mirai_rapi::SharedCv for Cv {
    fn signal(&self) {
        Cv::signal(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn signals_count_and_waits_take_one() {
        let cv = Cv::default();
        cv.signal();
        cv.signal();
        assert!(cv.until(Some(Instant::now())));
        assert_eq!(cv.lock().value, 1);
        assert_eq!(cv.lock().signals, 2);
    }

    #[test]
    fn until_times_out_without_signal_and_wakes_on_one() {
        let cv = Arc::new(Cv::default());
        assert!(!cv.until(Some(Instant::now() + Duration::from_millis(20))));
        let c = Arc::clone(&cv);
        let t = std::thread::spawn(move || c.until(None));
        std::thread::sleep(Duration::from_millis(20));
        cv.signal();
        assert!(t.join().unwrap());
    }
}
