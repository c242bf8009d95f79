//! Supervision of launched daemons: reaping exited processes, relaunching crashed ones with
//! back-off and a rate cap ([`RepairPolicy`]), and the reaper left behind by a reset.

use std::collections::VecDeque;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ExitStatus};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mirai_proto::daemon_args::{ExitCode, FailureStatus};

use crate::launch;
use crate::state::Shared;
use crate::sync::lock;
#[cfg(doc)]
use crate::Host;
use crate::RepairPolicy;

/// How often the dispatcher reaps exited child processes when nothing else wakes it.
pub(crate) const REAP_EVERY: Duration = Duration::from_secs(1);
/// After a disconnect, when to look again for the exited process.
pub(crate) const REAP_SOON: Duration = Duration::from_millis(50);
/// How long the detached reaper left by a reset keeps collecting children.
pub(crate) const REAPER_LIFETIME: Duration = Duration::from_secs(10);

impl Shared {
    /// Reaps exited daemons, schedules the relaunch of crashed ones (with [`RepairPolicy`])
    /// and carries out the relaunches that are due. Returns when the next relaunch is due.
    /// Runs on the dispatcher thread only, outside the state lock.
    pub(crate) fn housekeep(&self) -> Option<Instant> {
        let now = Instant::now();
        let mut exited = Vec::new();
        {
            let mut children = lock(&self.children);
            children.retain_mut(|l| match l.child.try_wait() {
                Ok(Some(status)) => {
                    exited.push((
                        l.child.id(),
                        status,
                        l.command.clone(),
                        l.started,
                        l.crashes,
                    ));
                    false
                }
                Ok(None) => true,
                Err(e) => {
                    log::warn!(
                        "mirai host: cannot wait for daemon pid {}: {e}; no longer watched",
                        l.child.id()
                    );
                    false
                }
            });
        }
        let stopping = self.stop.load(Ordering::Acquire);
        let mut rl = lock(&self.relaunch);
        for (pid, status, command, started, crashes) in exited {
            let policy = match &self.repair {
                Some(p) if crashed(status) && !stopping => p,
                _ => {
                    log::debug!(
                        "mirai host: daemon pid {pid} exited ({})",
                        exit_text(status)
                    );
                    continue;
                }
            };
            let crashes = if started.elapsed() >= policy.stable {
                1
            } else {
                crashes.saturating_add(1)
            };
            let delay = backoff(policy, crashes);
            log::warn!(
                "mirai host: daemon pid {pid} crashed ({}); relaunching it in {delay:?}",
                exit_text(status)
            );
            rl.due.push_back(Due {
                at: now + delay,
                command,
                crashes,
            });
        }
        let Some(policy) = self.repair.as_ref().filter(|_| !stopping) else {
            rl.due.clear();
            return None;
        };
        let minute = Duration::from_secs(60);
        while rl
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= minute)
        {
            rl.recent.pop_front();
        }
        let mut later = VecDeque::new();
        while let Some(due) = rl.due.pop_front() {
            if due.at > now {
                later.push_back(due);
                continue;
            }
            if rl.recent.len() >= policy.max_per_minute as usize {
                let at = rl.recent.front().map_or(now + minute, |t| *t + minute);
                if !rl.capped {
                    log::warn!(
                        "mirai host: {} daemon relaunches in the last minute (the limit); further ones wait",
                        rl.recent.len()
                    );
                    rl.capped = true;
                }
                later.push_back(Due { at, ..due });
                continue;
            }
            rl.capped = false;
            match due.command.spawn() {
                Ok(child) => {
                    log::info!(
                        "mirai host: relaunched a crashed daemon as pid {} ({}, crash {} in a row)",
                        child.id(),
                        due.command.program.display(),
                        due.crashes
                    );
                    rl.recent.push_back(now);
                    self.relaunches.fetch_add(1, Ordering::AcqRel);
                    lock(&self.children).push(Launched {
                        child,
                        command: due.command,
                        started: now,
                        crashes: due.crashes,
                    });
                }
                Err(e) => {
                    let crashes = due.crashes.saturating_add(1);
                    let delay = backoff(policy, crashes);
                    log::error!(
                        "mirai host: cannot relaunch daemon '{}': {e}; trying again in {delay:?}",
                        due.command.program.display()
                    );
                    rl.recent.push_back(now);
                    later.push_back(Due {
                        at: now + delay,
                        command: due.command,
                        crashes,
                    });
                }
            }
        }
        rl.due = later;
        rl.due.iter().map(|d| d.at).min()
    }
}

/// A daemon process started by [`Host::launch`] (or relaunched by repair).
pub(crate) struct Launched {
    pub(crate) child: Child,
    pub(crate) command: Arc<launch::Command>,
    pub(crate) started: Instant,
    /// Crashes in a row of this slot of the pool (0 for a first launch).
    pub(crate) crashes: u32,
}

/// A relaunch waiting for its time.
pub(crate) struct Due {
    pub(crate) at: Instant,
    pub(crate) command: Arc<launch::Command>,
    pub(crate) crashes: u32,
}

#[derive(Default)]
pub(crate) struct Relaunch {
    pub(crate) due: VecDeque<Due>,
    /// Relaunch times within the last minute.
    pub(crate) recent: VecDeque<Instant>,
    /// The per-minute cap was hit and logged; cleared at the next relaunch allowed.
    pub(crate) capped: bool,
}

/// A crash, as opposed to a planned exit: a signal, or a code that is not one of the daemon's
/// [`ExitCode`]s (0: disconnected; 1/2/3: idletime, walltime, maxtasks).
pub(crate) fn crashed(status: ExitStatus) -> bool {
    status.signal().is_some() || status.code().and_then(ExitCode::from_code).is_none()
}

/// The exit status for the log, with the cause when it is one of the daemon's
/// [`FailureStatus`]es (`exit status: 64 (dial failed)`).
pub(crate) fn exit_text(status: ExitStatus) -> String {
    let cause = match status.code().and_then(FailureStatus::from_code) {
        Some(FailureStatus::Dial) => "dial failed",
        Some(FailureStatus::Usage) => "invalid command line",
        Some(FailureStatus::Protocol) => "the host broke the protocol",
        Some(FailureStatus::Init) => "initialisation failed",
        Some(FailureStatus::Transport) => "transport failure",
        Some(_) => "daemon failure",
        None => return status.to_string(),
    };
    format!("{status} ({cause})")
}

/// The delay before relaunching after `crashes` crashes in a row (1 for the first).
pub(crate) fn backoff(policy: &RepairPolicy, crashes: u32) -> Duration {
    let doublings = crashes.saturating_sub(1).min(30);
    policy
        .backoff
        .saturating_mul(1u32 << doublings)
        .min(policy.max_backoff)
}

/// Collects the exit status of daemons that exit after a reset, for a bounded time.
pub(crate) fn spawn_reaper(mut children: Vec<Child>) {
    let r = std::thread::Builder::new()
        .name("mirai-reaper".into())
        .spawn(move || {
            let end = Instant::now() + REAPER_LIFETIME;
            loop {
                children.retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_)) | Err(_)));
                if children.is_empty() || Instant::now() >= end {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
    if let Err(e) = r {
        log::warn!("mirai host: cannot start a reaper thread ({e}); exited daemons stay unreaped");
    }
}
