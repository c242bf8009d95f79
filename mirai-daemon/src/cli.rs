//! The `mirai-daemon` command line: a daemon running [`BuiltinEvaluator`], for tests and
//! benchmarks.
//!
//! Kept in the library so that other packages' test binaries can wrap [`cli_main`]. The
//! command line itself is [`DaemonArgs`] (in `mirai-proto`, shared with the launchers that
//! render it), so this module only runs what it says.
//!
//! Exit status: the [`ExitCode`](crate::ExitCode) (0-3) when the loop ends; otherwise a
//! [`FailureStatus`]: 64 when the synchronous dial fails; 65 for a usage error; 66 for a
//! protocol error from the host; 67 when initialisation fails; 68 for other transport
//! failures. Errors are printed on stderr.

use std::ffi::OsString;

use mirai_proto::daemon_args::{ArgsError, OPTIONS_HELP};

use crate::{run, BuiltinEvaluator, DaemonArgs, DaemonConfig, DaemonError, FailureStatus};

/// Exit status for a failed synchronous dial ([`FailureStatus::Dial`]).
pub const EXIT_DIAL: i32 = FailureStatus::Dial.code();
/// Exit status for a usage error ([`FailureStatus::Usage`]).
pub const EXIT_USAGE: i32 = FailureStatus::Usage.code();
/// Exit status for a protocol error from the host ([`FailureStatus::Protocol`]).
pub const EXIT_PROTOCOL: i32 = FailureStatus::Protocol.code();
/// Exit status for a failed initialisation ([`FailureStatus::Init`]).
pub const EXIT_INIT: i32 = FailureStatus::Init.code();
/// Exit status for other transport failures ([`FailureStatus::Transport`]).
pub const EXIT_TRANSPORT: i32 = FailureStatus::Transport.code();

const ABOUT: &str =
    "A mirai daemon with a built-in test evaluator (echo:, sleep:, fail:, pid:, spin:, block:).";
const USAGE: &str = "Usage: mirai-daemon [OPTIONS] <URL>";

/// Runs the daemon with the process's command-line arguments; returns the exit status.
pub fn cli_main() -> i32 {
    cli_main_from(std::env::args_os())
}

/// Runs the daemon with `args` (the first being the program name); returns the exit status.
pub fn cli_main_from<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let args = match DaemonArgs::parse(args.into_iter().skip(1)) {
        Ok(a) => a,
        Err(ArgsError::Help) => {
            println!("{ABOUT}\n\n{USAGE}\n\n{OPTIONS_HELP}");
            return 0;
        }
        Err(ArgsError::Version) => {
            println!("mirai-daemon {}", env!("CARGO_PKG_VERSION"));
            return 0;
        }
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}\n\nFor more information, try '--help'.");
            return EXIT_USAGE;
        }
    };
    match run(&DaemonConfig::from_args(&args), &mut BuiltinEvaluator) {
        Ok(code) => code.code(),
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
    use crate::AutoExit;
    use mirai_transport::Backend;
    use std::time::Duration;

    #[test]
    fn usage_errors_are_not_exit_codes_of_the_loop() {
        assert_eq!(cli_main_from(["mirai-daemon"]), EXIT_USAGE);
        assert_eq!(
            cli_main_from(["mirai-daemon", "x", "--maxtasks", "many"]),
            EXIT_USAGE
        );
        assert_eq!(
            cli_main_from(["mirai-daemon", "x", "--autoexit", "maybe"]),
            EXIT_USAGE
        );
        assert_eq!(cli_main_from(["mirai-daemon", "--help"]), 0);
        assert_eq!(cli_main_from(["mirai-daemon", "--version"]), 0);
    }

    #[test]
    fn the_command_line_becomes_the_configuration() {
        let a = DaemonArgs::parse([
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
        let c = DaemonConfig::from_args(&a);
        assert_eq!(c.url, "tcp://[::1]:5555");
        assert_eq!(c.transport.backend, Backend::Nng);
        assert!(c.asyncdial);
        assert_eq!(c.autoexit, AutoExit::Stay);
        assert_eq!(
            (c.idletime, c.walltime, c.maxtasks),
            (
                Some(Duration::from_millis(10)),
                Some(Duration::from_millis(20)),
                Some(3)
            )
        );
        let d = DaemonConfig::from_args(&DaemonArgs::parse(["abstract://x"]).unwrap());
        assert_eq!(d.autoexit, AutoExit::Exit);
        assert_eq!(d.transport.backend, Backend::Native);
        assert!(!d.asyncdial && d.maxtasks.is_none());
    }
}
