//! The scale benchmark: one host with many Rust echo daemons (`scale`, see the crate docs).

use super::*;

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc_page_size() };
    pages * page
}

extern "C" {
    fn sysconf(name: i32) -> i64;
}

/// `sysconf(_SC_PAGESIZE)` (30 on Linux).
unsafe fn libc_page_size() -> u64 {
    let p = sysconf(30);
    if p > 0 {
        p as u64
    } else {
        4096
    }
}

/// `scale --daemons A,B,C --tasks T [--daemon PATH] [--csv FILE]`: for each count, one host
/// with that many Rust echo daemons (native transport) runs T tasks of 16 bytes, submitted at
/// once and then collected; prints and writes connect time, run time, tasks/s and the host's
/// memory: resident memory per connected daemon, and its growth from then to when every task
/// has been submitted (the peak: most are queued), in total and per task.
pub(super) fn scale(args: &[String]) -> Result<(), String> {
    let mut counts = vec![100usize, 300, 1000];
    let mut tasks = 100_000usize;
    let mut daemon = sibling("mirai-daemon")?;
    let mut csv: Option<PathBuf> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
        match a.as_str() {
            "--daemons" => counts = v.split(',').map(num).collect::<Result<_, _>>()?,
            "--tasks" => tasks = num(v)?,
            "--daemon" => daemon = PathBuf::from(v),
            "--csv" => csv = Some(PathBuf::from(v)),
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    // Appends to an existing file (one process per count keeps each count's memory figures
    // free of the allocator state an earlier count left behind).
    let header = "daemons,tasks,connect_s,run_s,tasks_per_s,host_rss_before_mb,host_bytes_per_daemon,host_peak_growth_mb,host_bytes_per_task,all_completed\n";
    let mut out = match &csv {
        Some(p) if p.exists() => {
            std::fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display()))?
        }
        _ => String::from(header),
    };
    println!(
        "{:>8} {:>9} {:>11} {:>9} {:>11} {:>14} {:>16} {:>14}",
        "daemons",
        "tasks",
        "connect s",
        "run s",
        "tasks/s",
        "host B/daemon",
        "host peak +MB",
        "host B/task"
    );
    for &n in &counts {
        let before = rss();
        let url = format!("abstract://mirai-bench-scale-{}-{n}", std::process::id());
        let cfg = HostConfig::new(url)
            .with_max_pending(mirai::host::DEFAULT_MAX_PENDING.max(n + 16))
            .with_hello_timeout(Duration::from_secs(120));
        let host = Host::start(cfg).map_err(|e| format!("host: {e}"))?;
        let cmd = launch::Command::new(&daemon).arg(host.url());
        let t0 = Instant::now();
        host.launch(&cmd, n).map_err(|e| e.to_string())?;
        if !host.wait_connections(n as u64, Duration::from_secs(300)) {
            return Err(format!("{n} daemons did not connect within 300 s"));
        }
        let connect = t0.elapsed().as_secs_f64();
        let base = rss();
        let per_daemon = base.saturating_sub(before) as f64 / n as f64;
        let t1 = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|_| host.submit(vec![7u8; MSG], SubmitOptions::default()))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let peak = rss();
        let mut ok = 0usize;
        for h in handles {
            if matches!(
                h.wait(Some(Duration::from_secs(300))),
                Some(mirai::Outcome::Value { .. })
            ) {
                ok += 1;
            }
        }
        let run = t1.elapsed().as_secs_f64();
        let growth = peak.saturating_sub(base) as f64;
        host.reset();
        drop(host);
        // Let the daemons exit before the next count starts.
        std::thread::sleep(Duration::from_millis(500 + n as u64));
        println!(
            "{:>8} {:>9} {:>11.2} {:>9.2} {:>11.0} {:>14.0} {:>16.1} {:>14.0}",
            n,
            tasks,
            connect,
            run,
            tasks as f64 / run,
            per_daemon,
            growth / 1e6,
            growth / tasks as f64
        );
        out.push_str(&format!(
            "{n},{tasks},{connect:.4},{run:.4},{:.1},{:.2},{per_daemon:.1},{:.3},{:.1},{}\n",
            tasks as f64 / run,
            before as f64 / 1e6,
            growth / 1e6,
            growth / tasks as f64,
            ok == tasks
        ));
        if ok != tasks {
            return Err(format!("{n} daemons: only {ok} of {tasks} tasks completed"));
        }
    }
    if let Some(path) = csv {
        std::fs::write(&path, out).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(())
}
