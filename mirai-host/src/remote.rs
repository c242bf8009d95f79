//! Launch commands for daemons that run elsewhere: the R call `mirai::daemon(...)`, the shell
//! command that runs it (`<rscript> -e '<call>'`), and the command line that deploys it through
//! `ssh`, an HPC scheduler's submit command or any other shell command (R API spec §3.12).
//!
//! Every piece that did not come from the user as shell text is quoted for each layer it passes
//! through, so no URL, certificate, argument name or path can break out of its place:
//! - inside the R call, strings are R string literals ([`r_string`]) and argument names are
//!   syntactic or back-quoted ([`r_name`]); argument values must be R logical or numeric
//!   literals ([`DaemonArg::new`]);
//! - the call is one single-quoted shell word ([`shell_quote`]) after `<rscript> -e`;
//! - where the command replaces `"."` in a deployment's arguments it is quoted once more if it
//!   goes through a second shell (`ssh` runs it with the remote user's shell);
//! - a scheduler job script is fed through a quoted here-document whose delimiter is changed if
//!   a line of the script happens to equal it ([`Deploy::Script`]).
//!
//! What stays raw, because it *is* shell text by contract: `rscript` (it may carry flags or
//! `VAR=value` assignments, e.g. `R_LIBS=/opt/lib Rscript`), a deployment's `command` and
//! `args`, and a scheduler's `options` (script lines such as `#SBATCH --mem=1G` or `module load
//! R`). Shells are assumed POSIX (`sh`, `bash`, `dash`, `zsh`).
//!
//! This module only builds text and [`Command`]s; starting them is [`crate::Host::launch`]'s job.
//! It knows nothing of R objects: the R bridge converts them.
//!
//! ```
//! use mirai_host::remote::{DaemonArg, DaemonCall, Deploy, shell_command};
//! let mut call = DaemonCall::new("tcp://10.0.0.5:5555");
//! call.args.push(DaemonArg::new("maxtasks", "10")?);
//! let call = call.render()?;
//! assert_eq!(call, r#"mirai::daemon("tcp://10.0.0.5:5555",maxtasks=10)"#);
//! let cmd = shell_command("Rscript", &call);
//! assert_eq!(cmd, r#"Rscript -e 'mirai::daemon("tcp://10.0.0.5:5555",maxtasks=10)'"#);
//! let ssh = Deploy::Args {
//!     command: "ssh".into(),
//!     args: vec!["-o ConnectTimeout=10 -fTp 22".into(), "user@node1".into(), ".".into()],
//!     quote: true,
//!     tunnel_port: None,
//! };
//! let launch = ssh.command(&cmd)?;
//! assert_eq!(launch.program.to_str(), Some("/bin/sh"));
//! assert_eq!(launch.args[1], format!("ssh -o ConnectTimeout=10 -fTp 22 user@node1 '{}'",
//!     cmd.replace('\'', r"'\''")));
//! # Ok::<(), mirai_host::remote::LaunchError>(())
//! ```

use crate::launch::Command;

/// Why a launch command could not be built. Each message names the offending input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaunchError {
    /// A daemon argument value that is not an R logical or numeric literal.
    #[error("daemon argument `{name}` has value '{value}', which is not an R logical or numeric literal")]
    BadValue {
        /// The argument's name.
        name: String,
        /// The value given.
        value: String,
    },
    /// A daemon argument with an empty name.
    #[error("daemon arguments must be named")]
    EmptyName,
    /// Stored daemon arguments that are not in the form [`render_args`] writes.
    #[error(
        "malformed daemon arguments '{0}': expected `,name=value` items as written by the engine"
    )]
    BadArgs(String),
    /// `tlscert` with more than two elements.
    #[error("`tlscert` must be a path, or c(<CA certificate PEM>, <client identity PEM or \"\">), not {0} elements")]
    TlsCert(usize),
    /// An `rs` stream that is neither empty nor 7 integers.
    #[error("`rs` must hold 7 integers (a L'Ecuyer-CMRG stream) or none, not {0}")]
    Stream(usize),
    /// Deployment arguments without the `"."` placeholder for the daemon command.
    #[error("`.` must be an element of the character vector(s) supplied to `args`")]
    NoPlaceholder,
    /// An R string that cannot be written as an R literal (it holds a NUL byte).
    #[error("{what} contains a NUL character")]
    Nul {
        /// Which input.
        what: &'static str,
    },
}

