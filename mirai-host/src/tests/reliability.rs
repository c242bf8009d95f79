//! Reliability: retries, launching and pool repair.

use super::*;

// ---------------------------------------------------------------------------------------------
// Reliability: retries, pool repair, hello timeout, pending cap

fn opts_retries(n: Option<u32>) -> SubmitOptions {
    SubmitOptions {
        retries: n,
        ..SubmitOptions::default()
    }
}

#[test]
fn a_task_with_retries_survives_the_loss_of_its_daemon() {
    let h = host();
    let (a, _) = Fake::join(&h);
    let t = h.submit(b"work".to_vec(), opts_retries(Some(2))).unwrap();
    let later = h
        .submit(b"later".to_vec(), SubmitOptions::default())
        .unwrap();
    let first = a.task();
    assert_eq!(t.attempts(), 1);
    assert_eq!(later.attempts(), 0, "queued");
    a.conn.close();
    drop(a);
    // Not failed: it waits at the head of the queue, ahead of `later`.
    assert!(t.wait(Some(Duration::from_millis(200))).is_none());
    let c = h.status().counters;
    assert_eq!((c.awaiting, c.executing, c.completed), (2, 0, 0));
    let (b, _) = Fake::join(&h);
    let again = b.task();
    assert_eq!(
        (again.id, &again.payload),
        (first.id, &first.payload),
        "the same task, sent again"
    );
    assert_eq!(t.attempts(), 2);
    b.reply(&again, false);
    assert_eq!(t.wait(Some(LONG)), value(b"work"));
    let next = b.task();
    assert_eq!(next.payload, b"later");
    b.reply(&next, false);
    assert_eq!(later.wait(Some(LONG)), value(b"later"));
    assert_eq!((t.attempts(), later.attempts()), (2, 1));
}

#[test]
fn retries_run_out_and_then_the_task_fails_with_19() {
    let h = host();
    let t = h.submit(b"doomed".to_vec(), opts_retries(Some(1))).unwrap();
    for _ in 0..2 {
        let (d, _) = Fake::join(&h);
        let _ = d.task();
        d.conn.close();
    }
    assert_eq!(
        t.wait(Some(LONG)),
        Some(Outcome::Error(ErrorCode::CONNECTION_RESET))
    );
    assert_eq!(t.attempts(), 2);
    assert_eq!(h.status().counters.completed, 1);
}

#[test]
fn the_profile_default_applies_unless_the_task_says_otherwise() {
    let config = HostConfig::new("tcp://127.0.0.1:0").with_retries(1);
    let h = Host::start(config).unwrap();
    let (a, _) = Fake::join(&h);
    let (b, _) = Fake::join(&h);
    let inherits = h.submit(b"x".to_vec(), SubmitOptions::default()).unwrap();
    let opts_out = h.submit(b"y".to_vec(), opts_retries(Some(0))).unwrap();
    let (ta, tb) = (a.task(), b.task());
    // Which daemon got which task does not matter: both are lost.
    a.conn.close();
    b.conn.close();
    assert_eq!(
        opts_out.wait(Some(LONG)),
        Some(Outcome::Error(ErrorCode::CONNECTION_RESET))
    );
    assert!(!inherits.is_resolved());
    let (c, _) = Fake::join(&h);
    let t = c.task();
    assert!(t.id == ta.id || t.id == tb.id);
    assert_eq!(t.payload, b"x");
    c.reply(&t, false);
    assert_eq!(inherits.wait(Some(LONG)), value(b"x"));
    // `map` takes the profile default too; `everywhere` never retries.
    let m = h.map([b"m".to_vec()]).unwrap();
    let e = h.everywhere(b"e".to_vec(), 1).unwrap();
    let _ = c.task();
    c.conn.close();
    let (d, _) = Fake::join(&h);
    let again = d.task();
    assert_eq!(again.payload, b"m");
    assert_eq!(m[0].attempts(), 2);
    d.reply(&again, false);
    assert_eq!(m[0].wait(Some(LONG)), value(b"m"));
    let round = d.task();
    assert_eq!(round.payload, b"e");
    d.conn.close();
    assert_eq!(
        e[0].wait(Some(LONG)),
        Some(Outcome::Error(ErrorCode::CONNECTION_RESET))
    );
}

#[test]
fn a_cancelled_task_is_not_retried() {
    let h = host();
    let (a, _) = Fake::join(&h);
    let t = h.submit(b"c".to_vec(), opts_retries(Some(3))).unwrap();
    let _ = a.task();
    assert!(h.cancel(&t));
    assert_eq!(a.recv(), Frame::Cancel { id: t.id() });
    a.conn.close();
    let (b, _) = Fake::join(&h);
    assert!(
        b.try_recv(Duration::from_millis(200)).is_none(),
        "nothing resent"
    );
    assert_eq!(
        t.wait(Some(Duration::ZERO)),
        Some(Outcome::Error(ErrorCode::CANCELED))
    );
}

