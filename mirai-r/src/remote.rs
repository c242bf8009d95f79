//! Launch commands and zero-config mutual TLS for remote daemons (spec §2.6, §3.11, §3.12), and
//! the engine's log output.
//!
//! The daemon's R call is rendered by `crate::rcall`, and the shell layers around it by
//! `mirai_host::remote`, which quotes every part for the shell it passes through; these
//! routines convert R values (docs/r-bridge.md, "Launching").

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

use mirai::host::remote::{self, Deploy};
use mirai::transport::tls::zero_config;
use mirai_rapi::{args, RError, RResult, Scope, Sexp};

use crate::rcall::{self, DaemonArg, DaemonCall};

fn launch_err(e: remote::LaunchError) -> RError {
    match e {
        // In the words of the R argument that lacks it.
        remote::LaunchError::NoPlaceholder => RError::Msg(
            "`.` must be an element of the character vector(s) supplied to `args`".to_owned(),
        ),
        other => RError::Msg(other.to_string()),
    }
}

fn call_err(e: rcall::RCallError) -> RError {
    RError::Msg(e.to_string())
}

/// The element of list `x` named `name`, or `NULL`.
fn list_get<'a>(x: Sexp<'a>, name: &str) -> Sexp<'a> {
    x.get(name).unwrap_or(Sexp::null())
}

/// `.Call(mirai_daemon_args, names, values)` → chr1: the daemon arguments `,name=value` in
/// order, as stored in a profile (`nextget("dots")`). `values` are `as.character()` of logical
/// or numeric values; names that are not syntactic are back-quoted.
pub(crate) fn mirai_daemon_args<'a>(
    s: &'a Scope,
    names: Sexp<'a>,
    values: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let names = args::strings(names, "names")?;
    let values = args::strings(values, "values")?;
    if names.len() != values.len() {
        return Err("`names` and `values` must have the same length".into());
    }
    let daemon_args = names
        .into_iter()
        .zip(values)
        .map(|(n, v)| DaemonArg::new(n, v))
        .collect::<Result<Vec<_>, _>>()
        .map_err(call_err)?;
    Ok(s.string(&rcall::render_args(&daemon_args).map_err(call_err)?))
}

/// `.Call(mirai_launch_command, spec, rscript, deploy)` → chr4
/// `c(command, call, json_call, line)`:
/// - `spec` = `list(url = chr1, dispatcher = lgl1, dots = chr1 (as from mirai_daemon_args),
///   tlscert = NULL or chr (1 or 2), rs = NULL or int (0 or 7))`;
/// - `command` is `<rscript> -e '<call>'`, `call` the bare `mirai::daemon(...)` call and
///   `json_call` the call escaped for a JSON string;
/// - `deploy` is `NULL` (`line` is then `NA`) or `list(command = chr1, args = chr, quote = lgl1
///   or NULL, tunnel = NULL or port)`: with `quote` `NULL` the line is the script `args[1]` +
///   command + `args[3]` (cluster_config; `command` is ignored), else `command` and `args`
///   joined by spaces, each `"."` replaced by the command (quoted if `quote`).
pub(crate) fn mirai_launch_command<'a>(
    s: &'a Scope,
    spec: Sexp<'a>,
    rscript: Sexp<'a>,
    deploy: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let mut call = DaemonCall::new(args::string(list_get(spec, "url"), "spec$url")?);
    call.dispatcher = args::lgl(list_get(spec, "dispatcher"), "spec$dispatcher")?.unwrap_or(true);
    let dots = list_get(spec, "dots");
    if !dots.is_null() {
        call.args = rcall::parse_args(&args::string(dots, "spec$dots")?).map_err(call_err)?;
    }
    call.tlscert = args::strings(list_get(spec, "tlscert"), "spec$tlscert")?;
    call.rs = args::ints(list_get(spec, "rs"), "spec$rs")?;
    let text = call.render().map_err(call_err)?;
    let command = remote::shell_command(&args::string(rscript, "rscript")?, &text);
    let line = if deploy.is_null() {
        None
    } else {
        let dargs = args::strings(list_get(deploy, "args"), "remote$args")?;
        let quote = list_get(deploy, "quote");
        let d = if quote.is_null() {
            if dargs.len() != 3 || dargs[1] != "." {
                return Err(
                    "a cluster launch needs `args` = c(<script before>, \".\", <script after>)"
                        .into(),
                );
            }
            Deploy::Script {
                prefix: dargs[0].clone(),
                suffix: dargs[2].clone(),
            }
        } else {
            let tunnel = list_get(deploy, "tunnel");
            let tunnel_port = if tunnel.is_null() {
                None
            } else {
                let p = args::num(tunnel, "tunnel")?;
                if !(p.is_finite() && p.fract() == 0.0 && (0.0..=65535.0).contains(&p)) {
                    return Err(format!("cannot tunnel to port {p}").into());
                }
                Some(p as u16)
            };
            Deploy::Args {
                command: args::string(list_get(deploy, "command"), "remote$command")?,
                args: dargs,
                quote: args::lgl(quote, "remote$quote")?.unwrap_or(false),
                tunnel_port,
            }
        };
        Some(d.line(&command).map_err(launch_err)?)
    };
    let json = remote::json_escape(&text);
    Ok(s.strings_from(&[Some(&command), Some(&text), Some(&json), line.as_deref()]))
}