/// Quotes `s` as one word for a POSIX shell: single quotes, with each `'` written as `'\''`.
/// Everything between single quotes is literal (`$`, `` ` ``, `\`, `"`, newlines, ...).
pub fn shell_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// `s` as an R string literal in double quotes. Backslash and `"` are escaped; newlines stay
/// real newlines (a PEM certificate is embedded as the multi-line text it is); other control
/// characters are written as `\xHH` escapes.
pub fn r_string(s: &str) -> Result<String, LaunchError> {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\0' => {
                return Err(LaunchError::Nul {
                    what: "a string in the daemon call",
                })
            }
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' | '\t' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    Ok(out)
}

const RESERVED: &[&str] = &[
    "if",
    "else",
    "repeat",
    "while",
    "function",
    "for",
    "next",
    "break",
    "TRUE",
    "FALSE",
    "NULL",
    "Inf",
    "NaN",
    "NA",
    "NA_integer_",
    "NA_real_",
    "NA_character_",
    "NA_complex_",
    "in",
    "...",
];

/// True if `name` can stand unquoted as an argument name in R code: ASCII letters, digits, `.`
/// and `_`, starting with a letter or with `.` not followed by a digit, and not a reserved word.
pub fn is_syntactic(name: &str) -> bool {
    let b = name.as_bytes();
    let Some(&first) = b.first() else {
        return false;
    };
    let starts_ok = first.is_ascii_alphabetic()
        || (first == b'.' && !b.get(1).is_some_and(|c| c.is_ascii_digit()));
    starts_ok
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'.' || *c == b'_')
        && !RESERVED.contains(&name)
        && !(name.starts_with("..") && name[2..].bytes().all(|c| c.is_ascii_digit()))
}

/// `name` as it can be written before `=` in an R call: as is if syntactic, else in backquotes
/// (with `\` and `` ` `` escaped, as R's parser reads them).
pub fn r_name(name: &str) -> Result<String, LaunchError> {
    if name.is_empty() {
        return Err(LaunchError::EmptyName);
    }
    if is_syntactic(name) {
        return Ok(name.to_string());
    }
    let mut out = String::from("`");
    for c in name.chars() {
        match c {
            '\0' => {
                return Err(LaunchError::Nul {
                    what: "a daemon argument name",
                })
            }
            '\\' => out.push_str("\\\\"),
            '`' => out.push_str("\\`"),
            c => out.push(c),
        }
    }
    out.push('`');
    Ok(out)
}

/// True if `v` is how R's `as.character` writes a logical or a number: `TRUE`, `FALSE`, `NA`,
/// `Inf`, `-Inf`, `NaN`, or a decimal number with optional sign, fraction and exponent
/// (`10`, `-0.5`, `1e+06`, `1.5e-07`).
pub fn is_r_literal(v: &str) -> bool {
    if matches!(v, "TRUE" | "FALSE" | "NA" | "Inf" | "-Inf" | "NaN") {
        return true;
    }
    let b = v.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(|c| c.is_ascii_digit()) {
            *i += 1;
        }
        *i - start
    };
    let mut n = digits(&mut i);
    if b.get(i) == Some(&b'.') {
        i += 1;
        n += digits(&mut i);
    }
    if n == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// One daemon argument written into launch commands as `,name=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonArg {
    name: String,
    value: String,
}

