//! The host routines: starting, inspecting, waiting on and resetting a compute profile's
//! engine.

use std::time::Duration;

use mirai::host::launch::Command;
use mirai::host::{CompletionNotifier, RepairPolicy};
use mirai::sched::Mode;
use mirai::transport::{Backend, Options as TransportOptions};
use mirai::{Host, HostConfig};
use mirai_rapi::{args, Kind, RError, RResult, Scope, Sexp, R};

use crate::handles::{host_error, host_ref, new_host};
use crate::sexp::{memory_budget, wait_timeout};
use crate::wait::{Deadline, SLICE};

/// The largest `retry` count a profile takes: far beyond any use, and small enough that a
/// typo such as `1e9` is an error rather than a task re-run forever.
const MAX_RETRY: f64 = 1000.0;

/// The transport backend named by the `mirai.transport` option: `"native"` (the default) or
/// `"nng"` (benchmarks, interoperability); `NULL` is the default.
pub(crate) fn transport_options(v: Sexp<'_>, name: &str) -> RResult<TransportOptions> {
    let mut o = TransportOptions::default();
    if v.is_null() {
        return Ok(o);
    }
    let bad = || RError::Msg(format!("`{name}` must be \"native\" or \"nng\""));
    match args::string(v, name)
        .map_err(|_| bad())?
        .to_ascii_lowercase()
        .as_str()
    {
        "native" => {}
        "nng" => o.backend = Backend::Nng,
        _ => return Err(bad()),
    }
    Ok(o)
}

/// Pipelining as set by the `mirai.pipeline` option (pipelining is described in
/// docs/architecture.md): `NULL` or `TRUE` keep the default; `FALSE`, `0` or `"off"` send each
/// daemon one task at a time, as mirai does; a positive number sets the threshold in
/// milliseconds. `None`: the default.
fn pipeline_option(v: Sexp<'_>) -> RResult<Option<Option<Duration>>> {
    let bad = || {
        RError::from("`pipeline` must be TRUE, FALSE, \"off\" or a positive number of milliseconds")
    };
    if v.is_null() {
        return Ok(None);
    }
    if v.kind() == Kind::STRSXP {
        return match args::string(v, "pipeline")?.to_ascii_lowercase().as_str() {
            "off" | "false" | "0" => Ok(Some(None)),
            "on" | "true" => Ok(None),
            _ => Err(bad()),
        };
    }
    if v.kind() == Kind::LGLSXP {
        return match args::lgl(v, "pipeline")? {
            Some(true) => Ok(None),
            Some(false) => Ok(Some(None)),
            None => Err(bad()),
        };
    }
    let ms = args::num(v, "pipeline").map_err(|_| bad())?;
    if ms == 0.0 {
        Ok(Some(None))
    } else if ms.is_finite() && ms > 0.0 {
        Ok(Some(Some(Duration::from_secs_f64(ms / 1000.0))))
    } else {
        Err(bad())
    }
}

/// Applies the profile options `opts` of `mirai_host_start`: `NULL`, or a named list of any of
/// `compute` (chr1, the profile's name, for tracing), `retry` (how many times a task whose
/// daemon is lost is sent again), `repair` (relaunch crashed daemons the host started), `cv`
/// (the profile's condition variable, `nextget("cv")`, signalled once per completed task from
/// the engine's threads), and the bridge's settings from R options, each `NULL` for the
/// default: `transport` (`mirai.transport`), `pipeline` (`mirai.pipeline`) and `log`
/// (`mirai.log`).
fn profile_options(r: R, opts: Sexp<'_>, config: &mut HostConfig) -> RResult<()> {
    if opts.is_null() {
        return Ok(());
    }
    if opts.kind() != Kind::VECSXP {
        return Err("`opts` must be a named list".into());
    }
    for i in 0..opts.len() {
        let v = opts.list_elt(i).unwrap_or(Sexp::null());
        match opts.name_at(i).as_str() {
            "compute" => config.compute = args::string(v, "compute")?,
            "retry" => {
                let n =
                    args::num(v, "retry").map_err(|_| "`retry` must be a single whole number")?;
                if !(0.0..=MAX_RETRY).contains(&n) || n.fract() != 0.0 {
                    return Err(
                        format!("`retry` must be a whole number from 0 to {MAX_RETRY}").into(),
                    );
                }
                config.retries = n as u32;
            }
            "repair" => {
                let on = args::lgl(v, "repair")?.ok_or("`repair` must be TRUE or FALSE")?;
                config.repair = on.then(RepairPolicy::default);
            }
            "transport" => {
                let tls = config.transport.tls.take();
                config.transport = transport_options(v, "transport")?;
                config.transport.tls = tls;
            }
            "pipeline" => {
                if let Some(p) = pipeline_option(v)? {
                    config.pipeline = p;
                }
            }
            "log" => crate::remote::set_log_level(v, "log")?,
            "cv" => {
                if !v.is_null() {
                    let c = v
                        .foreign_cv(r)
                        .ok_or("`cv` must be a condition variable made by nanonext::cv()")?;
                    config.on_complete = Some(CompletionNotifier::new(move || c.signal()));
                }
            }
            other => return Err(format!("unknown profile option '{other}'").into()),
        }
    }
    Ok(())
}

