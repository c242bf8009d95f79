//! `cargo xtask bench`: builds the engine in release mode and measures it, and the R package
//! against its peers, in one run; prints tables of medians, min-max and ratios, and writes CSV
//! files under `bench/results/`.
//!
//! Options: `--quick` (fewer rounds, for a smoke run), `--no-r` (engine only).

use std::path::Path;
use std::process::{Command, ExitCode};

use crate::{workspace_root, Result};

/// `cargo xtask bench [--quick] [--no-r]`.
pub(crate) fn command(args: &[String]) -> Result<ExitCode> {
    let mut quick = false;
    let mut with_r = true;
    for a in args {
        match a.as_str() {
            "--quick" => quick = true,
            "--no-r" => with_r = false,
            other => return Err(format!("unknown option '{other}' (see `cargo xtask help`)").into()),
        }
    }
    let root = workspace_root();
    let results = root.join("bench").join("results");
    std::fs::create_dir_all(&results).map_err(|e| format!("cannot create {}: {e}", results.display()))?;

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run(Command::new(&cargo)
        .current_dir(&root)
        .args(["build", "--release", "--quiet", "-p", "mirai-daemon", "-p", "xtask", "--bin", "mirai-daemon", "--bin", "mirai-bench"]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR").map(Into::into).unwrap_or_else(|| root.join("target"));
    let bin = target.join("release");

    println!("== engine (Rust echo daemons) ==");
    let (rounds, trips, tasks) = if quick { ("3", "200", "2000") } else { ("10", "1000", "10000") };
    run(Command::new(bin.join("mirai-bench"))
        .args(["--rounds", rounds, "--trips", trips, "--tasks", tasks, "--daemon"])
        .arg(bin.join("mirai-daemon"))
        .arg("--csv")
        .arg(results.join("engine.csv")))?;

    if with_r {
        println!("\n== R: this package against base R's PSOCK cluster ==");
        let lib = root.join("target").join("R");
        crate::r::install(&root, &lib)?;
        let (rounds, trips, tasks) = if quick { ("2", "100", "2000") } else { ("5", "500", "10000") };
        run(Command::new("Rscript")
            .arg(root.join("xtask").join("bench").join("r-bench.R"))
            .env("R_LIBS", &lib)
            .env("MIRAI_BENCH_CSV", results.join("r.csv"))
            .env("MIRAI_BENCH_ROUNDS", rounds)
            .env("MIRAI_BENCH_TRIPS", trips)
            .env("MIRAI_BENCH_TASKS", tasks))?;
    }
    println!("\nmachine: {}", machine());
    println!("results: {}", results.display());
    Ok(ExitCode::SUCCESS)
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    if !status.success() {
        return Err(format!("{:?} failed ({status})", cmd.get_program()).into());
    }
    Ok(())
}

/// CPU model and core count, for the record.
fn machine() -> String {
    let cpu = std::fs::read_to_string(Path::new("/proc/cpuinfo"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    format!("{cpu}, {cores} cores")
}