impl DaemonArg {
    /// An argument `name` (any non-empty text; back-quoted when not syntactic) with `value`, an
    /// R logical or numeric literal as `as.character` writes it (see [`is_r_literal`]).
    pub fn new(
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<DaemonArg, LaunchError> {
        let (name, value) = (name.into(), value.into());
        if name.is_empty() {
            return Err(LaunchError::EmptyName);
        }
        if !is_r_literal(&value) {
            return Err(LaunchError::BadValue { name, value });
        }
        Ok(DaemonArg { name, value })
    }

    /// The argument's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its value (an R literal).
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// The arguments as the daemon call writes them: `,name=value` for each, in order (empty for
/// none). This is also the form a profile stores (`nextget("dots")`); [`parse_args`] reads it.
pub fn render_args(args: &[DaemonArg]) -> Result<String, LaunchError> {
    let mut out = String::new();
    for a in args {
        out.push(',');
        out.push_str(&r_name(&a.name)?);
        out.push('=');
        out.push_str(&a.value);
    }
    Ok(out)
}

/// Reads back what [`render_args`] wrote. Anything else is an error, so text that did not come
/// from the renderer can never reach a launch command.
pub fn parse_args(text: &str) -> Result<Vec<DaemonArg>, LaunchError> {
    let bad = || LaunchError::BadArgs(text.to_string());
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        rest = rest.strip_prefix(',').ok_or_else(bad)?;
        let name;
        if let Some(q) = rest.strip_prefix('`') {
            let mut n = String::new();
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, e @ ('\\' | '`'))) => n.push(e),
                        _ => return Err(bad()),
                    },
                    '`' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => n.push(c),
                }
            }
            let end = end.ok_or_else(bad)?;
            if is_syntactic(&n) {
                return Err(bad());
            }
            name = n;
            rest = &q[end..];
        } else {
            let end = rest.find('=').ok_or_else(bad)?;
            name = rest[..end].to_string();
            if !is_syntactic(&name) {
                return Err(bad());
            }
            rest = &rest[end..];
        }
        rest = rest.strip_prefix('=').ok_or_else(bad)?;
        let end = rest.find(',').unwrap_or(rest.len());
        out.push(DaemonArg::new(name, &rest[..end]).map_err(|_| bad())?);
        rest = &rest[end..];
    }
    Ok(out)
}

/// The R call a daemon runs: `mirai::daemon("<url>"[,dispatcher=FALSE]<args>[,tlscert=...][,rs=c(...)])`
/// (spec §3.12 grammar: no spaces, optional parts only when present).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonCall {
    /// The URL the daemon dials.
    pub url: String,
    /// `false` writes `dispatcher=FALSE` (a direct-mode profile).
    pub dispatcher: bool,
    /// Further daemon arguments, in order.
    pub args: Vec<DaemonArg>,
    /// TLS material: none; one element (`tlscert="<path or PEM>"`); or two,
    /// `tlscert=c("<CA PEM>","<client identity PEM or empty>")`.
    pub tlscert: Vec<String>,
    /// The daemon's RNG stream: `None` writes nothing; `Some(empty)` writes `rs=c()` (a seeded
    /// direct profile); `Some(7 integers)` writes them.
    pub rs: Option<Vec<i32>>,
}

impl DaemonCall {
    /// A dispatcher-mode call dialing `url`, with nothing else.
    pub fn new(url: impl Into<String>) -> DaemonCall {
        DaemonCall {
            url: url.into(),
            dispatcher: true,
            args: Vec::new(),
            tlscert: Vec::new(),
            rs: None,
        }
    }

    /// The call's text.
    pub fn render(&self) -> Result<String, LaunchError> {
        let mut out = format!("mirai::daemon({}", r_string(&self.url)?);
        if !self.dispatcher {
            out.push_str(",dispatcher=FALSE");
        }
        out.push_str(&render_args(&self.args)?);
        match self.tlscert.as_slice() {
            [] => {}
            [one] => out.push_str(&format!(",tlscert={}", r_string(one)?)),
            [a, b] => out.push_str(&format!(",tlscert=c({},{})", r_string(a)?, r_string(b)?)),
            more => return Err(LaunchError::TlsCert(more.len())),
        }
        if let Some(rs) = &self.rs {
            if !rs.is_empty() && rs.len() != 7 {
                return Err(LaunchError::Stream(rs.len()));
            }
            let ints: Vec<String> = rs.iter().map(|i| i.to_string()).collect();
            out.push_str(&format!(",rs=c({})", ints.join(",")));
        }
        out.push(')');
        Ok(out)
    }
}