/// `.Call` routine (docs/r-bridge.md): starts a host (compute profile engine) listening at `url`.
pub(crate) fn mirai_host_start<'a>(
    s: &'a Scope,
    url: Sexp<'a>,
    dispatcher: Sexp<'a>,
    memory: Sexp<'a>,
    stream: Sexp<'a>,
    serial: Sexp<'a>,
    opts: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    // TLS credentials travel as an attribute of `url` (routines have a fixed arity).
    let tls = url.attr(s.r().sym(c"tls"));
    let tls = args::optional(tls, crate::tls::server_config)?;
    let url = args::string(url, "url")?;
    let dispatcher =
        args::lgl(dispatcher, "dispatcher")?.ok_or("`dispatcher` must be TRUE or FALSE")?;
    let memory = args::optional(memory, |m| args::num(m, "memory"))?.and_then(memory_budget);
    let mut config = HostConfig::new(url.clone());
    config.mode = if dispatcher {
        Mode::Dispatcher
    } else {
        Mode::Direct
    };
    config.memory_limit = memory;
    config.stream = args::stream(stream, "stream")?;
    config.serial = args::raw(serial, "serial")?.to_vec();
    config.transport.tls = tls;
    profile_options(s.r(), opts, &mut config)?;
    let host = Host::start(config).map_err(|e| {
        let msg = e.to_string();
        if msg.contains(&url) {
            msg
        } else {
            format!("cannot start a host at '{url}': {msg}")
        }
    })?;
    Ok(new_host(s, host))
}

/// `.Call` routine (docs/r-bridge.md): the URL daemons dial.
pub(crate) fn mirai_host_url<'a>(s: &'a Scope, host: Sexp<'a>) -> RResult<Sexp<'a>> {
    Ok(s.string(host_ref(s.r(), host, "host")?.host.url()))
}

/// `.Call` routine (docs/r-bridge.md): resets a host (optionally telling daemons to exit first).
pub(crate) fn mirai_host_reset<'a>(
    s: &'a Scope,
    host: Sexp<'a>,
    exit: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let hb = host_ref(s.r(), host, "host")?;
    if args::lgl(exit, "exit")?.unwrap_or(false) {
        hb.host.exit_daemons();
    }
    hb.host.reset();
    Ok(Sexp::null())
}

