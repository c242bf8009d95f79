//! `cargo xtask bench`: builds the engine in release mode and measures it, the R package
//! against its peers, and a host with many daemons, in one run (one process tree); then merges
//! everything into one table of medians, min-max, ratios and goals, written with a plot under
//! `bench/results/` (`summary.csv`, `summary.md`, `bench.png`, and each part's own CSV).
//!
//! The engine part includes the cost of OpenTelemetry tracing (`mirai-trace`) on the round
//! trip: tracing off by default (no `OTEL_*` variable), explicitly disabled
//! (`OTEL_SDK_DISABLED=true`) and on (every span exported over OTLP/HTTP to a sink on
//! 127.0.0.1 that `mirai-bench` runs and counts spans at), one child process each, in the same
//! rounds. The goal "off costs nothing" is met when the disabled median is at most 1.05 times
//! the default's (the table states the rule).
//!
//! The nanonext rows (`bench/nanonext-bench.R` beside `mirai-bench nng-reqrep`, written to
//! `bench/results/nanonext.csv`): req/rep between two R processes over ipc in raw mode, 16 B
//! round trips and 1 MiB messages echoed, against the `nng` crate's own req/rep between two
//! Rust processes, with the goals (round trip at most half of NNG's; 1 MiB at least
//! 2,400 MiB/s). They run after the R part, or alone with `--nanonext`.
//!
//! Options: `--quick` (fewer rounds and tasks, for a smoke run; no per-layer benchmarks),
//! `--nanonext` (only the nanonext rows: installs the nanonext package alone),
//! `--no-r` (engine and scale only), `--no-scale` (skip the many-daemon runs), `--lib DIR` (the R
//! library to install the package into and measure; default `<workspace>/target/R`), `--scale
//! LIST` (daemon counts, default `100,300,1000`).
//!
//! The measuring programs live in the `mirai-bench` crate (`bench/`): its binary `mirai-bench`
//! (built here with `cargo build --release -p mirai-bench`), its R scripts (`bench/r-bench.R`,
//! `bench/report.R`) and its per-layer micro-benchmarks (`bench/benches/layers.rs`, divan:
//! `mirai-proto` encode and decode of 16 B and 1 MiB payloads, `mirai-sched` dispatch operations
//! per second), which run first in
//! a full run; their table goes to `bench/results/layers.txt`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use crate::{workspace_root, Result};

struct Opts {
    quick: bool,
    with_r: bool,
    with_scale: bool,
    lib: Option<PathBuf>,
    scale: String,
    nanonext_only: bool,
}

fn parse(args: &[String]) -> Result<Opts> {
    let mut o = Opts {
        quick: false,
        with_r: true,
        with_scale: true,
        lib: None,
        scale: "100,300,1000".into(),
        nanonext_only: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--nanonext" => o.nanonext_only = true,
            "--no-r" => o.with_r = false,
            "--no-scale" => o.with_scale = false,
            "--lib" => o.lib = Some(PathBuf::from(it.next().ok_or("--lib needs a directory")?)),
            "--scale" => {
                o.scale = it
                    .next()
                    .ok_or("--scale needs a list such as 100,300,1000")?
                    .clone()
            }
            other => {
                return Err(format!("unknown option '{other}' (see `cargo xtask help`)").into())
            }
        }
    }
    Ok(o)
}

