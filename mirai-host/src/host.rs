//! The [`Host`]: starting a compute profile, its status and waits, launching daemons, and
//! resetting it. Submission is in `submit.rs`.

use std::collections::HashMap;
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant, SystemTime};

use mirai_proto::Frame;
use mirai_sched::{Config as SchedConfig, Counters, Memory, Mode};
use mirai_trace::Span;
use mirai_transport::{Backend, Listener};

use crate::deferred::{Deferred, HostTrace};
use crate::dispatcher::dispatcher;
use crate::outbox::Outbox;
use crate::poll::PollRole;
use crate::session::{Session, SessionConfig};
use crate::state::{Notes, Shared, State};
use crate::supervise::{spawn_reaper, Launched, Relaunch};
use crate::sync::{lock, wait_state};
use crate::{launch, HostConfig, HostError, TransportOptions, MAX_FIRST_MESSAGE};

/// Spacing of exit instructions in [`Host::exit_daemons`].
pub(crate) const EXIT_SPACING: Duration = Duration::from_millis(10);
/// A snapshot of a host's state, for `status()` and `info()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostStatus {
    /// The URL daemons dial.
    pub url: String,
    /// Task and daemon counters.
    pub counters: Counters,
    /// Queued-bytes accounting.
    pub memory: Memory,
    /// Of `counters.awaiting`, the tasks pipelined to a busy daemon and not started yet
    /// ([`HostConfig::pipeline`]).
    pub pipelined: u64,
}

/// The guard whose drop (with the last [`Host`] clone) resets the host.
pub(crate) struct HostInner {
    pub(crate) shared: Arc<Shared>,
    pub(crate) thread: Mutex<Option<JoinHandle<()>>>,
    pub(crate) thread_id: ThreadId,
}

impl Drop for HostInner {
    fn drop(&mut self) {
        self.reset();
    }
}

impl HostInner {
    pub(crate) fn reset(&self) {
        // Only the call that closes the host records the reset (reset is idempotent).
        let span = match &self.shared.trace {
            Some(t) if !self.shared.state().closed => {
                mirai_trace::daemons_reset(&t.url, t.dispatcher, &t.compute, t.set)
            }
            _ => Span::none(),
        };
        let mut d = Deferred {
            parent: span.context(),
            ..Deferred::default()
        };
        let listener = self.shared.close(&mut d);
        d.run(&self.shared);
        if let Some(l) = &listener {
            l.wake();
        }
        // A callback running on the dispatcher thread may reset (or drop) the host: that
        // thread cannot join itself, and it stops on its own at its next loop turn.
        if std::thread::current().id() != self.thread_id {
            if let Some(t) = lock(&self.thread).take() {
                if t.join().is_err() {
                    log::error!("mirai host: the dispatcher thread panicked");
                }
            }
        }
        // Dropping the last reference to the listener closes every connection, so daemons
        // see the host go and follow their autoexit setting.
        drop(listener);
        let children: Vec<Child> = std::mem::take(&mut *lock(&self.shared.children))
            .into_iter()
            .map(|l| l.child)
            .collect();
        if !children.is_empty() {
            spawn_reaper(children);
        }
        // A span, sampled or not, exists only when tracing and this call closed the host.
        if span.context().is_some() {
            span.end();
            // Deliver the profile's spans now: the process may end soon after a reset.
            mirai_trace::flush();
        }
    }
}

/// A compute profile's engine. Cheap to clone (shared); `Send + Sync`. Dropping the last
/// clone resets it ([`Host::reset`]).
#[derive(Clone)]
pub struct Host {
    pub(crate) inner: Arc<HostInner>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").field("url", &self.url()).finish()
    }
}

