//! Condition variables (`cv()`): a value counted up by signals and down by waits, and a flag
//! that pipe events can trip (spec §3). The core type is plain Rust, shared with other
//! packages' threads through `mirai_rapi::abi` (mirai signals its profile's cv per completion).

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The flag of a cv (spec §3.1, §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flag {
    /// Pipe events only signal.
    Disarmed,
    /// The next pipe event trips the flag (and raises `signal` if > 1).
    Armed { signal: i32 },
    /// Waits return `FALSE`; `cv_reset()` re-arms with the same signal.
    Tripped { signal: i32 },
}

#[derive(Debug)]
pub(crate) struct State {
    /// The cv's value: signals add one, successful waits take one.
    pub(crate) value: i32,
    /// Signals so far (never decremented): waiters that must not consume (`race_aio`,
    /// forwarders) compare it to see new signals.
    pub(crate) signals: u64,
    pub(crate) flag: Flag,
    /// The generation of the forwarder attached to this cv (`%~>%`): a forwarder thread
    /// runs while this equals the generation it was started with.
    pub(crate) forwarder: u64,
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
                forwarder: 0,
            }),
            cond: Condvar::new(),
        }
    }
}

/// What [`Cv::wait`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Waited {
    /// Took one; the flag was not tripped.
    Taken,
    /// Took one while the flag was tripped (`wait()` returns `FALSE`).
    Tripped,
    /// The time ran out.
    TimedOut,
}

impl Cv {
    /// The state, locked (a waiter that panicked leaves it usable: it holds plain counters).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes every waiter (after a change of the state made under [`Cv::lock`]).
    pub(crate) fn notify(&self) {
        self.cond.notify_all();
    }

    /// Waits on the cv with its state locked (a forwarder's loop), returning it locked again.
    pub(crate) fn wait_state<'g>(&self, st: MutexGuard<'g, State>) -> MutexGuard<'g, State> {
        self.cond.wait(st).unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `n` to the value (counting `n` signals) and wakes every waiter.
    pub(crate) fn add(&self, n: i32) {
        let mut st = self.lock();
        st.value = st.value.saturating_add(n);
        st.signals += u64::try_from(n).unwrap_or(0);
        drop(st);
        self.cond.notify_all();
    }

    /// Adds one to the value and wakes every waiter.
    pub(crate) fn signal(&self) {
        self.add(1)
    }

    /// Signals so far.
    pub(crate) fn signals(&self) -> u64 {
        self.lock().signals
    }

    /// Whether the flag is tripped.
    pub(crate) fn tripped(&self) -> bool {
        matches!(self.lock().flag, Flag::Tripped { .. })
    }

    /// Waits until the value is positive or `deadline` passes (`None`: no limit); takes one on
    /// success, and reports whether the flag was tripped then.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> Waited {
        let mut st = self.lock();
        loop {
            if st.value > 0 {
                st.value -= 1;
                return match st.flag {
                    Flag::Tripped { .. } => Waited::Tripped,
                    _ => Waited::Taken,
                };
            }
            st = match deadline {
                None => self.cond.wait(st).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Waited::TimedOut;
                    }
                    self.cond
                        .wait_timeout(st, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }

    /// Waits until the value is positive or `deadline` passes (`None`: no limit); takes one on
    /// success. Whether it took one (the flag is not consulted).
    pub(crate) fn until(&self, deadline: Option<Instant>) -> bool {
        self.wait(deadline) != Waited::TimedOut
    }

    /// Waits up to `timeout` for the signal count to differ from `seen` (or the flag to be
    /// tripped), without consuming anything; the count then.
    pub(crate) fn wait_change(&self, seen: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        while st.signals == seen && !matches!(st.flag, Flag::Tripped { .. }) {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            st = self
                .cond
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        st.signals
    }

    /// `cv_reset()`: value 0; a tripped flag re-arms, an armed one disarms.
    pub(crate) fn reset(&self) {
        let mut st = self.lock();
        st.value = 0;
        st.flag = match st.flag {
            Flag::Tripped { signal } => Flag::Armed { signal },
            Flag::Armed { .. } | Flag::Disarmed => Flag::Disarmed,
        };
    }

    /// Sets the flag as `pipe_notify(flag = )` does: 0 disarms; otherwise armed with signal
    /// `flag` (1, or a negative value: no signal; > 1: that signal number).
    pub(crate) fn set_flag(&self, flag: i32) {
        self.lock().flag = match flag {
            0 => Flag::Disarmed,
            f if f > 1 => Flag::Armed { signal: f },
            _ => Flag::Armed { signal: 0 },
        };
    }

    /// A registered pipe event (spec §3.4), from any thread: while armed, trips the flag and
    /// raises its signal (`SIGINT` at once, which also sets R's interrupt flag through R's
    /// handler; `SIGTERM` from a helper thread after 200 ms; others at once); then signals.
    pub(crate) fn pipe_event(&self) {
        let mut st = self.lock();
        let raise = match st.flag {
            Flag::Armed { signal } => {
                st.flag = Flag::Tripped { signal };
                signal
            }
            _ => 0,
        };
        st.value = st.value.saturating_add(1);
        st.signals += 1;
        drop(st);
        self.cond.notify_all();
        if raise == mirai_rapi::os::SIGTERM {
            std::thread::spawn(|| {
                std::thread::sleep(Duration::from_millis(200));
                mirai_rapi::os::raise_signal(mirai_rapi::os::SIGTERM);
            });
        } else if raise > 1 {
            mirai_rapi::os::raise_signal(raise);
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

    #[test]
    fn armed_flag_trips_on_a_pipe_event_and_reset_cycles_it() {
        let cv = Cv::default();
        cv.set_flag(1);
        cv.pipe_event();
        cv.pipe_event();
        assert!(cv.tripped());
        assert_eq!(cv.wait(None), Waited::Tripped);
        assert!(cv.until(Some(Instant::now())));
        cv.reset();
        assert_eq!(cv.lock().flag, Flag::Armed { signal: 0 });
        cv.pipe_event();
        assert!(cv.tripped());
        cv.reset();
        cv.reset();
        assert_eq!(cv.lock().flag, Flag::Disarmed);
        cv.pipe_event();
        assert_eq!(cv.wait(None), Waited::Taken);
    }

    #[test]
    fn wait_change_sees_new_signals_without_consuming() {
        let cv = Arc::new(Cv::default());
        let seen = cv.signals();
        assert_eq!(cv.wait_change(seen, Duration::from_millis(10)), seen);
        let c = Arc::clone(&cv);
        let t = std::thread::spawn(move || c.wait_change(seen, Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(10));
        cv.signal();
        assert_eq!(t.join().unwrap(), seen + 1);
        assert_eq!(cv.lock().value, 1);
    }
}
