//! The contract between a launcher and the `mirai-daemon` binary: its command line
//! ([`DaemonArgs`], rendered by [`DaemonArgs::to_args`] and read by [`DaemonArgs::parse`]),
//! what a daemon does when its host goes ([`AutoExit`]), and what its exit status means
//! ([`ExitCode`], [`FailureStatus`]).
//!
//! ```
//! use std::time::Duration;
//! use mirai_proto::daemon_args::{AutoExit, DaemonArgs};
//! let args = DaemonArgs::new("tcp://127.0.0.1:5555")
//!     .with_autoexit(AutoExit::Finish)
//!     .with_idletime(Duration::from_millis(1500));
//! let line = args.to_args();
//! assert_eq!(line, ["tcp://127.0.0.1:5555", "--autoexit", "na", "--idletime", "1500"]);
//! assert_eq!(DaemonArgs::parse(line).unwrap(), args);
//! ```

use std::ffi::OsString;
use std::str::FromStr;
use std::time::Duration;

/// The options of the command line, for `--help`.
pub const OPTIONS_HELP: &str = "\
Arguments:
  <URL>                 The host URL to dial, e.g. tcp://127.0.0.1:5555 or abstract://name

Options:
  --backend <BACKEND>   Transport backend: native (default) or nng
  --asyncdial           Retry the dial until a host listens, instead of failing at once
  --autoexit <WHEN>     When the host goes away: true (exit; terminate a busy daemon after
                        200 ms, the default), na (finish the current task, then exit) or false
                        (redial the same URL)
  --idletime <MS>       Exit with code 1 after this many milliseconds without a task
  --walltime <MS>       Exit with code 2 once this many milliseconds have passed since start
  --maxtasks <N>        Exit with code 3 after this many tasks
  -h, --help            Print help
  -V, --version         Print version
";

/// What a daemon does when its connection to the host drops (R's `autoexit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum AutoExit {
    /// `autoexit = TRUE` (`--autoexit true`): exit at once when idle; when busy, allow 200 ms
    /// of grace, then terminate the process (SIGTERM to itself), even mid-task.
    #[default]
    Exit,
    /// `autoexit = NA` (`--autoexit na`): finish the current task, then return
    /// [`ExitCode::Disconnected`].
    Finish,
    /// `autoexit = FALSE` (`--autoexit false`): keep running and redial the same URL until a
    /// host appears.
    Stay,
}

impl AutoExit {
    /// The value of `--autoexit`: `true`, `na` or `false`.
    pub const fn as_str(self) -> &'static str {
        match self {
            AutoExit::Exit => "true",
            AutoExit::Finish => "na",
            AutoExit::Stay => "false",
        }
    }
}

/// Reads `true`/`t`, `na`, `false`/`f`, in any case, as R spells them.
impl FromStr for AutoExit {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s.to_ascii_lowercase().as_str() {
            "true" | "t" => Ok(AutoExit::Exit),
            "na" => Ok(AutoExit::Finish),
            "false" | "f" => Ok(AutoExit::Stay),
            _ => Err(()),
        }
    }
}

/// Which transport backend a daemon dials with (`--backend`).
///
/// Exhaustive on purpose: one variant per backend of `mirai-transport`, whose own `Backend`
/// it mirrors (this crate does not depend on the transport).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// `--backend native`: the epoll backend (the daemon's default).
    Native,
    /// `--backend nng`: the NNG backend.
    Nng,
}

impl Backend {
    /// The value of `--backend`: `native` or `nng`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Backend::Native => "native",
            Backend::Nng => "nng",
        }
    }
}

impl FromStr for Backend {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "native" => Ok(Backend::Native),
            "nng" => Ok(Backend::Nng),
            _ => Err(()),
        }
    }
}

/// Why a daemon's loop ended: the codes R's `daemon()` returns, and the `mirai-daemon`
/// binary's exit status. A launcher reads any other status as a crash (or a
/// [`FailureStatus`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
#[non_exhaustive]
pub enum ExitCode {
    /// 0: the connection ended (or the host said exit).
    Disconnected = 0,
    /// 1: no task arrived within `idletime`.
    Idletime = 1,
    /// 2: `walltime` elapsed.
    Walltime = 2,
    /// 3: `maxtasks` tasks were evaluated.
    Maxtasks = 3,
}

impl ExitCode {
    /// The integer code.
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// The exit code `code` stands for; `None` if it is none of them.
    pub const fn from_code(code: i32) -> Option<ExitCode> {
        match code {
            0 => Some(ExitCode::Disconnected),
            1 => Some(ExitCode::Idletime),
            2 => Some(ExitCode::Walltime),
            3 => Some(ExitCode::Maxtasks),
            _ => None,
        }
    }
}

