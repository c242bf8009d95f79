//! Project automation, run as `cargo xtask <command>` (alias in `.cargo/config.toml`).
//!
//! Each command lives in its own module; `main` only dispatches. Commands:
//! - `install-r [--lib DIR]`: builds the Rust engine and installs the R package (module `r`);
//! - `test-r [--lib DIR] [--timeout SECS]`: installs, then runs the package's testthat suite
//!   against the installed package (module `r`);
//! - `build-r`: R source tarballs of the packages in `target/pkg/` (module `pkg`);
//! - `bench [--quick] [--no-r] [--no-scale] [--nanonext] [--lib DIR] [--scale LIST]`: engine, scale and R
//!   benchmarks in one run, merged into one table and a plot (module `bench`).

mod bench;
mod pkg;
mod r;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Errors of xtask commands: a message for the person running them.
pub(crate) type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const HELP: &str = "\
usage: cargo xtask <command> [options]

commands:
  install-r [--lib DIR]                  build the Rust engine and install the R packages nanonext and mirai
                                         into DIR (default: <workspace>/target/R)
  test-r [--lib DIR] [--timeout SECS]    install-r, then run mirai-r/rpkg/tests/testthat against
                                         the installed package; ends with `N passed, M failed`
                                         and fails if any test failed (timeout default 1800 s)
  build-r                                R source tarball of the package, with the Rust
                                         sources and their vendored crates, installable
                                         offline: target/pkg/mirai_<version>.tar.gz
  bench [--quick] [--no-r] [--no-scale] [--nanonext] [--lib DIR] [--scale LIST]
                                         measure the engine (vs a raw socket floor; with
                                         tracing off, disabled and on), one host
                                         with many daemons (LIST, default 100,300,1000) and the
                                         R package (vs PSOCK, future, CRAN mirai) in one run;
                                         table, CSV and plot in bench/results
  help                                   this text";

/// The Cargo workspace root (the parent of this crate's directory).
pub(crate) fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprintln!("{HELP}");
        return ExitCode::from(2);
    };
    let result = match command.as_str() {
        "install-r" => r::install_command(rest),
        "test-r" => r::test_command(rest),
        "build-r" => pkg::command(rest),
        "bench" => bench::command(rest),
        "help" | "-h" | "--help" => {
            println!("{HELP}");
            Ok(ExitCode::SUCCESS)
        }
        other => {
            eprintln!("xtask: unknown command '{other}'\n\n{HELP}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask {command}: {e}");
            ExitCode::FAILURE
        }
    }
}
