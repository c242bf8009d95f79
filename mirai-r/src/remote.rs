//! Launch commands and zero-config mutual TLS for remote daemons (spec §2.6, §3.11, §3.12), and
//! the engine's log output.
//!
//! The commands are built by `mirai_host::remote`, which quotes every part for the shell it
//! passes through; these routines only convert R values (docs/r-bridge.md, "Launching").

use std::io::Write;

use libR_sys::*;
use mirai::host::remote::{self, DaemonArg, DaemonCall, Deploy};
use mirai::transport::tls::zero_config;

use crate::guard::{entry, Protector, RError, RResult};
use crate::sexp::*;

fn launch_err(e: remote::LaunchError) -> RError {
    RError::Msg(e.to_string())
}

/// The element of list `x` named `name`, or `R_NilValue`.
unsafe fn list_get(x: SEXP, name: &str) -> SEXP {
    if type_of(x) != SEXPTYPE::VECSXP {
        return R_NilValue;
    }
    let names = Rf_getAttrib(x, R_NamesSymbol);
    if type_of(names) != SEXPTYPE::STRSXP {
        return R_NilValue;
    }
    for i in 0..Rf_xlength(x) {
        if char_text(STRING_ELT(names, i)) == name {
            return VECTOR_ELT(x, i);
        }
    }
    R_NilValue
}

/// An integer vector (no `NA`), or `None` for `NULL`.
unsafe fn arg_ints(x: SEXP, name: &str) -> RResult<Option<Vec<i32>>> {
    match type_of(x) {
        SEXPTYPE::NILSXP => Ok(None),
        SEXPTYPE::INTSXP => {
            let n = Rf_xlength(x) as usize;
            let v = if n == 0 {
                Vec::new()
            } else {
                std::slice::from_raw_parts(INTEGER(x), n).to_vec()
            };
            let na = R_NaInt;
            if v.contains(&na) {
                return Err(format!("`{name}` must not contain NA").into());
            }
            Ok(Some(v))
        }
        SEXPTYPE::REALSXP => {
            let n = Rf_xlength(x) as usize;
            let v = if n == 0 {
                &[][..]
            } else {
                std::slice::from_raw_parts(REAL(x), n)
            };
            if !v
                .iter()
                .all(|d| d.is_finite() && d.fract() == 0.0 && d.abs() <= i32::MAX as f64)
            {
                return Err(format!("`{name}` must hold whole numbers").into());
            }
            Ok(Some(v.iter().map(|d| *d as i32).collect()))
        }
        _ => Err(format!("`{name}` must be an integer vector or NULL").into()),
    }
}

unsafe fn strings_out(items: &[&str]) -> SEXP {
    let mut p = Protector::new();
    let out = p.protect(Rf_allocVector(SEXPTYPE::STRSXP, items.len() as R_xlen_t));
    for (i, s) in items.iter().enumerate() {
        SET_STRING_ELT(out, i as R_xlen_t, mk_char(s));
    }
    out
}