/// The `mirai-daemon` binary's exit status when it could not run its loop to an
/// [`ExitCode`]. Each failure is also described on standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
#[non_exhaustive]
pub enum FailureStatus {
    /// 64: the synchronous first dial failed.
    Dial = 64,
    /// 65: the command line is not valid.
    Usage = 65,
    /// 66: the host broke the protocol.
    Protocol = 66,
    /// 67: initialisation from the host's init bundle failed.
    Init = 67,
    /// 68: another transport failure.
    Transport = 68,
}

impl FailureStatus {
    /// The process exit status.
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// The failure `code` stands for; `None` if it is none of them.
    pub const fn from_code(code: i32) -> Option<FailureStatus> {
        match code {
            64 => Some(FailureStatus::Dial),
            65 => Some(FailureStatus::Usage),
            66 => Some(FailureStatus::Protocol),
            67 => Some(FailureStatus::Init),
            68 => Some(FailureStatus::Transport),
            _ => None,
        }
    }
}

/// The command line of the `mirai-daemon` binary: the URL to dial and the options. `None` and
/// `false` leave the daemon's defaults (native backend, synchronous dial, `autoexit = TRUE`,
/// no limits).
///
/// Durations travel as whole milliseconds: [`DaemonArgs::to_args`] drops any finer part.
/// `Default` has an empty URL: for launchers that keep the options apart and set the URL of
/// each daemon they start.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DaemonArgs {
    /// The host URL to dial.
    pub url: String,
    /// `--backend native|nng`.
    pub backend: Option<Backend>,
    /// `--asyncdial`: retry the first dial until a host listens.
    pub asyncdial: bool,
    /// `--autoexit true|na|false`.
    pub autoexit: Option<AutoExit>,
    /// `--idletime MS`: exit (code 1) after this long without a task.
    pub idletime: Option<Duration>,
    /// `--walltime MS`: exit (code 2) once this long has passed since start.
    pub walltime: Option<Duration>,
    /// `--maxtasks N`: exit (code 3) after this many tasks.
    pub maxtasks: Option<u64>,
}

/// Why a command line is not a [`DaemonArgs`] (or asks for something else).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArgsError {
    /// `-h` or `--help`: print [`OPTIONS_HELP`] instead of running.
    #[error("help requested")]
    Help,
    /// `-V` or `--version`: print the version instead of running.
    #[error("version requested")]
    Version,
    /// No URL was given.
    #[error("the host URL is required")]
    MissingUrl,
    /// A second positional argument.
    #[error("unexpected argument '{0}' (only one URL is taken)")]
    UnexpectedArgument(String),
    /// An option this binary does not have.
    #[error("unknown option '{0}'")]
    UnknownOption(String),
    /// An option given without its value.
    #[error("option '--{option}' needs a value")]
    MissingValue {
        /// The option, without its dashes.
        option: &'static str,
    },
    /// An option whose value cannot be read.
    #[error("invalid value '{value}' for '--{option}': expected {expected}")]
    InvalidValue {
        /// The option, without its dashes.
        option: &'static str,
        /// The value given.
        value: String,
        /// What would do.
        expected: &'static str,
    },
    /// An option given twice.
    #[error("option '--{option}' given more than once")]
    Repeated {
        /// The option, without its dashes.
        option: &'static str,
    },
    /// An argument that is not valid UTF-8.
    #[error("argument {0} is not valid UTF-8")]
    NotUnicode(usize),
}

impl DaemonArgs {
    /// Dial `url`, every option at the daemon's default.
    pub fn new(url: impl Into<String>) -> Self {
        DaemonArgs {
            url: url.into(),
            backend: None,
            asyncdial: false,
            autoexit: None,
            idletime: None,
            walltime: None,
            maxtasks: None,
        }
    }

