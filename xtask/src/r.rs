//! Building, installing and testing the R packages `nanonext` and `mirai` (sources in
//! `nanonext-r/rpkg` and `mirai-r/rpkg`).
//!
//! `R CMD INSTALL` runs each package's `src/Makevars`, which builds its static library (crate
//! `nanonext-r`, `mirai-r`) with cargo (release profile) in this workspace and links it into the
//! package's shared object.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use crate::{workspace_root, Result};

/// Options shared by the R commands.
#[derive(Debug, PartialEq)]
struct Options {
    lib: PathBuf,
    timeout: Duration,
}

fn parse_options(args: &[String], root: &Path) -> Result<Options> {
    let mut opts = Options {
        lib: root.join("target").join("R"),
        timeout: Duration::from_secs(1800),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (key, inline) = match a.split_once('=') {
            Some((k, v)) => (k, Some(v.to_owned())),
            None => (a.as_str(), None),
        };
        let mut value = || -> Result<String> {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{key} needs a value").into())
        };
        match key {
            "--lib" => {
                let v = value()?;
                let p = PathBuf::from(v);
                opts.lib = if p.is_absolute() {
                    p
                } else {
                    std::env::current_dir()?.join(p)
                };
            }
            "--timeout" => {
                let v = value()?;
                let secs: u64 = v
                    .parse()
                    .map_err(|_| format!("--timeout takes whole seconds, not '{v}'"))?;
                opts.timeout = Duration::from_secs(secs);
            }
            other => {
                return Err(format!("unknown option '{other}' (see `cargo xtask help`)").into())
            }
        }
    }
    Ok(opts)
}

/// The packages, in installation order (mirai imports nanonext): name and source directory.
pub(crate) const PACKAGES: &[(&str, &str)] =
    &[("nanonext", "nanonext-r/rpkg"), ("mirai", "mirai-r/rpkg")];

/// `cargo xtask install-r [--lib DIR]`.
pub(crate) fn install_command(args: &[String]) -> Result<ExitCode> {
    let root = workspace_root();
    let opts = parse_options(args, &root)?;
    install(&root, &opts.lib)?;
    println!("nanonext and mirai installed into {}", opts.lib.display());
    Ok(ExitCode::SUCCESS)
}

/// Builds the engine and installs the packages into `lib`.
pub(crate) fn install(root: &Path, lib: &Path) -> Result<()> {
    std::fs::create_dir_all(lib)
        .map_err(|e| format!("cannot create library directory {}: {e}", lib.display()))?;
    for (_, dir) in PACKAGES {
        install_one(root, &root.join(dir), lib)?;
    }
    Ok(())
}

fn install_one(root: &Path, pkg: &Path, lib: &Path) -> Result<()> {
    let mut library = OsString::from("--library=");
    library.push(lib);
    let mut cmd = Command::new("R");
    cmd.args(["CMD", "INSTALL", "--no-multiarch"])
        .arg(library)
        .arg(pkg);
    cmd.env("MIRAI_WORKSPACE", root);
    // The cargo that runs us (set by `cargo run`) builds the engine too.
    if let Some(cargo) = std::env::var_os("CARGO") {
        cmd.env("CARGO", cargo);
    }
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run `R CMD INSTALL` (is R installed?): {e}"))?;
    if !status.success() {
        return Err(format!("`R CMD INSTALL {}` failed ({status})", pkg.display()).into());
    }
    Ok(())
}

/// The R program that runs a package's suite and writes `passed failed skipped` (counted per test, i.e.
/// per `test_that()` block) to the file named by `MIRAI_TEST_COUNTS`.
const RUNNER: &str = r#"
options(testthat.progress.max_fails = 1000000L, warn = 1)
res <- testthat::test_dir(
  Sys.getenv("MIRAI_TEST_DIR"),
  package = Sys.getenv("MIRAI_TEST_PACKAGE"),
  load_package = "installed",
  # One line per file (no spinner frames in logs), failures in full.
  reporter = testthat::ProgressReporter$new(show_praise = FALSE, update_interval = 1e9),
  stop_on_failure = FALSE,
  stop_on_warning = FALSE
)
df <- as.data.frame(res)
bad <- df$failed > 0 | df$error
skipped <- !bad & df$skipped
writeLines(sprintf("%d %d %d", sum(!bad & !skipped), sum(bad), sum(skipped)), Sys.getenv("MIRAI_TEST_COUNTS"))
"#;

/// Test counts read back from the runner.
#[derive(Debug, PartialEq, Eq)]
struct Counts {
    passed: u64,
    failed: u64,
    skipped: u64,
}

