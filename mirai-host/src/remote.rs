//! Launch commands for daemons that run elsewhere: the shell command that runs a daemon's
//! call (`<rscript> -e '<call>'`), and the command line that deploys it through `ssh`, an HPC
//! scheduler's submit command or any other shell command (R API spec §3.12). The call itself
//! is rendered by the R bridge; here it is opaque text.
//!
//! Every piece is quoted for each shell layer it passes through, so the call cannot break out of
//! its place:
//! - the call is one single-quoted shell word ([`shell_quote`]) after `<rscript> -e`;
//! - where the command replaces `"."` in a deployment's arguments it is quoted once more if it
//!   goes through a second shell (`ssh` runs it with the remote user's shell);
//! - a scheduler job script is fed through a quoted here-document whose delimiter is changed if
//!   a line of the script happens to equal it ([`Deploy::Script`]).
//!
//! What stays raw, because it *is* shell text by contract: `rscript` (it may carry flags or
//! `VAR=value` assignments, e.g. `R_LIBS=/opt/lib Rscript`), a deployment's `command` and
//! `args`, and a scheduler's script lines (such as `#SBATCH --mem=1G` or `module load R`).
//! Shells are assumed POSIX (`sh`, `bash`, `dash`, `zsh`).
//!
//! This module only builds text and [`Command`]s; starting them is [`crate::Host::launch`]'s job.
//!
//! ```
//! use mirai_host::remote::{Deploy, shell_command};
//! let call = r#"mirai::daemon("tcp://10.0.0.5:5555",maxtasks=10)"#;
//! let cmd = shell_command("Rscript", call);
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

/// Why a launch command could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LaunchError {
    /// Deployment arguments without the `"."` placeholder for the daemon command.
    #[error("the deployment's arguments have no \".\" placeholder for the daemon command")]
    NoPlaceholder,
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

/// The shell command that runs `call`: `<rscript> -e '<call>'`. `rscript` is shell text (a
/// path, with any flags or leading `VAR=value` assignments); the call is one quoted word.
pub fn shell_command(rscript: &str, call: &str) -> String {
    format!("{rscript} -e {}", shell_quote(call))
}

/// JSON string contents for `s` (without the surrounding quotes): `\`, `"` and control
/// characters escaped, so a daemon call can go into a JSON request body.
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
    /// A generic or `ssh` deployment: `command` followed by `args`, joined by spaces and
    /// run by `/bin/sh`; each `"."` in `args` becomes the daemon command, shell-quoted once more
    /// when `quote` (it then goes through a second shell, as with `ssh`).
    Args {
        /// The program, as shell text.
        command: String,
        /// Its arguments, as shell text, with at least one `"."`.
        args: Vec<String>,
        /// Quote the daemon command where it replaces `"."`.
        quote: bool,
        /// An `ssh` tunnel: prepend `-R <p>:127.0.0.1:<p> ` to the first argument,
        /// so that the daemon's dial of `127.0.0.1:<p>` on the remote side reaches the host.
        tunnel_port: Option<u16>,
    },
    /// A job script: the script `prefix + <command> + suffix` run by `/bin/sh`; for a
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{nul_split, sh, PRINT_ARGS};

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
        // A job-script prefix for `sbatch` with its options.
        let p = "sbatch<<'EOF'\n#!/bin/sh\n#SBATCH --job-name=mirai\n#SBATCH --mem=16G\nmodule load R/4.5.0\n".to_string();
        let d = Deploy::Script {
            prefix: p,
            suffix: "\nEOF".into(),
        };
        let cmd = shell_command("Rscript", "mirai::daemon(\"tcp://10.0.0.5:5555\")");
        assert_eq!(
            d.line(&cmd).unwrap(),
            "sbatch<<'EOF'\n#!/bin/sh\n#SBATCH --job-name=mirai\n#SBATCH --mem=16G\nmodule load R/4.5.0\nRscript -e 'mirai::daemon(\"tcp://10.0.0.5:5555\")'\nEOF"
        );
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
