//! Starting local daemon processes.
//!
//! A [`Command`] is a program, its arguments and extra environment. [`crate::Host::launch`]
//! starts it `n` times (standard input from `/dev/null`, standard output and error inherited),
//! does not wait for the processes, and reaps them as they exit. [`daemon_command`] builds the
//! command line of the `mirai-daemon` binary (the Rust daemon used by tests and benchmarks);
//! the R package builds its own `Rscript -e 'mirai::daemon(...)'` commands.

use std::path::{Path, PathBuf};

pub use mirai_proto::daemon_args::{AutoExit, Backend, DaemonArgs};

/// A program and arguments to start a daemon with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The executable (a path, or a name looked up in `PATH`).
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Environment variables set for the process on top of the host's own.
    pub env: Vec<(String, String)>,
}

impl Command {
    /// `program` with no arguments and no extra environment.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Command {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Sets one environment variable for the process.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Starts the process: stdin null, stdout and stderr inherited, not waited for.
    pub(crate) fn spawn(&self) -> std::io::Result<std::process::Child> {
        std::process::Command::new(&self.program)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(std::process::Stdio::null())
            .spawn()
    }
}

/// The daemon backend `--backend` names for a transport backend (the daemon's command line
/// is defined in `mirai-proto`, which does not depend on the transport).
pub fn daemon_backend(backend: mirai_transport::Backend) -> Backend {
    match backend {
        mirai_transport::Backend::Native => Backend::Native,
        mirai_transport::Backend::Nng => Backend::Nng,
    }
}

/// The command line of the `mirai-daemon` binary at `program`, dialing `url` with the options
/// of `args` (whose own URL is ignored): rendered by [`DaemonArgs::to_args`], the same
/// definition the daemon parses.
pub fn daemon_command(program: impl Into<PathBuf>, url: &str, args: &DaemonArgs) -> Command {
    let mut c = Command::new(program);
    c.args = args.clone().with_url(url).to_args();
    c
}

/// Environment variable naming the `mirai-daemon` binary explicitly.
pub const DAEMON_BIN_ENV: &str = "MIRAI_DAEMON_BIN";

/// Finds the `mirai-daemon` binary: `$MIRAI_DAEMON_BIN` if set, else next to the running
/// executable (or one directory up, where Cargo puts binaries beside `deps/`), else on `PATH`.
pub fn find_daemon_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(DAEMON_BIN_ENV) {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let name = "mirai-daemon";
    if let Ok(exe) = std::env::current_exe() {
        let mut dir = exe.parent();
        for _ in 0..2 {
            let Some(d) = dir else { break };
            let cand = d.join(name);
            if cand.is_file() {
                return Some(cand);
            }
            dir = d.parent();
        }
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| is_executable(p))
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The command of a local `mirai-daemon` dialing `url`, from [`find_daemon_binary`].
pub fn local_daemon_command(url: &str, args: &DaemonArgs) -> Result<Command, crate::HostError> {
    let program = find_daemon_binary().ok_or_else(|| crate::HostError::Launch {
        program: "mirai-daemon".into(),
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("not found beside this executable or on PATH; set {DAEMON_BIN_ENV}"),
        ),
    })?;
    Ok(daemon_command(program, url, args))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn daemon_command_renders_every_option() {
        let args = DaemonArgs::default()
            .with_backend(daemon_backend(mirai_transport::Backend::Nng))
            .with_asyncdial(true)
            .with_autoexit(AutoExit::Finish)
            .with_idletime(Duration::from_millis(1500))
            .with_walltime(Duration::from_secs(2))
            .with_maxtasks(10);
        let c = daemon_command("/bin/d", "tcp://127.0.0.1:5555", &args);
        assert_eq!(c.program, PathBuf::from("/bin/d"));
        assert_eq!(
            c.args,
            [
                "tcp://127.0.0.1:5555",
                "--backend",
                "nng",
                "--asyncdial",
                "--autoexit",
                "na",
                "--idletime",
                "1500",
                "--walltime",
                "2000",
                "--maxtasks",
                "10"
            ]
        );
        let plain = daemon_command("d", "abstract://x", &DaemonArgs::default());
        assert_eq!(plain.args, ["abstract://x"]);
        assert_eq!(
            daemon_backend(mirai_transport::Backend::Native),
            Backend::Native
        );
        // The daemon reads back what the host renders.
        let parsed = DaemonArgs::parse(c.args).unwrap();
        assert_eq!(parsed, args.with_url("tcp://127.0.0.1:5555"));
    }

    #[test]
    fn spawn_runs_the_program_with_its_environment() {
        let dir = std::env::temp_dir().join(format!("mirai-launch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let c = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("printf %s \"$MIRAI_X\" > {}", out.display()))
            .env("MIRAI_X", "hello");
        let status = c.spawn().unwrap().wait().unwrap();
        assert!(status.success());
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "hello");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
