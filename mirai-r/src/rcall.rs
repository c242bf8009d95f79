//! The R call a remote daemon runs, `mirai::daemon(...)`, rendered from its parts (R API spec
//! §3.12): strings are R string literals ([`r_string`]), argument names are syntactic or
//! back-quoted ([`r_name`]), and argument values must be R logical or numeric literals
//! ([`DaemonArg::new`]), so no URL, certificate or argument name can break out of its place in
//! the call. The shell layers around it (`<rscript> -e '<call>'`, ssh, job scripts) are the
//! engine's (`mirai::host::remote`).

/// Why a daemon call could not be rendered. Each message names the offending input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum RCallError {
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
    /// An R string that cannot be written as an R literal (it holds a NUL byte).
    #[error("{what} contains a NUL character")]
    Nul {
        /// Which input.
        what: &'static str,
    },
}

/// `s` as an R string literal in double quotes. Backslash and `"` are escaped; newlines stay
/// real newlines (a PEM certificate is embedded as the multi-line text it is); other control
/// characters are written as `\xHH` escapes.
pub(crate) fn r_string(s: &str) -> Result<String, RCallError> {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\0' => {
                return Err(RCallError::Nul {
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
pub(crate) fn is_syntactic(name: &str) -> bool {
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
pub(crate) fn r_name(name: &str) -> Result<String, RCallError> {
    if name.is_empty() {
        return Err(RCallError::EmptyName);
    }
    if is_syntactic(name) {
        return Ok(name.to_string());
    }
    let mut out = String::from("`");
    for c in name.chars() {
        match c {
            '\0' => {
                return Err(RCallError::Nul {
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
pub(crate) fn is_r_literal(v: &str) -> bool {
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
pub(crate) struct DaemonArg {
    name: String,
    value: String,
}

impl DaemonArg {
    /// An argument `name` (any non-empty text; back-quoted when not syntactic) with `value`, an
    /// R logical or numeric literal as `as.character` writes it (see [`is_r_literal`]).
    pub(crate) fn new(
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<DaemonArg, RCallError> {
        let (name, value) = (name.into(), value.into());
        if name.is_empty() {
            return Err(RCallError::EmptyName);
        }
        if !is_r_literal(&value) {
            return Err(RCallError::BadValue { name, value });
        }
        Ok(DaemonArg { name, value })
    }
}

/// The arguments as the daemon call writes them: `,name=value` for each, in order (empty for
/// none). This is also the form a profile stores (`nextget("dots")`); [`parse_args`] reads it.
pub(crate) fn render_args(args: &[DaemonArg]) -> Result<String, RCallError> {
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
pub(crate) fn parse_args(text: &str) -> Result<Vec<DaemonArg>, RCallError> {
    let bad = || RCallError::BadArgs(text.to_string());
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
pub(crate) struct DaemonCall {
    /// The URL the daemon dials.
    pub(crate) url: String,
    /// `false` writes `dispatcher=FALSE` (a direct-mode profile).
    pub(crate) dispatcher: bool,
    /// Further daemon arguments, in order.
    pub(crate) args: Vec<DaemonArg>,
    /// TLS material: none; one element (`tlscert="<path or PEM>"`); or two,
    /// `tlscert=c("<CA PEM>","<client identity PEM or empty>")`.
    pub(crate) tlscert: Vec<String>,
    /// The daemon's RNG stream: `None` writes nothing; `Some(empty)` writes `rs=c()` (a seeded
    /// direct profile); `Some(7 integers)` writes them.
    pub(crate) rs: Option<Vec<i32>>,
}

impl DaemonCall {
    /// A dispatcher-mode call dialing `url`, with nothing else.
    pub(crate) fn new(url: impl Into<String>) -> DaemonCall {
        DaemonCall {
            url: url.into(),
            dispatcher: true,
            args: Vec::new(),
            tlscert: Vec::new(),
            rs: None,
        }
    }

    /// The call's text.
    pub(crate) fn render(&self) -> Result<String, RCallError> {
        let mut out = format!("mirai::daemon({}", r_string(&self.url)?);
        if !self.dispatcher {
            out.push_str(",dispatcher=FALSE");
        }
        out.push_str(&render_args(&self.args)?);
        match self.tlscert.as_slice() {
            [] => {}
            [one] => out.push_str(&format!(",tlscert={}", r_string(one)?)),
            [a, b] => out.push_str(&format!(",tlscert=c({},{})", r_string(a)?, r_string(b)?)),
            more => return Err(RCallError::TlsCert(more.len())),
        }
        if let Some(rs) = &self.rs {
            if !rs.is_empty() && rs.len() != 7 {
                return Err(RCallError::Stream(rs.len()));
            }
            let ints: Vec<String> = rs.iter().map(|i| i.to_string()).collect();
            out.push_str(&format!(",rs=c({})", ints.join(",")));
        }
        out.push(')');
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mirai::host::remote::{shell_command, Deploy};
    use mirai_host::test_support::{nul_split, sh, PRINT_ARGS};

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
        assert!(matches!(r_string("a\0b"), Err(RCallError::Nul { .. })));
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
        assert_eq!(r_name(""), Err(RCallError::EmptyName));
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
            Err(RCallError::BadValue {
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
                matches!(parse_args(bad), Err(RCallError::BadArgs(_))),
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
        assert_eq!(c.render(), Err(RCallError::TlsCert(3)));
        c.tlscert.clear();
        c.rs = Some(vec![1, 2]);
        assert_eq!(c.render(), Err(RCallError::Stream(2)));
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
            // What cluster_config() builds in R from `command` and these options: each line
            // stripped of leading blanks, after a quoted here-document opener.
            prefix: format!(
                "sh<<'EOF'\n#!/bin/sh\n{}\n",
                options
                    .split('\n')
                    .map(|l| l.trim_start_matches([' ', '\t']))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
            suffix: "\nEOF".into(),
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
}
