//! Lock and condvar helpers shared by the runtime's modules.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Locks, ignoring poisoning: the state is kept consistent by never running foreign code
/// (callbacks, wakers) under a lock, so a poisoned lock only means a panic elsewhere.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn wait_on<'a, T>(
    cv: &Condvar,
    g: MutexGuard<'a, T>,
    timeout: Duration,
) -> MutexGuard<'a, T> {
    match cv.wait_timeout(g, timeout) {
        Ok((g, _)) => g,
        Err(e) => e.into_inner().0,
    }
}

/// Waits on `cv` under a lock (the state lock) until `done` gives an answer or `deadline` (`None`:
/// never) passes, then returns the answer, or `timed_out` computed under the lock. `waiters`
/// picks the counter of threads blocked on `cv`, so that signalling it costs nothing when
/// nobody waits.
pub(crate) fn wait_state<T, R>(
    mut st: MutexGuard<'_, T>,
    cv: &Condvar,
    deadline: Option<Instant>,
    waiters: fn(&mut T) -> &mut u32,
    done: impl Fn(&T) -> Option<R>,
    timed_out: impl Fn(&T) -> R,
) -> R {
    loop {
        if let Some(r) = done(&st) {
            return r;
        }
        let now = Instant::now();
        let left = match deadline {
            Some(d) if now >= d => return timed_out(&st),
            Some(d) => d - now,
            None => Duration::from_secs(3600),
        };
        *waiters(&mut st) += 1;
        st = wait_on(cv, st, left);
        *waiters(&mut st) -= 1;
    }
}