#[test]
fn launch_spawns_and_reaps() {
    let h = host();
    let dir = std::env::temp_dir().join(format!("mirai-host-launch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cmd = launch::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("touch {}/$$", dir.display()));
    h.launch(&cmd, 3).unwrap();
    let end = Instant::now() + LONG;
    while std::fs::read_dir(&dir).unwrap().count() < 3 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 3);
    // Reaped within the dispatcher's reap period.
    while !h.launched_pids().is_empty() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(h.launched_pids().is_empty());
    let missing = launch::Command::new("/nonexistent/mirai-daemon");
    assert!(matches!(
        h.launch(&missing, 1),
        Err(HostError::Launch { .. })
    ));
    let _ = std::fs::remove_dir_all(&dir);
}
/// A repair policy that acts fast, for tests.
fn quick_repair(max_per_minute: u32) -> RepairPolicy {
    RepairPolicy {
        backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        stable: Duration::from_secs(60),
        max_per_minute,
    }
}

#[test]
fn repair_relaunches_crashes_only_and_caps_the_rate() {
    let config = HostConfig::new("tcp://127.0.0.1:0").with_repair(Some(quick_repair(3)));
    let h = Host::start(config).unwrap();
    let dir = std::env::temp_dir().join(format!("mirai-host-repair-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Planned exits: 0 and the limit codes are not crashes.
    for code in [0, 1, 2, 3] {
        let cmd = launch::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("touch {}/planned-$$; exit {code}", dir.display()));
        h.launch(&cmd, 1).unwrap();
    }
    // A crash loop: exit code 9 at once, every time.
    let crash = launch::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("touch {}/crash-$$; exit 9", dir.display()));
    h.launch(&crash, 1).unwrap();
    let count = |prefix: &str| {
        std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(prefix)
            })
            .count()
    };
    let end = Instant::now() + LONG;
    while h.relaunches() < 3 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(h.relaunches(), 3);
    // The cap holds: no fourth relaunch within the minute.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(h.relaunches(), 3);
    assert_eq!(count("planned-"), 4, "planned exits are not relaunched");
    assert!(
        eventually(|| count("crash-") == 4),
        "the first launch and three relaunches ran"
    );
    h.reset();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn repair_follows_a_killed_daemon_even_while_a_thread_waits() {
    let config = HostConfig::new("tcp://127.0.0.1:0").with_repair(Some(quick_repair(10)));
    let h = Host::start(config).unwrap();
    h.launch(&launch::Command::new("/bin/sleep").arg("600"), 2)
        .unwrap();
    let pids = h.launched_pids();
    assert_eq!(pids.len(), 2);
    // A thread blocked in a wait holds the poll role meanwhile.
    let blocker = h
        .submit(b"never answered".to_vec(), SubmitOptions::default())
        .unwrap();
    let waiter = std::thread::spawn(move || blocker.wait(Some(Duration::from_secs(3))));
    std::thread::sleep(Duration::from_millis(50));
    assert!(sigkill(pids[0]), "killing daemon pid {}", pids[0]);
    assert!(eventually(|| h.relaunches() == 1));
    assert!(eventually(|| {
        let now = h.launched_pids();
        now.len() == 2 && !now.contains(&pids[0]) && now.contains(&pids[1])
    }));
    assert!(
        waiter.join().unwrap().is_none(),
        "the wait was not disturbed"
    );
    // `sleep` is no daemon: it does not leave with the host, so end it here.
    let left = h.launched_pids();
    h.reset();
    for p in left {
        sigkill(p);
    }
}

/// Sends SIGKILL to a process this test started, with the `kill` utility (safe code: no
/// `libc` in this crate). True if it was sent.
fn sigkill(pid: u32) -> bool {
    std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// Linux's numbers of the signals these tests name (`signal(7)`).
const SIGKILL: i32 = 9;
const SIGSEGV: i32 = 11;

fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + LONG;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn backoff_doubles_up_to_its_cap() {
    let p = RepairPolicy {
        backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(1),
        ..RepairPolicy::default()
    };
    let got: Vec<_> = (1..=6).map(|n| backoff(&p, n).as_millis()).collect();
    assert_eq!(got, [100, 200, 400, 800, 1000, 1000]);
    assert_eq!(backoff(&p, u32::MAX), Duration::from_secs(1));
}

#[test]
fn only_signals_and_unplanned_codes_are_crashes() {
    use std::os::unix::process::ExitStatusExt;
    for code in 0..=3 {
        assert!(!crashed(ExitStatus::from_raw(code << 8)), "exit {code}");
    }
    for code in [4, 9, 64, 66, 255] {
        assert!(crashed(ExitStatus::from_raw(code << 8)), "exit {code}");
    }
    assert!(crashed(ExitStatus::from_raw(SIGKILL)));
    assert!(crashed(ExitStatus::from_raw(SIGSEGV)));
}

#[test]
fn the_exit_log_names_the_daemon_failure() {
    use std::os::unix::process::ExitStatusExt;
    let text = |code: i32| crate::supervise::exit_text(ExitStatus::from_raw(code << 8));
    assert!(text(64).ends_with("(dial failed)"), "{}", text(64));
    assert!(text(65).ends_with("(invalid command line)"), "{}", text(65));
    assert!(text(68).ends_with("(transport failure)"), "{}", text(68));
    // Other codes and signals are shown as they are.
    assert_eq!(text(9), ExitStatus::from_raw(9 << 8).to_string());
    assert_eq!(text(1), ExitStatus::from_raw(1 << 8).to_string());
}