/// The shell command that runs `call`: `<rscript> -e '<call>'`. `rscript` is shell text (a
/// path, with any flags or leading `VAR=value` assignments); the call is one quoted word.
pub fn shell_command(rscript: &str, call: &str) -> String {
    format!("{rscript} -e {}", shell_quote(call))
}

/// JSON string contents for `s` (without the surrounding quotes): `\`, `"` and control
/// characters escaped, so a daemon call can go into a JSON request body (`http_config`).
pub fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// How a daemon's shell command reaches the machine where it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deploy {
    /// `remote_config()` and `ssh_config()`: `command` followed by `args`, joined by spaces and
    /// run by `/bin/sh`; each `"."` in `args` becomes the daemon command, shell-quoted once more
    /// when `quote` (it then goes through a second shell, as with `ssh`).
    Args {
        /// The program, as shell text.
        command: String,
        /// Its arguments, as shell text, with at least one `"."`.
        args: Vec<String>,
        /// Quote the daemon command where it replaces `"."`.
        quote: bool,
        /// `ssh_config(tunnel = TRUE)`: prepend `-R <p>:127.0.0.1:<p> ` to the first argument,
        /// so that the daemon's dial of `127.0.0.1:<p>` on the remote side reaches the host.
        tunnel_port: Option<u16>,
    },
    /// `cluster_config()`: the script `prefix + <command> + suffix` run by `/bin/sh`; for a
    /// scheduler that is `sbatch<<'EOF'\n#!/bin/sh\n<options>\n` + command + `\nEOF`, which
    /// submits a job script through a quoted here-document. If a line of the job script equals
    /// the delimiter (`EOF`), a delimiter that no line equals is used instead, so the script
    /// always reaches the scheduler whole.
    Script {
        /// Shell text before the command.
        prefix: String,
        /// Shell text after it.
        suffix: String,
    },
}

impl Deploy {
    /// The process to start to deploy a daemon running `daemon_command` (from
    /// [`shell_command`]): `/bin/sh -c <line>`.
    pub fn command(&self, daemon_command: &str) -> Result<Command, LaunchError> {
        Ok(Command::new("/bin/sh")
            .arg("-c")
            .arg(self.line(daemon_command)?))
    }

    /// The shell line that [`Deploy::command`] runs.
    pub fn line(&self, daemon_command: &str) -> Result<String, LaunchError> {
        match self {
            Deploy::Args {
                command,
                args,
                quote,
                tunnel_port,
            } => {
                if !args.iter().any(|a| a == ".") {
                    return Err(LaunchError::NoPlaceholder);
                }
                let placed = if *quote {
                    shell_quote(daemon_command)
                } else {
                    daemon_command.to_string()
                };
                let mut words = vec![command.clone()];
                for (i, a) in args.iter().enumerate() {
                    let mut a = if a == "." { placed.clone() } else { a.clone() };
                    if i == 0 {
                        if let Some(p) = tunnel_port {
                            a = format!("-R {p}:127.0.0.1:{p} {a}");
                        }
                    }
                    words.push(a);
                }
                Ok(words.join(" "))
            }
            Deploy::Script { prefix, suffix } => {
                let (prefix, suffix) = heredoc_safe(prefix, daemon_command, suffix);
                Ok(format!("{prefix}{daemon_command}{suffix}"))
            }
        }
    }
}