fn parse_counts(text: &str) -> Result<Counts> {
    let nums: Vec<u64> = text
        .split_whitespace()
        .map(|w| w.parse::<u64>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| format!("unreadable test counts '{}'", text.trim()))?;
    match nums[..] {
        [passed, failed, skipped] => Ok(Counts {
            passed,
            failed,
            skipped,
        }),
        _ => Err(format!("unreadable test counts '{}'", text.trim()).into()),
    }
}

/// The closing line: `N passed, M failed` and `, K skipped` when some were.
fn summary_line(c: &Counts) -> String {
    let mut line = format!("{} passed, {} failed", c.passed, c.failed);
    if c.skipped > 0 {
        line.push_str(&format!(", {} skipped", c.skipped));
    }
    line
}

/// `cargo xtask test-r [--lib DIR] [--timeout SECS]`: installs, then runs each package's suite
/// (the timeout bounds each); fails if any test of either fails.
pub(crate) fn test_command(args: &[String]) -> Result<ExitCode> {
    let root = workspace_root();
    let opts = parse_options(args, &root)?;
    install(&root, &opts.lib)?;
    let mut ok = true;
    for (name, dir) in PACKAGES {
        let test_dir = root.join(dir).join("tests").join("testthat");
        println!("{name}: running {}", test_dir.display());
        let counts = run_suite(name, &test_dir, &opts)?;
        println!("{name}: {}", summary_line(&counts.0));
        ok &= counts.0.failed == 0 && counts.1;
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs one package's testthat suite: its counts, and whether Rscript exited cleanly.
fn run_suite(name: &str, test_dir: &Path, opts: &Options) -> Result<(Counts, bool)> {
    let counts_file =
        std::env::temp_dir().join(format!("mirai-test-counts-{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&counts_file);
    let mut r_libs = OsString::from(opts.lib.as_os_str());
    if let Some(prev) = std::env::var_os("R_LIBS").filter(|p| !p.is_empty()) {
        r_libs.push(":");
        r_libs.push(prev);
    }
    let mut child = Command::new("Rscript")
        .args(["--no-save", "--no-restore", "-e", RUNNER])
        .env("R_LIBS", r_libs)
        .env("NOT_CRAN", "true")
        .env("MIRAI_TEST_PACKAGE", name)
        .env("MIRAI_TEST_DIR", test_dir)
        .env("MIRAI_TEST_COUNTS", &counts_file)
        .spawn()
        .map_err(|e| format!("cannot run Rscript: {e}"))?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > opts.timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "the {name} test suite did not finish within {} s",
                opts.timeout.as_secs()
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let text = std::fs::read_to_string(&counts_file).map_err(|_| {
        format!("the {name} test runner ended ({status}) without reporting results")
    })?;
    let _ = std::fs::remove_file(&counts_file);
    let counts = parse_counts(&text)?;
    if !status.success() {
        eprintln!("xtask test-r: Rscript ({name}) exited with {status}");
    }
    Ok((counts, status.success()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_default_to_target_r_and_parse_both_forms() {
        let root = Path::new("/ws");
        let o = parse_options(&[], root).unwrap();
        assert_eq!(o.lib, PathBuf::from("/ws/target/R"));
        assert_eq!(o.timeout, Duration::from_secs(1800));
        let o = parse_options(&strings(&["--lib", "/x/lib", "--timeout=60"]), root).unwrap();
        assert_eq!(o.lib, PathBuf::from("/x/lib"));
        assert_eq!(o.timeout, Duration::from_secs(60));
        let o = parse_options(&strings(&["--lib=/y"]), root).unwrap();
        assert_eq!(o.lib, PathBuf::from("/y"));
    }

    #[test]
    fn options_reject_unknown_and_missing_values() {
        let root = Path::new("/ws");
        assert!(parse_options(&strings(&["--frobnicate"]), root).is_err());
        assert!(parse_options(&strings(&["--lib"]), root).is_err());
        assert!(parse_options(&strings(&["--timeout", "soon"]), root).is_err());
    }

    #[test]
    fn relative_lib_is_made_absolute() {
        let o = parse_options(&strings(&["--lib", "rlib"]), Path::new("/ws")).unwrap();
        assert!(o.lib.is_absolute());
        assert!(o.lib.ends_with("rlib"));
    }

    #[test]
    fn counts_parse_and_summarise() {
        let c = parse_counts("12 0 0\n").unwrap();
        assert_eq!(summary_line(&c), "12 passed, 0 failed");
        let c = parse_counts("3 2 4").unwrap();
        assert_eq!(
            c,
            Counts {
                passed: 3,
                failed: 2,
                skipped: 4
            }
        );
        assert_eq!(summary_line(&c), "3 passed, 2 failed, 4 skipped");
        assert!(parse_counts("").is_err());
        assert!(parse_counts("1 2").is_err());
        assert!(parse_counts("a b c").is_err());
    }
}