impl Host {
    /// Binds the URL and starts the dispatcher thread.
    pub fn start(config: HostConfig) -> Result<Host, HostError> {
        // The process decides whether it traces here, once (see "Tracing" in the crate docs).
        let tracing = mirai_trace::enabled();
        let started = SystemTime::now();
        let dispatcher_mode = config.mode == Mode::Dispatcher;
        // A daemon's first message is its hello (under 100 bytes): a stranger announcing more
        // is dropped at its length prefix, so that connections which have not said hello hold
        // at most this much each (with `max_pending` of them at once).
        let transport = TransportOptions {
            max_first_message: config
                .transport
                .max_first_message
                .or(Some(MAX_FIRST_MESSAGE)),
            ..config.transport.clone()
        };
        let listener = match Listener::bind(&config.url, &transport) {
            Ok(l) => Arc::new(l),
            Err(e) => {
                if tracing {
                    let mut span = mirai_trace::daemons_set(
                        &config.url,
                        dispatcher_mode,
                        &config.compute,
                        started,
                    );
                    span.set_error(e.to_string());
                }
                return Err(e.into());
            }
        };
        // Named after the resolved URL, so the span exists only once the listener does.
        let set_span = if tracing {
            mirai_trace::daemons_set(listener.url(), dispatcher_mode, &config.compute, started)
        } else {
            Span::none()
        };
        let trace = tracing.then(|| {
            Arc::new(HostTrace {
                url: listener.url().to_string(),
                compute: config.compute.clone(),
                dispatcher: dispatcher_mode,
                set: set_span.context(),
            })
        });
        // NNG's polyamorous pair drops messages beyond two queued for a peer (see
        // mirai-transport): a second task plus its cancel or withdraw could be lost there.
        let pipeline = config
            .pipeline
            .filter(|_| config.transport.backend != Backend::Nng);
        let session = Session::new(SessionConfig {
            sched: SchedConfig::new()
                .with_mode(config.mode)
                .with_memory_limit(config.memory_limit)
                .with_pipeline(pipeline),
            max_frame: config.transport.max_message,
            max_pending: config.max_pending,
            hello_timeout: config.hello_timeout,
            stream: config.stream,
            serial: config.serial,
        });
        let shared = Arc::new(Shared {
            url: listener.url().to_string(),
            retries: config.retries,
            mode: config.mode,
            repair: config.repair,
            relaunch: Mutex::new(Relaunch::default()),
            relaunches: AtomicU64::new(0),
            reap_wanted: AtomicBool::new(false),
            state: Mutex::new(State {
                session,
                slots: HashMap::new(),
                listener: Some(listener.clone()),
                closed: false,
                conn_waiters: 0,
                admit_waiters: 0,
                completion_waiters: 0,
            }),
            conn_cv: Condvar::new(),
            admit_cv: Condvar::new(),
            completion_cv: Condvar::new(),
            completions: AtomicU64::new(0),
            children: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            role: Mutex::new(PollRole::default()),
            role_cv: Condvar::new(),
            trace,
            outbox: Outbox::default(),
            on_complete: config.on_complete.clone(),
        });
        let s = shared.clone();
        let mut set_span = set_span;
        let thread = match std::thread::Builder::new()
            .name("mirai-dispatcher".into())
            .spawn(move || dispatcher(s, listener))
        {
            Ok(t) => t,
            Err(e) => {
                set_span.set_error(format!("cannot start the dispatcher thread: {e}"));
                return Err(HostError::Thread(e));
            }
        };
        let thread_id = thread.thread().id();
        set_span.end();
        Ok(Host {
            inner: Arc::new(HostInner {
                shared,
                thread: Mutex::new(Some(thread)),
                thread_id,
            }),
        })
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// The URL daemons dial, with an ephemeral port resolved.
    pub fn url(&self) -> &str {
        &self.inner.shared.url
    }

    /// The host's mode, as configured ([`HostConfig::mode`]): in dispatcher mode a cancel
    /// reports whether the host still held the task.
    pub fn mode(&self) -> Mode {
        self.shared().mode
    }

    /// True if this host records spans (the process's tracing decision, see the crate docs).
    pub fn tracing(&self) -> bool {
        self.shared().trace.is_some()
    }

    /// True if a task would be admitted under the memory budget now (`try_mirai`). Also true
    /// once the host has closed, so that the submit that follows reports the closure.
    pub fn admit(&self) -> bool {
        let st = self.shared().state();
        st.closed || st.session.sched().admit()
    }

    /// Waits until a task would be admitted, the host closes, or `timeout` passes; returns
    /// whether it would be admitted (true once closed, as [`Host::admit`]). This is the
    /// `mirai()` memory gate; callers loop to check for user interrupts.
    pub fn wait_admit(&self, timeout: Duration) -> bool {
        let shared = self.shared();
        let deadline = Instant::now().checked_add(timeout);
        wait_state(
            shared.state(),
            &shared.admit_cv,
            deadline,
            |st| &mut st.admit_waiters,
            |st| (st.closed || st.session.sched().admit()).then_some(true),
            |_| false,
        )
    }

    /// Counters and memory now.
    pub fn status(&self) -> HostStatus {
        let st = self.shared().state();
        HostStatus {
            url: self.url().to_string(),
            counters: st.session.sched().counters(),
            memory: st.session.sched().memory(),
            pipelined: st.session.sched().pipelined(),
        }
    }

    /// Waits until at least `n` daemons are connected (handshake done), or `timeout` passes,
    /// or the host closes. Returns whether `n` are connected.
    pub fn wait_connections(&self, n: u64, timeout: Duration) -> bool {
        let shared = self.shared();
        let deadline = Instant::now().checked_add(timeout);
        wait_state(
            shared.state(),
            &shared.conn_cv,
            deadline,
            |st| &mut st.conn_waiters,
            |st| {
                if st.closed {
                    Some(false)
                } else {
                    (st.session.sched().ready_daemons() >= n).then_some(true)
                }
            },
            |_| false,
        )
    }

    /// A number that grows by one at every task completion on this host.
    pub fn completions(&self) -> u64 {
        self.shared().completions.load(Ordering::Acquire)
    }

    /// Waits until [`Host::completions`] exceeds `seen`, the host closes, or `timeout` passes;
    /// returns it.
    pub fn wait_completion(&self, seen: u64, timeout: Duration) -> u64 {
        let shared = self.shared();
        let deadline = Instant::now().checked_add(timeout);
        if shared.completions.load(Ordering::Acquire) <= seen {
            shared.drive(deadline, &|| {
                shared.completions.load(Ordering::Acquire) > seen
            });
        }
        let count = || shared.completions.load(Ordering::Acquire);
        wait_state(
            shared.state(),
            &shared.completion_cv,
            deadline,
            |st| &mut st.completion_waiters,
            |st| {
                let c = count();
                (c > seen || st.closed).then_some(c)
            },
            |_| count(),
        )
    }

    /// Sends an exit instruction to every connected daemon (`daemons(NULL)`), about 10 ms apart.
    /// The sends happen outside the state lock, so the host keeps serving meanwhile.
    pub fn exit_daemons(&self) {
        let shared = self.shared();
        let mut d = Deferred::default();
        let mut exits = Vec::new();
        let listener = {
            let mut st = shared.state();
            if st.closed {
                return;
            }
            st.session.sched_mut().exit_all();
            let mut notes = Notes::default();
            shared.carry_out(&mut st, &mut d, &mut notes, Some(&mut exits));
            shared.notify(&st, &notes);
            st.listener.clone()
        };
        d.run(shared);
        let Some(listener) = listener else { return };
        let frame = mirai_proto::encode(&Frame::Exit);
        for (i, peer) in exits.into_iter().enumerate() {
            if i > 0 {
                std::thread::sleep(EXIT_SPACING);
            }
            if let Err(e) = listener.send(peer, &frame) {
                log::debug!("mirai host: exit to daemon {peer} not sent: {e}");
            }
        }
    }

    /// Closes the host: every unresolved task resolves (19, or 7 if never sent in direct
    /// mode), the dispatcher thread ends, and the listener closes so that daemons see the host
    /// go. Idempotent; also on drop of the last clone.
    pub fn reset(&self) {
        self.inner.reset();
    }

    /// True once [`Host::reset`] has run (or the listener failed).
    pub fn is_closed(&self) -> bool {
        self.shared().state().closed
    }

    /// Starts `n` local daemon processes with `command` (not waited for; reaped by the host,
    /// and relaunched if they crash when [`HostConfig::repair`] is set).
    pub fn launch(&self, command: &launch::Command, n: usize) -> Result<(), HostError> {
        if self.is_closed() {
            return Err(HostError::Closed);
        }
        let shared_command = Arc::new(command.clone());
        for _ in 0..n {
            let child = command.spawn().map_err(|source| HostError::Launch {
                program: command.program.display().to_string(),
                source,
            })?;
            lock(&self.shared().children).push(Launched {
                child,
                command: shared_command.clone(),
                started: Instant::now(),
                crashes: 0,
            });
        }
        // The dispatcher may be sleeping without a timer: let it start its reaping period.
        if let Some(l) = self.shared().state().listener.clone() {
            l.wake();
        }
        Ok(())
    }

    /// The process ids of the daemons this host launched that have not been reaped yet.
    pub fn launched_pids(&self) -> Vec<u32> {
        lock(&self.shared().children)
            .iter()
            .map(|l| l.child.id())
            .collect()
    }

    /// How many crashed daemons this host has relaunched ([`HostConfig::repair`]).
    pub fn relaunches(&self) -> u64 {
        self.shared().relaunches.load(Ordering::Acquire)
    }
}