/// If `prefix` opens a quoted here-document (`...<<'D'\n`) that `suffix` closes (`\nD`), and a
/// line of the document's body equals `D`, renames the delimiter to one that no line equals.
fn heredoc_safe(prefix: &str, command: &str, suffix: &str) -> (String, String) {
    let unchanged = || (prefix.to_string(), suffix.to_string());
    let Some(nl) = prefix.find('\n') else {
        return unchanged();
    };
    let (first, body_start) = (&prefix[..nl], &prefix[nl + 1..]);
    let Some(open) = first.find("<<'") else {
        return unchanged();
    };
    let after = &first[open + 3..];
    let Some(close) = after.find('\'') else {
        return unchanged();
    };
    let delim = &after[..close];
    if delim.is_empty() || !after[close + 1..].trim().is_empty() {
        return unchanged();
    }
    let Some(tail) = suffix
        .strip_prefix('\n')
        .and_then(|s| s.strip_prefix(delim))
    else {
        return unchanged();
    };
    if !tail.chars().all(|c| c == '\n') {
        return unchanged();
    }
    let body = format!("{body_start}{command}");
    let clash = |d: &str| body.split('\n').any(|l| l == d);
    if !clash(delim) {
        return unchanged();
    }
    let mut k = 0u32;
    let fresh = loop {
        let d = if k == 0 {
            format!("{delim}_MIRAI")
        } else {
            format!("{delim}_MIRAI{k}")
        };
        if !clash(&d) {
            break d;
        }
        k += 1;
    };
    (
        format!(
            "{}<<'{fresh}'{}\n{body_start}",
            &first[..open],
            &after[close + 1..]
        ),
        format!("\n{fresh}{tail}"),
    )
}

/// `cluster_config()`'s script prefix for `submit` (e.g. `sbatch`, `qsub`, `bsub`) and the
/// scheduler `options`: `<submit><<'EOF'\n#!/bin/sh\n<options>\n`, spaces and tabs at the start
/// of every options line removed. The suffix is [`CLUSTER_SUFFIX`].
pub fn cluster_prefix(submit: &str, options: &str) -> String {
    let options: Vec<&str> = options
        .split('\n')
        .map(|l| l.trim_start_matches([' ', '\t']))
        .collect();
    format!("{submit}<<'EOF'\n#!/bin/sh\n{}\n", options.join("\n"))
}

