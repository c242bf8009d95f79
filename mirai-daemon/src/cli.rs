//! The `mirai-daemon` command line: a daemon running [`BuiltinEvaluator`], for tests and
//! benchmarks.
//!
//! Kept in the library so that other packages' test binaries can wrap [`cli_main`].
//!
//! Exit status: the [`ExitCode`](crate::ExitCode) (0-3) when the loop ends; 64 when the
//! synchronous dial fails; 65 for a usage error; 66 for a protocol error from the host; 67 when
//! initialisation fails; 68 for other transport failures. Errors are printed on stderr.

use std::ffi::OsString;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use mirai_transport::Backend;

use crate::{run, AutoExit, BuiltinEvaluator, DaemonConfig, DaemonError};

/// Exit status for a failed synchronous dial.
pub const EXIT_DIAL: i32 = 64;
/// Exit status for a usage error.
pub const EXIT_USAGE: i32 = 65;
/// Exit status for a protocol error from the host.
pub const EXIT_PROTOCOL: i32 = 66;
/// Exit status for a failed initialisation.
pub const EXIT_INIT: i32 = 67;
/// Exit status for other transport failures.
pub const EXIT_TRANSPORT: i32 = 68;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum BackendArg {
    Native,
    Nng,
}

fn parse_autoexit(s: &str) -> Result<AutoExit, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "t" => Ok(AutoExit::Exit),
        "na" => Ok(AutoExit::Finish),
        "false" | "f" => Ok(AutoExit::Stay),
        _ => Err(format!("expected true, na or false, got '{s}'")),
    }
}

/// A mirai daemon with a built-in test evaluator (echo:, sleep:, fail:, pid:, spin:).
#[derive(Debug, Parser)]
#[command(name = "mirai-daemon", version)]
struct Args {
    /// The host URL to dial, e.g. tcp://127.0.0.1:5555 or abstract://name.
    url: String,
    /// Transport backend.
    #[arg(long, value_enum, default_value = "native")]
    backend: BackendArg,
    /// Retry the dial until a host listens, instead of failing at once.
    #[arg(long)]
    asyncdial: bool,
    /// When the host goes away: true (exit; terminate a busy daemon after 200 ms), na (finish
    /// the current task, then exit) or false (redial the same URL).
    #[arg(long, default_value = "true", value_parser = parse_autoexit)]
    autoexit: AutoExit,
    /// Exit with code 1 after this many milliseconds without a task.
    #[arg(long, value_name = "MS")]
    idletime: Option<u64>,
    /// Exit with code 2 once this many milliseconds have passed since start.
    #[arg(long, value_name = "MS")]
    walltime: Option<u64>,
    /// Exit with code 3 after this many tasks.
    #[arg(long, value_name = "N")]
    maxtasks: Option<u64>,
}

/// Runs the daemon with the process's command-line arguments; returns the exit status.
pub fn cli_main() -> i32 {
    cli_main_from(std::env::args_os())
}

/// Runs the daemon with `args` (the first being the program name); returns the exit status.
pub fn cli_main_from<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args = match Args::try_parse_from(args) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_USAGE } else { 0 };
        }
    };
    let mut config = DaemonConfig::new(args.url);
    config.transport.backend = match args.backend {
        BackendArg::Native => Backend::Native,
        BackendArg::Nng => Backend::Nng,
    };
    config.asyncdial = args.asyncdial;
    config.autoexit = args.autoexit;
    config.idletime = args.idletime.map(Duration::from_millis);
    config.walltime = args.walltime.map(Duration::from_millis);
    config.maxtasks = args.maxtasks;
    match run(&config, &mut BuiltinEvaluator) {
        Ok(code) => code as i32,
        Err(e) => {
            match &e {
                DaemonError::Dial { source, .. } => eprintln!("mirai-daemon: {e} ({source})"),
                _ => eprintln!("mirai-daemon: {e}"),
            }
            match e {
                DaemonError::Dial { .. } => EXIT_DIAL,
                DaemonError::Protocol(_) => EXIT_PROTOCOL,
                DaemonError::Init(_) => EXIT_INIT,
                DaemonError::Transport(_) => EXIT_TRANSPORT,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn autoexit_values_follow_r() {
        assert_eq!(parse_autoexit("TRUE"), Ok(AutoExit::Exit));
        assert_eq!(parse_autoexit("na"), Ok(AutoExit::Finish));
        assert_eq!(parse_autoexit("NA"), Ok(AutoExit::Finish));
        assert_eq!(parse_autoexit("false"), Ok(AutoExit::Stay));
        assert!(parse_autoexit("maybe").is_err());
    }

    #[test]
    fn arguments_parse() {
        let a = Args::try_parse_from([
            "mirai-daemon",
            "tcp://[::1]:5555",
            "--backend",
            "nng",
            "--asyncdial",
            "--autoexit",
            "false",
            "--idletime",
            "10",
            "--walltime",
            "20",
            "--maxtasks",
            "3",
        ])
        .unwrap();
        assert_eq!(a.url, "tcp://[::1]:5555");
        assert!(matches!(a.backend, BackendArg::Nng));
        assert!(a.asyncdial);
        assert_eq!(a.autoexit, AutoExit::Stay);
        assert_eq!(
            (a.idletime, a.walltime, a.maxtasks),
            (Some(10), Some(20), Some(3))
        );
        let d = Args::try_parse_from(["mirai-daemon", "abstract://x"]).unwrap();
        assert_eq!(d.autoexit, AutoExit::Exit);
        assert!(!d.asyncdial && d.maxtasks.is_none());
    }

    #[test]
    fn usage_errors_are_not_exit_codes_of_the_loop() {
        assert_eq!(cli_main_from(["mirai-daemon"]), EXIT_USAGE);
        assert_eq!(
            cli_main_from(["mirai-daemon", "x", "--maxtasks", "many"]),
            EXIT_USAGE
        );
    }
}