/// `.Call(mirai_daemon_args, names, values)` → chr1: the daemon arguments `,name=value` in
/// order, as stored in a profile (`nextget("dots")`). `values` are `as.character()` of logical
/// or numeric values; names that are not syntactic are back-quoted.
///
/// # Safety
/// Called by R through `.Call` on its main thread, with valid SEXP arguments.
#[no_mangle]
pub unsafe extern "C" fn mirai_daemon_args(names: SEXP, values: SEXP) -> SEXP {
    // SAFETY: called by R through .Call on the main thread with valid SEXPs.
    entry(|| unsafe {
        let names = arg_strings(names, "names")?;
        let values = arg_strings(values, "values")?;
        if names.len() != values.len() {
            return Err("`names` and `values` must have the same length".into());
        }
        let args = names
            .into_iter()
            .zip(values)
            .map(|(n, v)| DaemonArg::new(n, v))
            .collect::<Result<Vec<_>, _>>()
            .map_err(launch_err)?;
        Ok(mk_string(&remote::render_args(&args).map_err(launch_err)?))
    })
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
///
/// # Safety
/// Called by R through `.Call` on its main thread, with valid SEXP arguments.
#[no_mangle]
pub unsafe extern "C" fn mirai_launch_command(spec: SEXP, rscript: SEXP, deploy: SEXP) -> SEXP {
    // SAFETY: called by R through .Call on the main thread with valid SEXPs.
    entry(|| unsafe {
        let mut call = DaemonCall::new(arg_string(list_get(spec, "url"), "spec$url")?);
        call.dispatcher = arg_lgl(list_get(spec, "dispatcher"), "spec$dispatcher")?.unwrap_or(true);
        let dots = list_get(spec, "dots");
        if !is_null(dots) {
            call.args = remote::parse_args(&arg_string(dots, "spec$dots")?).map_err(launch_err)?;
        }
        call.tlscert = arg_strings(list_get(spec, "tlscert"), "spec$tlscert")?;
        call.rs = arg_ints(list_get(spec, "rs"), "spec$rs")?;
        let text = call.render().map_err(launch_err)?;
        let command = remote::shell_command(&arg_string(rscript, "rscript")?, &text);
        let line = if is_null(deploy) {
            None
        } else {
            let args = arg_strings(list_get(deploy, "args"), "remote$args")?;
            let quote = list_get(deploy, "quote");
            let d = if is_null(quote) {
                if args.len() != 3 || args[1] != "." {
                    return Err(
                        "a cluster launch needs `args` = c(<script before>, \".\", <script after>)"
                            .into(),
                    );
                }
                Deploy::Script {
                    prefix: args[0].clone(),
                    suffix: args[2].clone(),
                }
            } else {
                let tunnel = list_get(deploy, "tunnel");
                let tunnel_port = if is_null(tunnel) {
                    None
                } else {
                    let p = arg_num(tunnel, "tunnel")?;
                    if !(p.is_finite() && p.fract() == 0.0 && (0.0..=65535.0).contains(&p)) {
                        return Err(format!("cannot tunnel to port {p}").into());
                    }
                    Some(p as u16)
                };
                Deploy::Args {
                    command: arg_string(list_get(deploy, "command"), "remote$command")?,
                    args,
                    quote: arg_lgl(quote, "remote$quote")?.unwrap_or(false),
                    tunnel_port,
                }
            };
            Some(d.line(&command).map_err(launch_err)?)
        };
        let json = remote::json_escape(&text);
        let out = strings_out(&[&command, &text, &json, line.as_deref().unwrap_or("")]);
        if line.is_none() {
            SET_STRING_ELT(out, 3, R_NaString);
        }
        Ok(out)
    })
}

/// `.Call(mirai_tls_zero_config, cn)` → chr4 `c(server_cert, server_key, ca_cert,
/// client_identity)`: single-use credentials for a host reached as `cn`, with mutual
/// authentication. The host listens with `attr(url, "tls") = list(cert = c(server_cert,
/// server_key), client_ca = ca_cert)`; daemons get `tlscert = c(ca_cert, client_identity)`
/// (the identity is the client certificate followed by its key).
///
/// # Safety
/// Called by R through `.Call` on its main thread, with valid SEXP arguments.
#[no_mangle]
pub unsafe extern "C" fn mirai_tls_zero_config(cn: SEXP) -> SEXP {
    // SAFETY: called by R through .Call on the main thread with valid SEXPs.
    entry(|| unsafe {
        let cn = arg_string(cn, "cn")?;
        let z = zero_config(&cn).map_err(|e| RError::Msg(e.to_string()))?;
        Ok(strings_out(&[
            &z.server_cert,
            &z.server_key,
            &z.ca_cert,
            &z.client_identity_pem(),
        ]))
    })
}

/// Writes the engine's log records to standard error (any thread may log: this never calls R).
///
/// What is shown is set by the environment variable `MIRAI_LOG` when the package is loaded:
/// `off`, `error`, `warn`, `info`, `debug` or `trace`, for every mirai crate. Unset, only the
/// transport's warnings are shown: refused TLS peers (with the reason), failed accepts.
struct StderrLog {
    /// Level for every `mirai*` target, from `MIRAI_LOG`; `None`: the default.
    all: Option<log::LevelFilter>,
}

impl StderrLog {
    fn limit(&self, target: &str) -> log::LevelFilter {
        if !target.starts_with("mirai") {
            return log::LevelFilter::Off;
        }
        match self.all {
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

/// Installs [`StderrLog`] as the process's logger, unless one is installed already.
pub(crate) fn install_logger() {
    let all = std::env::var("MIRAI_LOG")
        .ok()
        .and_then(|v| v.trim().parse::<log::LevelFilter>().ok());
    static LOGGER: std::sync::OnceLock<StderrLog> = std::sync::OnceLock::new();
    let logger = LOGGER.get_or_init(|| StderrLog { all });
    if log::set_logger(logger).is_ok() {
        log::set_max_level(all.unwrap_or(log::LevelFilter::Warn));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_filter_defaults_to_transport_warnings() {
        let d = StderrLog { all: None };
        assert_eq!(d.limit("mirai_transport::native"), log::LevelFilter::Warn);
        assert_eq!(d.limit("mirai_host"), log::LevelFilter::Off);
        assert_eq!(d.limit("rustls::server"), log::LevelFilter::Off);
        let all = StderrLog {
            all: Some(log::LevelFilter::Debug),
        };
        assert_eq!(all.limit("mirai_host"), log::LevelFilter::Debug);
        assert_eq!(all.limit("mirai_transport::tls"), log::LevelFilter::Debug);
        assert_eq!(all.limit("other"), log::LevelFilter::Off);
    }
}