    /// Sets the URL to dial.
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = url.into();
        self
    }

    /// Sets `--backend`.
    pub fn with_backend(mut self, backend: Backend) -> Self {
        self.backend = Some(backend);
        self
    }

    /// Sets `--asyncdial`.
    pub fn with_asyncdial(mut self, asyncdial: bool) -> Self {
        self.asyncdial = asyncdial;
        self
    }

    /// Sets `--autoexit`.
    pub fn with_autoexit(mut self, autoexit: AutoExit) -> Self {
        self.autoexit = Some(autoexit);
        self
    }

    /// Sets `--idletime` (whole milliseconds).
    pub fn with_idletime(mut self, idletime: Duration) -> Self {
        self.idletime = Some(idletime);
        self
    }

    /// Sets `--walltime` (whole milliseconds).
    pub fn with_walltime(mut self, walltime: Duration) -> Self {
        self.walltime = Some(walltime);
        self
    }

    /// Sets `--maxtasks`.
    pub fn with_maxtasks(mut self, maxtasks: u64) -> Self {
        self.maxtasks = Some(maxtasks);
        self
    }

    /// The arguments to start the binary with (without the program name): the URL, then each
    /// option that is set, in the order of the fields. A URL that starts with `-` goes last,
    /// after `--`, so that it is not read as an option.
    pub fn to_args(&self) -> Vec<String> {
        let mut v = Vec::new();
        let dashed = self.url.starts_with('-');
        if !dashed {
            v.push(self.url.clone());
        }
        if let Some(b) = self.backend {
            v.extend(["--backend".to_string(), b.as_str().to_string()]);
        }
        if self.asyncdial {
            v.push("--asyncdial".to_string());
        }
        if let Some(a) = self.autoexit {
            v.extend(["--autoexit".to_string(), a.as_str().to_string()]);
        }
        let ms = |d: Duration| d.as_millis().to_string();
        if let Some(t) = self.idletime {
            v.extend(["--idletime".to_string(), ms(t)]);
        }
        if let Some(t) = self.walltime {
            v.extend(["--walltime".to_string(), ms(t)]);
        }
        if let Some(n) = self.maxtasks {
            v.extend(["--maxtasks".to_string(), n.to_string()]);
        }
        if dashed {
            v.extend(["--".to_string(), self.url.clone()]);
        }
        v
    }

    /// Reads the arguments after the program name. Options take their value as the next
    /// argument or after `=` (`--maxtasks=3`); `--` ends the options. Each option may be
    /// given once.
    pub fn parse<I>(args: I) -> Result<DaemonArgs, ArgsError>
    where
        I: IntoIterator,
        I::Item: Into<OsString>,
    {
        let mut args = args
            .into_iter()
            .enumerate()
            .map(|(i, a)| a.into().into_string().map_err(|_| ArgsError::NotUnicode(i)));
        let mut url = None;
        let mut out = DaemonArgs::new(String::new());
        let mut seen: Vec<Opt> = Vec::new();
        let mut options = true;
        while let Some(arg) = args.next() {
            let arg = arg?;
            if !options || !arg.starts_with('-') || arg == "-" {
                if url.is_some() {
                    return Err(ArgsError::UnexpectedArgument(arg));
                }
                url = Some(arg);
                continue;
            }
            if arg == "--" {
                options = false;
                continue;
            }
            match arg.as_str() {
                "-h" | "--help" => return Err(ArgsError::Help),
                "-V" | "--version" => return Err(ArgsError::Version),
                _ => {}
            }
            let Some(long) = arg.strip_prefix("--") else {
                return Err(ArgsError::UnknownOption(arg));
            };
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let Some(opt) = Opt::find(name) else {
                return Err(ArgsError::UnknownOption(arg));
            };
            let option = opt.name();
            if seen.contains(&opt) {
                return Err(ArgsError::Repeated { option });
            }
            seen.push(opt);
            if opt == Opt::Asyncdial {
                if let Some(value) = inline {
                    return Err(ArgsError::InvalidValue {
                        option,
                        value,
                        expected: "no value",
                    });
                }
                out.asyncdial = true;
                continue;
            }
            let value = match inline {
                Some(v) => v,
                None => args.next().ok_or(ArgsError::MissingValue { option })??,
            };
            let bad = |expected| ArgsError::InvalidValue {
                option,
                value: value.clone(),
                expected,
            };
            let whole = |what| value.parse::<u64>().map_err(|_| bad(what));
            match opt {
                Opt::Backend => {
                    out.backend = Some(value.parse().map_err(|_| bad("native or nng"))?)
                }
                Opt::Autoexit => {
                    out.autoexit = Some(value.parse().map_err(|_| bad("true, na or false"))?)
                }
                Opt::Idletime => out.idletime = Some(Duration::from_millis(whole("milliseconds")?)),
                Opt::Walltime => out.walltime = Some(Duration::from_millis(whole("milliseconds")?)),
                Opt::Maxtasks => out.maxtasks = Some(whole("a whole number")?),
                Opt::Asyncdial => {}
            }
        }
        out.url = url.ok_or(ArgsError::MissingUrl)?;
        Ok(out)
    }
}

/// The options of the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opt {
    Backend,
    Asyncdial,
    Autoexit,
    Idletime,
    Walltime,
    Maxtasks,
}

impl Opt {
    const ALL: [Opt; 6] = [
        Opt::Backend,
        Opt::Asyncdial,
        Opt::Autoexit,
        Opt::Idletime,
        Opt::Walltime,
        Opt::Maxtasks,
    ];

    /// The option's name, without its dashes.
    const fn name(self) -> &'static str {
        match self {
            Opt::Backend => "backend",
            Opt::Asyncdial => "asyncdial",
            Opt::Autoexit => "autoexit",
            Opt::Idletime => "idletime",
            Opt::Walltime => "walltime",
            Opt::Maxtasks => "maxtasks",
        }
    }

    fn find(name: &str) -> Option<Opt> {
        Opt::ALL.into_iter().find(|o| o.name() == name)
    }
}

#[cfg(test)]
mod tests;