/// `cargo xtask bench [--quick] [--no-r] [--no-scale] [--lib DIR] [--scale LIST]`.
pub(crate) fn command(args: &[String]) -> Result<ExitCode> {
    let o = parse(args)?;
    let root = workspace_root();
    let results = root.join("bench").join("results");
    std::fs::create_dir_all(&results)
        .map_err(|e| format!("cannot create {}: {e}", results.display()))?;
    let machine = machine();

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run(Command::new(&cargo).current_dir(&root).args([
        "build",
        "--release",
        "--quiet",
        "-p",
        "mirai-daemon",
        "-p",
        "mirai-bench",
        "--bin",
        "mirai-daemon",
        "--bin",
        "mirai-bench",
    ]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(Into::into)
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("release");
    let bench = bin.join("mirai-bench");
    if o.nanonext_only {
        let lib = o
            .lib
            .clone()
            .unwrap_or_else(|| root.join("target").join("R"));
        install_nanonext(&root, &lib)?;
        return nanonext_rows(&root, &bench, &lib, &results, o.quick).map(|()| ExitCode::SUCCESS);
    }
    // Stale parts of an earlier run must not be merged into this one.
    for f in [
        "nanonext.csv",
        "engine.csv",
        "r.csv",
        "scale.csv",
        "summary.csv",
        "summary.md",
        "layers.txt",
    ] {
        let _ = std::fs::remove_file(results.join(f));
    }

    if !o.quick {
        println!("== per layer: mirai-proto and mirai-sched (divan) ==");
        let out = Command::new(&cargo)
            .current_dir(&root)
            .args(["bench", "--quiet", "-p", "mirai-bench", "--bench", "layers"])
            .output()
            .map_err(|e| format!("cannot run cargo bench: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        print!("{text}");
        if !out.status.success() {
            return Err(format!(
                "cargo bench failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        std::fs::write(results.join("layers.txt"), text)
            .map_err(|e| format!("cannot write layers.txt: {e}"))?;
        println!();
    }

    println!("== engine (Rust echo daemons) against the raw Unix-socket floor; tracing off, disabled, on ==");
    let (rounds, trips, tasks) = if o.quick {
        ("3", "200", "2000")
    } else {
        ("10", "1000", "10000")
    };
    run(Command::new(&bench)
        .args([
            "--rounds", rounds, "--trips", trips, "--tasks", tasks, "--daemon",
        ])
        .arg(bin.join("mirai-daemon"))
        .arg("--csv")
        .arg(results.join("engine.csv")))?;

    if o.with_scale {
        let (counts, tasks) = if o.quick {
            ("50,100".to_string(), "20000")
        } else {
            (o.scale.clone(), "100000")
        };
        println!(
            "\n== scale: one host, many Rust echo daemons (a fresh host process per count) =="
        );
        for count in counts.split(',') {
            run(Command::new(&bench)
                .args(["scale", "--daemons", count, "--tasks", tasks, "--daemon"])
                .arg(bin.join("mirai-daemon"))
                .arg("--csv")
                .arg(results.join("scale.csv")))?;
        }
    }

    if o.with_r {
        println!("\n== R: this package against PSOCK, future and CRAN mirai ==");
        let lib = o
            .lib
            .clone()
            .unwrap_or_else(|| root.join("target").join("R"));
        crate::r::install(&root, &lib)?;
        let (rounds, trips, tasks, ftasks, mem) = if o.quick {
            ("2", "200", "2000", "100", "20000")
        } else {
            ("5", "500", "10000", "500", "100000")
        };
        run(Command::new("Rscript")
            .arg(root.join("bench").join("r-bench.R"))
            .env("R_LIBS", &lib)
            .env("MIRAI_BENCH_CSV", results.join("r.csv"))
            .env("MIRAI_BENCH_ROUNDS", rounds)
            .env("MIRAI_BENCH_TRIPS", trips)
            .env("MIRAI_BENCH_TASKS", tasks)
            .env("MIRAI_BENCH_FUTURE_TASKS", ftasks)
            .env("MIRAI_BENCH_MEM_N", mem)
            .env("MIRAI_BENCH_FLOOR", &bench))?;
        nanonext_rows(&root, &bench, &lib, &results, o.quick)?;
    }

    println!("\n== summary ==");
    std::fs::write(results.join("machine.txt"), format!("{machine}\n"))
        .map_err(|e| format!("cannot write machine.txt: {e}"))?;
    run(Command::new("Rscript")
        .arg(root.join("bench").join("report.R"))
        .arg(&results)
        .arg(&machine))?;
    println!("machine: {machine}");
    println!("results: {}", results.display());
    Ok(ExitCode::SUCCESS)
}

/// Installs the nanonext package alone into `lib`.
fn install_nanonext(root: &Path, lib: &Path) -> Result<()> {
    std::fs::create_dir_all(lib)
        .map_err(|e| format!("cannot create library directory {}: {e}", lib.display()))?;
    let mut library = std::ffi::OsString::from("--library=");
    library.push(lib);
    let mut cmd = Command::new("R");
    cmd.args(["CMD", "INSTALL", "--no-multiarch"])
        .arg(library)
        .arg(root.join("nanonext-r").join("rpkg"))
        .env("MIRAI_WORKSPACE", root);
    if let Some(cargo) = std::env::var_os("CARGO") {
        cmd.env("CARGO", cargo);
    }
    run(&mut cmd)
}

/// The nanonext rows (see the module docs): NNG's from Rust, then ours from R, into
/// `nanonext.csv`; prints them with the goals.
fn nanonext_rows(root: &Path, bench: &Path, lib: &Path, results: &Path, quick: bool) -> Result<()> {
    println!(
        "\n== nanonext: req/rep between two R processes over ipc (raw) against the nng crate =="
    );
    let csv = results.join("nanonext.csv");
    let _ = std::fs::remove_file(&csv);
    let (trips, big) = if quick {
        ("500", "20")
    } else {
        ("2000", "100")
    };
    run(Command::new(bench)
        .args(["nng-reqrep", "--trips", trips, "--big", big, "--csv"])
        .arg(&csv))?;
    run(Command::new("Rscript")
        .arg(root.join("bench").join("nanonext-bench.R"))
        .env("R_LIBS", lib)
        .env("MIRAI_BENCH_NANONEXT_CSV", &csv)
        .env("MIRAI_BENCH_TRIPS", trips)
        .env("MIRAI_BENCH_BIG", big))?;
    let text =
        std::fs::read_to_string(&csv).map_err(|e| format!("cannot read {}: {e}", csv.display()))?;
    let rows = parse_rows(&text);
    let find = |m: &str, nng: bool| {
        rows.iter()
            .find(|(mm, sys, _)| mm.starts_with(m) && sys.starts_with("nng") == nng)
            .map(|r| r.2)
    };
    for (m, sys, med) in &rows {
        println!("{m:<28} {sys:<42} {med:>10.1}");
    }
    if let (Some(ours), Some(nng)) = (find("round trip", false), find("round trip", true)) {
        let ok = ours <= nng / 2.0;
        println!(
            "goal: round trip at most half of the nng crate's: {ours:.1} us vs {nng:.1} us (ratio {:.2}) -> {}",
            ours / nng,
            if ok { "met" } else { "NOT met" }
        );
    }
    if let Some(ours) = find("1 MiB", false) {
        println!(
            "goal: 1 MiB echoed at least 2400 MiB/s: {ours:.1} MiB/s -> {}",
            if ours >= 2400.0 { "met" } else { "NOT met" }
        );
    }
    println!("wrote {}", csv.display());
    Ok(())
}

/// The rows of `nanonext.csv`: `"measure","system",unit,median,min,max,n` -> (measure,
/// system, median).
fn parse_rows(text: &str) -> Vec<(String, String, f64)> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            // The measure holds commas: take the numbers from the right.
            let mut f = l.rsplitn(5, ',');
            let _n = f.next()?;
            let _max = f.next()?;
            let _min = f.next()?;
            let med: f64 = f.next()?.parse().ok()?;
            let (names, _unit) = f.next()?.rsplit_once(',')?;
            let (m, sys) = names.split_once("\",\"")?;
            Some((
                m.trim_matches('"').to_string(),
                sys.trim_matches('"').to_string(),
                med,
            ))
        })
        .collect()
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    if !status.success() {
        return Err(format!("{:?} failed ({status})", cmd.get_program()).into());
    }
    Ok(())
}

/// CPU model, cores, memory, kernel and R version, for the record.
fn machine() -> String {
    let read = |p: &str| std::fs::read_to_string(Path::new(p)).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem_gb = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    let kernel = read("/proc/sys/kernel/osrelease").trim().to_string();
    let r = Command::new("Rscript")
        .args(["-e", "cat(R.version.string)"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let load = read("/proc/loadavg")
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_string();
    format!("{cpu}, {cores} vCPUs, {mem_gb:.0} GB RAM, Linux {kernel}, {r}, load average {load} at start")
}

#[cfg(test)]
mod tests {
    #[test]
    fn nanonext_rows_parse_with_commas_in_the_measure() {
        let t = "measure,system,unit,median,min,max,n\n\"round trip 16 B, raw, ipc\",\"nng crate req/rep (Rust), 2 processes\",us,116.048,61.5,2141.4,2000\n";
        let r = super::parse_rows(t);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].0, "round trip 16 B, raw, ipc");
        assert_eq!(r[0].1, "nng crate req/rep (Rust), 2 processes");
        assert_eq!(r[0].2, 116.048);
    }
}