fn saturating_i32(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// `.Call` routine (docs/r-bridge.md): counters and memory of a host.
pub(crate) fn mirai_host_status<'a>(s: &'a Scope, host: Sexp<'a>) -> RResult<Sexp<'a>> {
    let hb = host_ref(s.r(), host, "host")?;
    // Elements of chunked maps are tasks of their own to the engine (`crate::chunk`).
    let st = hb.host.status();
    let c = &st.counters;
    let url = s.string(&st.url);
    let counters = s.int_vec(
        &[
            c.connections,
            c.cumulative,
            c.awaiting,
            c.executing,
            c.completed,
        ]
        .map(saturating_i32),
    );
    let memory = s.real_vec(&[
        st.memory.used as f64,
        st.memory.peak as f64,
        st.memory.limit.map_or(s.r().na_real(), |l| l as f64),
    ]);
    Ok(s.named_list(&[(c"url", url), (c"counters", counters), (c"memory", memory)]))
}

/// Waits, interruptibly, until `ready(slice)` (which waits at most `slice`) holds or the
/// deadline passes: TRUE if it held.
fn wait_until<'a>(
    s: &'a Scope,
    dl: Deadline,
    mut ready: impl FnMut(Duration) -> bool,
) -> RResult<Sexp<'a>> {
    loop {
        if ready(dl.slice(SLICE)) {
            return Ok(s.r().lgl(true));
        }
        if dl.expired() {
            return Ok(s.r().lgl(false));
        }
        if mirai_rapi::interrupt_pending(s.r()) {
            return Err(RError::Interrupt);
        }
    }
}

/// `.Call` routine (docs/r-bridge.md): waits, interruptibly, until `n` daemons completed the handshake.
pub(crate) fn mirai_host_wait_connections<'a>(
    s: &'a Scope,
    host: Sexp<'a>,
    n: Sexp<'a>,
    timeout: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let hb = host_ref(s.r(), host, "host")?;
    let n = args::num(n, "n")?;
    if n.is_nan() || n < 0.0 {
        return Err("`n` must be a non-negative number".into());
    }
    let dl = Deadline::after(wait_timeout(args::num(timeout, "timeout")?));
    wait_until(s, dl, |slice| hb.host.wait_connections(n as u64, slice))
}

/// `.Call` routine (docs/r-bridge.md): starts one daemon process.
pub(crate) fn mirai_host_launch<'a>(
    s: &'a Scope,
    host: Sexp<'a>,
    program: Sexp<'a>,
    argv: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let hb = host_ref(s.r(), host, "host")?;
    let mut command = Command::new(args::string(program, "program")?);
    command.args = args::strings(argv, "args")?;
    hb.host.launch(&command, 1).map_err(host_error)?;
    Ok(Sexp::null())
}

/// `.Call` routine (docs/r-bridge.md): whether a task would be admitted under the memory budget now.
pub(crate) fn mirai_host_admit<'a>(s: &'a Scope, host: Sexp<'a>) -> RResult<Sexp<'a>> {
    Ok(s.r().lgl(host_ref(s.r(), host, "host")?.host.admit()))
}

/// `.Call` routine (docs/r-bridge.md): waits, interruptibly, until a task would be admitted.
pub(crate) fn mirai_host_wait_admit<'a>(
    s: &'a Scope,
    host: Sexp<'a>,
    timeout: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let hb = host_ref(s.r(), host, "host")?;
    let dl = Deadline::after(wait_timeout(args::num(timeout, "timeout")?));
    wait_until(s, dl, |slice| hb.host.wait_admit(slice))
}

/// `.Call` routine (docs/r-bridge.md): sends an exit instruction to every connected daemon.
pub(crate) fn mirai_host_exit_daemons<'a>(s: &'a Scope, host: Sexp<'a>) -> RResult<Sexp<'a>> {
    host_ref(s.r(), host, "host")?.host.exit_daemons();
    Ok(Sexp::null())
}

/// `.Call` routine (docs/r-bridge.md): opens (`open` TRUE) or ends the `mirai_map` span under
/// which the tasks submitted meanwhile are traced. Nothing happens when tracing is off.
pub(crate) fn mirai_host_map_span<'a>(
    s: &'a Scope,
    host: Sexp<'a>,
    open: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let hb = host_ref(s.r(), host, "host")?;
    let open = args::lgl(open, "open")?.unwrap_or(false);
    let mut slot = hb.map_span.borrow_mut();
    if let Some((mut span, tasks)) = slot.take() {
        span.set_attribute("mirai.tasks", tasks);
    }
    if open && hb.host.tracing() {
        *slot = Some((hb.host.map_span(None), 0));
    }
    Ok(Sexp::null())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturating_counts() {
        assert_eq!(saturating_i32(5), 5);
        assert_eq!(saturating_i32(u64::MAX), i32::MAX);
    }
}