/// What follows the command in a `cluster_config()` script: the here-document's end.
pub const CLUSTER_SUFFIX: &str = "\nEOF";

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Stdio;

    /// Runs `line` with `/bin/sh -c` and returns its standard output.
    fn sh(line: &str) -> Vec<u8> {
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(line)
            .stdin(Stdio::null())
            .output()
            .expect("run /bin/sh");
        assert!(
            out.status.success(),
            "sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// A fake `Rscript` that prints each of its arguments followed by a NUL byte.
    const PRINT_ARGS: &str = "printf '%s\\0'";

    fn nul_split(out: &[u8]) -> Vec<String> {
        let mut v: Vec<String> = out
            .split(|b| *b == 0)
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        assert_eq!(v.pop().as_deref(), Some(""), "output must end with NUL");
        v
    }

    const HOSTILE: &[&str] = &[
        "plain",
        "it's",
        "'",
        "''",
        "a b  c",
        "$(touch /tmp/mirai-remote-pwned)",
        "`touch /tmp/mirai-remote-pwned`",
        "\"double\" \\back\\slash\\",
        "line1\nline2\n",
        "\nEOF\n",
        "tab\there; rm -rf /nonexistent & echo x | cat > /dev/null",
        "$HOME ${PATH} !! * ? [a] ~ # %s %d",
        "",
        "ünïcödé ✓",
    ];

    #[test]
    fn shell_quote_round_trips_through_sh() {
        for s in HOSTILE {
            let out = sh(&format!("{PRINT_ARGS} {}", shell_quote(s)));
            assert_eq!(nul_split(&out), vec![s.to_string()], "input {s:?}");
        }
        // Twice quoted, through two shells (as ssh does).
        for s in HOSTILE {
            let inner = format!("{PRINT_ARGS} {}", shell_quote(s));
            let out = sh(&format!("sh -c {}", shell_quote(&inner)));
            assert_eq!(nul_split(&out), vec![s.to_string()], "input {s:?}");
        }
        assert!(!std::path::Path::new("/tmp/mirai-remote-pwned").exists());
    }

    #[test]
    fn r_string_escapes_only_what_r_needs() {
        assert_eq!(r_string("tcp://h:1").unwrap(), "\"tcp://h:1\"");
        assert_eq!(r_string("a\"b\\c").unwrap(), "\"a\\\"b\\\\c\"");
        assert_eq!(
            r_string("-----BEGIN-----\nA\n").unwrap(),
            "\"-----BEGIN-----\nA\n\""
        );
        assert_eq!(r_string("x\ry\u{1}").unwrap(), "\"x\\x0dy\\x01\"");
        assert_eq!(r_string("a'b").unwrap(), "\"a'b\"");
        assert!(matches!(r_string("a\0b"), Err(LaunchError::Nul { .. })));
    }

    #[test]
    fn names_are_syntactic_or_backquoted() {
        for ok in ["maxtasks", "idletime", ".x", "a.b_c1", "x_"] {
            assert!(is_syntactic(ok), "{ok}");
            assert_eq!(r_name(ok).unwrap(), ok);
        }
        for bad in [
            "1a",
            ".1",
            "_a",
            "a b",
            "if",
            "TRUE",
            "...",
            "..1",
            "a-b",
            "a);system('x');b",
            "é",
        ] {
            assert!(!is_syntactic(bad), "{bad}");
        }
        assert_eq!(r_name("a);system('x');b").unwrap(), "`a);system('x');b`");
        assert_eq!(r_name("a`b\\c").unwrap(), "`a\\`b\\\\c`");
        assert_eq!(r_name(""), Err(LaunchError::EmptyName));
    }

    #[test]
    fn values_must_be_r_literals() {
        for ok in [
            "10", "-3", "0.5", ".5", "5.", "1e+06", "1.5e-07", "2E5", "TRUE", "FALSE", "NA", "Inf",
            "-Inf", "NaN",
        ] {
            assert!(is_r_literal(ok), "{ok}");
        }
        for bad in [
            "", "-", "e5", "1e", "1e+", "T", "true", "1,2", "1;2", "$(x)", "1 ", " 1", "0x10",
            "--1", "1..2",
        ] {
            assert!(!is_r_literal(bad), "{bad}");
        }
        assert_eq!(
            DaemonArg::new("maxtasks", "10); system('x'"),
            Err(LaunchError::BadValue {
                name: "maxtasks".into(),
                value: "10); system('x'".into()
            })
        );
    }

    #[test]
    fn args_render_and_parse_back() {
        let args = vec![
            DaemonArg::new("maxtasks", "10").unwrap(),
            DaemonArg::new("cleanup", "FALSE").unwrap(),
            DaemonArg::new("walltime", "1e+06").unwrap(),
            DaemonArg::new("odd, name=1", "NA").unwrap(),
            DaemonArg::new("tick`\\", "-Inf").unwrap(),
        ];
        let text = render_args(&args).unwrap();
        assert_eq!(
            text,
            ",maxtasks=10,cleanup=FALSE,walltime=1e+06,`odd, name=1`=NA,`tick\\`\\\\`=-Inf"
        );
        assert_eq!(parse_args(&text).unwrap(), args);
        assert_eq!(parse_args("").unwrap(), vec![]);
        for bad in [
            "maxtasks=1",
            ",maxtasks",
            ",maxtasks=x",
            ",a b=1",
            ",`ab`=1",
            ",`a=1",
            ",x=1,",
            ",if=1",
        ] {
            assert!(
                matches!(parse_args(bad), Err(LaunchError::BadArgs(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn calls_follow_the_grammar() {
        let mut c = DaemonCall::new("tcp://10.0.0.5:5555");
        assert_eq!(
            c.render().unwrap(),
            "mirai::daemon(\"tcp://10.0.0.5:5555\")"
        );
        c.dispatcher = false;
        c.args = parse_args(",cleanup=FALSE").unwrap();
        c.rs = Some(vec![10407, 1, -2, 3, 4, 5, 6]);
        assert_eq!(
            c.render().unwrap(),
            "mirai::daemon(\"tcp://10.0.0.5:5555\",dispatcher=FALSE,cleanup=FALSE,rs=c(10407,1,-2,3,4,5,6))"
        );
        c.rs = Some(vec![]);
        c.tlscert = vec!["/etc/ca.pem".into()];
        assert_eq!(
            c.render().unwrap(),
            "mirai::daemon(\"tcp://10.0.0.5:5555\",dispatcher=FALSE,cleanup=FALSE,tlscert=\"/etc/ca.pem\",rs=c())"
        );
        c.tlscert = vec![
            "-----BEGIN CERTIFICATE-----\nAB\n-----END CERTIFICATE-----\n".into(),
            String::new(),
        ];
        c.rs = None;
        c.dispatcher = true;
        c.args.clear();
        assert_eq!(
            c.render().unwrap(),
            "mirai::daemon(\"tcp://10.0.0.5:5555\",tlscert=c(\"-----BEGIN CERTIFICATE-----\nAB\n-----END CERTIFICATE-----\n\",\"\"))"
        );
        c.tlscert = vec!["a".into(), "b".into(), "c".into()];
        assert_eq!(c.render(), Err(LaunchError::TlsCert(3)));
        c.tlscert.clear();
        c.rs = Some(vec![1, 2]);
        assert_eq!(c.render(), Err(LaunchError::Stream(2)));
    }

    /// A hostile call: every string part carries quotes, `$()`, backquotes and newlines.
    fn hostile_call() -> String {
        let mut c =
            DaemonCall::new("ipc:///tmp/it's a \"dir\"/$(touch /tmp/mirai-remote-pwned)\n`x`");
        c.dispatcher = false;
        c.args = vec![DaemonArg::new("a'); q('no'); x=('", "1").unwrap()];
        c.tlscert = vec![
            "/path with spaces/it's $(x).pem\nEOF\n".into(),
            "'\\\"".into(),
        ];
        c.rs = Some(vec![1, 2, 3, 4, 5, 6, 7]);
        c.render().unwrap()
    }

    #[test]
    fn commands_deliver_the_call_intact_through_each_deployment() {
        let call = hostile_call();
        let cmd = shell_command(PRINT_ARGS, &call);
        // Run directly by a shell (what the scheduler's job does with its script line).
        assert_eq!(nul_split(&sh(&cmd)), vec!["-e".to_string(), call.clone()]);
        // remote_config(quote = FALSE): spliced into the line as is.
        let d = Deploy::Args {
            command: "exec".into(),
            args: vec![".".into()],
            quote: false,
            tunnel_port: None,
        };
        assert_eq!(
            nul_split(&sh(&d.line(&cmd).unwrap())),
            vec!["-e".to_string(), call.clone()]
        );
        // ssh-like: quoted once more, then run by a second shell.
        let d = Deploy::Args {
            command: "sh".into(),
            args: vec!["-c".into(), ".".into()],
            quote: true,
            tunnel_port: None,
        };
        let c = d.command(&cmd).unwrap();
        assert_eq!(c.program, std::path::PathBuf::from("/bin/sh"));
        assert_eq!(c.args[0], "-c");
        assert_eq!(
            nul_split(&sh(&c.args[1])),
            vec!["-e".to_string(), call.clone()]
        );
        // cluster_config: a job script through a here-document, with hostile options.
        let options =
            "  #SBATCH --job-name='a b' $(touch /tmp/mirai-remote-pwned)\n\tEOF\nexport X=\"$(printf ok)\"";
        let d = Deploy::Script {
            prefix: cluster_prefix("sh", options),
            suffix: CLUSTER_SUFFIX.into(),
        };
        let line = d.line(&format!("printf '%s\\0' \"$X\"; {cmd}")).unwrap();
        assert!(line.starts_with(
            "sh<<'EOF_MIRAI'\n#!/bin/sh\n#SBATCH --job-name='a b' $(touch /tmp/mirai-remote-pwned)\nEOF\n"
        ));
        assert!(line.ends_with("\nEOF_MIRAI"));
        assert_eq!(
            nul_split(&sh(&line)),
            vec!["ok".to_string(), "-e".to_string(), call.clone()]
        );
        assert!(!std::path::Path::new("/tmp/mirai-remote-pwned").exists());
    }

    #[test]
    fn ssh_and_tunnel_lines() {
        let d = Deploy::Args {
            command: "ssh".into(),
            args: vec![
                "-o ConnectTimeout=10 -fTp 2222".into(),
                "user@h".into(),
                ".".into(),
            ],
            quote: true,
            tunnel_port: Some(5555),
        };
        let cmd = shell_command("Rscript", "mirai::daemon(\"tcp://127.0.0.1:5555\")");
        assert_eq!(
            d.line(&cmd).unwrap(),
            "ssh -R 5555:127.0.0.1:5555 -o ConnectTimeout=10 -fTp 2222 user@h 'Rscript -e '\\''mirai::daemon(\"tcp://127.0.0.1:5555\")'\\'''"
        );
        let d = Deploy::Args {
            command: "ssh".into(),
            args: vec!["x".into()],
            quote: true,
            tunnel_port: None,
        };
        assert_eq!(d.line(&cmd), Err(LaunchError::NoPlaceholder));
    }

    #[test]
    fn cluster_scripts_keep_the_spec_shape() {
        let p = cluster_prefix(
            "sbatch",
            "  #SBATCH --job-name=mirai\n\t#SBATCH --mem=16G\n module load R/4.5.0",
        );
        assert_eq!(
            p,
            "sbatch<<'EOF'\n#!/bin/sh\n#SBATCH --job-name=mirai\n#SBATCH --mem=16G\nmodule load R/4.5.0\n"
        );
        let d = Deploy::Script {
            prefix: p,
            suffix: CLUSTER_SUFFIX.into(),
        };
        let cmd = shell_command("Rscript", "mirai::daemon(\"tcp://10.0.0.5:5555\")");
        assert_eq!(
            d.line(&cmd).unwrap(),
            "sbatch<<'EOF'\n#!/bin/sh\n#SBATCH --job-name=mirai\n#SBATCH --mem=16G\nmodule load R/4.5.0\nRscript -e 'mirai::daemon(\"tcp://10.0.0.5:5555\")'\nEOF"
        );
        assert_eq!(cluster_prefix("qsub", ""), "qsub<<'EOF'\n#!/bin/sh\n\n");
        // A delimiter clash picks a fresh one that no line equals.
        let (p, s) = heredoc_safe("x<<'EOF'\nEOF\nEOF_MIRAI\n", "cmd", "\nEOF");
        assert_eq!(
            (p.as_str(), s.as_str()),
            ("x<<'EOF_MIRAI1'\nEOF\nEOF_MIRAI\n", "\nEOF_MIRAI1")
        );
        // Not a here-document: left alone.
        assert_eq!(
            heredoc_safe("a\nEOF\n", "c", "\nEOF"),
            ("a\nEOF\n".into(), "\nEOF".into())
        );
    }

    #[test]
    fn json_escape_makes_valid_json_strings() {
        assert_eq!(
            json_escape("mirai::daemon(\"u\")"),
            "mirai::daemon(\\\"u\\\")"
        );
        assert_eq!(json_escape("a\\b\nc\r\t\u{1}"), "a\\\\b\\nc\\r\\t\\u0001");
    }
}