/// `.Call(mirai_tls_zero_config, cn)` → chr4 `c(server_cert, server_key, ca_cert,
/// client_identity)`: single-use credentials for a host reached as `cn`, with mutual
/// authentication. The host listens with `attr(url, "tls") = list(cert = c(server_cert,
/// server_key), client_ca = ca_cert)`; daemons get `tlscert = c(ca_cert, client_identity)`
/// (the identity is the client certificate followed by its key).
pub(crate) fn mirai_tls_zero_config<'a>(s: &'a Scope, cn: Sexp<'a>) -> RResult<Sexp<'a>> {
    let cn = args::string(cn, "cn")?;
    let z = zero_config(&cn).map_err(|e| RError::Msg(e.to_string()))?;
    let identity = z.client_identity_pem();
    Ok(s.strings_from(&[
        Some(&z.server_cert),
        Some(&z.server_key),
        Some(&z.ca_cert),
        Some(&identity),
    ]))
}

/// Writes the engine's log records to standard error (any thread may log: this never calls R).
///
/// What is shown is set by the R option `mirai.log`, passed down when a host starts or a daemon
/// runs ([`set_log_level`]): `off`, `error`, `warn`, `info`, `debug` or `trace`, for every mirai
/// crate. Unset, only the transport's warnings are shown: refused TLS peers (with the reason),
/// failed accepts.
struct StderrLog {
    /// Level for every `mirai*` target: [`NO_LEVEL`] for the default, else a `LevelFilter` as
    /// `usize`.
    all: AtomicUsize,
}

/// [`StderrLog::all`] when `mirai.log` is not set.
const NO_LEVEL: usize = usize::MAX;

impl StderrLog {
    fn level(&self) -> Option<log::LevelFilter> {
        let l = self.all.load(Ordering::Relaxed);
        log::LevelFilter::iter().find(|f| *f as usize == l)
    }

    fn limit(&self, target: &str) -> log::LevelFilter {
        if !target.starts_with("mirai") {
            return log::LevelFilter::Off;
        }
        match self.level() {
            Some(l) => l,
            None if target.starts_with("mirai_transport") => log::LevelFilter::Warn,
            None => log::LevelFilter::Off,
        }
    }
}

impl log::Log for StderrLog {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= self.limit(m.target())
    }

    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            // A closed stderr must not panic a daemon or dispatcher thread: errors are ignored.
            let _ = writeln!(
                std::io::stderr().lock(),
                "mirai [{}] {}",
                r.level(),
                r.args()
            );
        }
    }

    fn flush(&self) {}
}

static LOGGER: StderrLog = StderrLog {
    all: AtomicUsize::new(NO_LEVEL),
};

/// Installs [`StderrLog`] as the process's logger (default level), unless one is installed
/// already.
pub(crate) fn install_logger() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
}

/// Sets the log level from the value of the `mirai.log` option: `NULL` leaves it as it is;
/// otherwise one of `off`, `error`, `warn`, `info`, `debug`, `trace`.
pub(crate) fn set_log_level(v: Sexp<'_>, name: &str) -> RResult<()> {
    if v.is_null() {
        return Ok(());
    }
    let level = args::string(v, name)?
        .trim()
        .parse::<log::LevelFilter>()
        .map_err(|_| {
            RError::Msg(format!(
                "`{name}` must be one of \"off\", \"error\", \"warn\", \"info\", \"debug\", \"trace\""
            ))
        })?;
    LOGGER.all.store(level as usize, Ordering::Relaxed);
    log::set_max_level(level.max(log::LevelFilter::Warn));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_filter_defaults_to_transport_warnings() {
        let d = StderrLog {
            all: AtomicUsize::new(NO_LEVEL),
        };
        assert_eq!(d.limit("mirai_transport::native"), log::LevelFilter::Warn);
        assert_eq!(d.limit("mirai_host"), log::LevelFilter::Off);
        assert_eq!(d.limit("rustls::server"), log::LevelFilter::Off);
        let all = StderrLog {
            all: AtomicUsize::new(log::LevelFilter::Debug as usize),
        };
        assert_eq!(all.limit("mirai_host"), log::LevelFilter::Debug);
        assert_eq!(all.limit("mirai_transport::tls"), log::LevelFilter::Debug);
        assert_eq!(all.limit("other"), log::LevelFilter::Off);
    }
}
