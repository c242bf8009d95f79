//! The dispatcher thread, and the turn of event handling that every poller runs: the
//! listener's events go through the protocol session under one acquisition of the state lock.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mirai_transport::{Event, Listener};

use crate::deferred::Deferred;
use crate::poll::{poll_listener, until, Holder, RoleGuard};
use crate::state::{Notes, Shared, State};
use crate::supervise::{REAP_EVERY, REAP_SOON};
use crate::sync::{lock, wait_on};

/// How long the dispatcher leaves the listener to waiting threads after one of them last
/// drove it, so that a thread that submits and waits in a loop keeps the poll role instead of
/// taking it over from the dispatcher every time (a wake-up each). Events wait at most this
/// long for a poller meanwhile.
pub(crate) const GRACE: Duration = Duration::from_millis(2);

/// What one turn of event handling found.
pub(crate) struct Turn {
    /// The host closed: stop driving.
    pub(crate) closed: bool,
    /// The scheduler's next deadline.
    pub(crate) next_deadline: Option<Instant>,
}

/// Handles the events of one poll under a single acquisition of the state lock: each goes
/// through the session, whose outputs are carried out as we go (so that replies are forwarded
/// in arrival order); then wakers and callbacks run once the lock is released.
pub(crate) fn turn(shared: &Shared, events: &mut Vec<Event>) -> Turn {
    let mut d = Deferred::default();
    let mut notes = Notes::default();
    let next_deadline = {
        let mut st = shared.state();
        if st.closed {
            return Turn {
                closed: true,
                next_deadline: None,
            };
        }
        // Dates the results of this poll (task times, for pipelining) and new connections'
        // hello deadlines.
        let now = Instant::now();
        for ev in events.drain(..) {
            match ev {
                Event::Connected(p) => st.session.connected(p, now),
                Event::Message(p, bytes) => st.session.message(p, &bytes, now),
                Event::Disconnected(p, reason) => st.session.disconnected(p, &reason, now),
            }
            shared.carry_out(&mut st, &mut d, &mut notes, None);
        }
        st.session.tick(Instant::now());
        shared.carry_out(&mut st, &mut d, &mut notes, None);
        shared.notify(&st, &notes);
        next_timer(&st)
    };
    if notes.reap {
        shared.reap_wanted.store(true, Ordering::Release);
    }
    d.run(shared);
    Turn {
        closed: false,
        next_deadline,
    }
}

/// When the dispatcher next reaps exited daemons and relaunches crashed ones. This runs on
/// the dispatcher thread whether or not it holds the poll role, so that a thread waiting for
/// a long time does not hold up the repair of the pool.
pub(crate) struct Keeper {
    pub(crate) last: Instant,
    /// A quick second look after a disconnect: the process may not have been reapable yet
    /// when its connection dropped.
    pub(crate) follow_up: Option<Instant>,
    pub(crate) relaunch_at: Option<Instant>,
}

impl Keeper {
    /// When housekeeping is due next, if ever (nothing launched, nothing to relaunch: never).
    pub(crate) fn due(&self, shared: &Shared) -> Option<Instant> {
        let mut due = self.relaunch_at;
        if shared.reap_wanted.load(Ordering::Acquire) {
            return Some(Instant::now());
        }
        if !lock(&shared.children).is_empty() {
            let periodic = self.last + REAP_EVERY;
            due = Some(due.map_or(periodic, |d| d.min(periodic)));
        }
        if let Some(f) = self.follow_up {
            due = Some(due.map_or(f, |d| d.min(f)));
        }
        due
    }

    pub(crate) fn run(&mut self, shared: &Shared) {
        let now = Instant::now();
        if shared.reap_wanted.swap(false, Ordering::AcqRel) {
            self.follow_up = Some(now + REAP_SOON);
        } else if self.follow_up.is_some_and(|f| f <= now) {
            self.follow_up = None;
        }
        self.relaunch_at = shared.housekeep();
        self.last = now;
    }
}

pub(crate) fn dispatcher(shared: Arc<Shared>, listener: Arc<Listener>) {
    let mut events = Vec::new();
    let mut keeper = Keeper {
        last: Instant::now(),
        follow_up: None,
        relaunch_at: None,
    };
    // The scheduler's next deadline, as of the last turn: a turn takes the state lock once.
    // A submit with a deadline wakes the poll, which brings the loop back to recompute it;
    // after a waiting thread has driven the listener it is re-read.
    let mut next_deadline: Option<Instant> = None;
    let mut stale = false;
    loop {
        if keeper.due(&shared).is_some_and(|t| t <= Instant::now()) {
            keeper.run(&shared);
        }
        // Take the poll role, giving way to waiting threads that want it.
        let mut housekeeping = false;
        {
            let mut r = lock(&shared.role);
            loop {
                if shared.stop.load(Ordering::Acquire) {
                    return;
                }
                let keep_in = keeper
                    .due(&shared)
                    .map(|t| t.saturating_duration_since(Instant::now()));
                if keep_in == Some(Duration::ZERO) {
                    housekeeping = true;
                    break;
                }
                let nap = |d: Duration| keep_in.map_or(d, |k| k.min(d));
                if r.holder == Holder::Nobody && r.wanting == 0 {
                    match r.released_at.map(|t| t.elapsed()) {
                        Some(quiet) if quiet < GRACE => {
                            stale = true;
                            r = wait_on(&shared.role_cv, r, nap(GRACE - quiet));
                        }
                        _ => break,
                    }
                } else {
                    // A waiting thread has the role or is taking it. It does not signal its
                    // release (that would cost it a wake-up call), so look again after GRACE.
                    stale = true;
                    r = wait_on(&shared.role_cv, r, nap(GRACE));
                }
            }
            if !housekeeping {
                r.holder = Holder::Dispatcher;
                r.owner = Some(std::thread::current().id());
            }
        }
        if housekeeping {
            continue;
        }
        let role = RoleGuard {
            shared: &shared,
            holder: Holder::Dispatcher,
        };
        if stale {
            next_deadline = next_timer(&shared.state());
            stale = false;
        }
        let mut timeout = until(next_deadline);
        if let Some(k) = keeper.due(&shared) {
            let k = k.saturating_duration_since(Instant::now());
            timeout = Some(timeout.map_or(k, |t| t.min(k)));
        }
        let polled = poll_listener(&shared, &listener, &mut events, timeout);
        let t = if polled && !shared.stop.load(Ordering::Acquire) {
            turn(&shared, &mut events)
        } else {
            Turn {
                closed: true,
                next_deadline: None,
            }
        };
        next_deadline = t.next_deadline;
        drop(role);
        if t.closed {
            break;
        }
    }
    log::debug!("mirai host: dispatcher for {} stopped", shared.url);
}

/// The next instant the host must act at: a task deadline or a hello deadline.
pub(crate) fn next_timer(st: &State) -> Option<Instant> {
    st.session.next_timer()
}
