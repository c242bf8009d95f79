//! The host routines: starting, inspecting, waiting on and resetting a compute profile's
//! engine.

// Not yet ported to mirai_rapi's safe API: raw R calls, each under the rules its comments state.
#![allow(unsafe_code)]

use mirai::host::launch::Command;
use mirai::host::RepairPolicy;
use mirai::sched::Mode;
use mirai::{Host, HostConfig};
use mirai_rapi::sys::*;

use crate::sexp::*;
use crate::wait::{Deadline, SLICE};
use mirai_rapi::{RError, RResult, Scope, Sexp};

use crate::handles::*;
// ---- host routines ----------------------------------------------------------------------

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
    let (url, dispatcher, memory, stream, serial, opts) = (
        url.raw(),
        dispatcher.raw(),
        memory.raw(),
        stream.raw(),
        serial.raw(),
        opts.raw(),
    );
    // SAFETY: not yet ported to the safe API: a routine runs on R's main thread with
    // live arguments; the body's raw calls keep the rules of `legacy`.
    unsafe {
        legacy(s, || {
            // TLS credentials travel as an attribute of `url` (routines have a fixed arity).
            let tls = Rf_getAttrib(url, Rf_install(c"tls".as_ptr()));
            let tls = if is_null(tls) {
                None
            } else {
                Some(crate::tls::server_config(Sexp::from_raw(tls))?)
            };
            host_start(url, dispatcher, memory, stream, serial, opts, tls)
        })
    }
}

/// The largest `retry` count a profile takes: far beyond any use, and small enough that a
/// typo such as `1e9` is an error rather than a task re-run forever.
const MAX_RETRY: f64 = 1000.0;

/// Applies the profile options `opts` of `mirai_host_start`: `NULL`, or a named list of any of
/// `compute` (chr1, the profile's name, for tracing), `retry` (how many times a task whose
/// daemon is lost is sent again) and `repair` (relaunch crashed daemons the host started).
unsafe fn profile_options(opts: SEXP, config: &mut HostConfig) -> RResult<()> {
    if is_null(opts) {
        return Ok(());
    }
    if type_of(opts) != SEXPTYPE::VECSXP {
        return Err("`opts` must be a named list".into());
    }
    let names = Rf_getAttrib(opts, R_NamesSymbol);
    for i in 0..Rf_xlength(opts) {
        let name = if type_of(names) == SEXPTYPE::STRSXP {
            char_text(STRING_ELT(names, i))
        } else {
            String::new()
        };
        let v = VECTOR_ELT(opts, i);
        match name.as_str() {
            "compute" => config.compute = arg_string(v, "compute")?,
            "retry" => {
                let n = arg_num(v, "retry").map_err(|_| "`retry` must be a single whole number")?;
                if !(0.0..=MAX_RETRY).contains(&n) || n.fract() != 0.0 {
                    return Err(
                        format!("`retry` must be a whole number from 0 to {MAX_RETRY}").into(),
                    );
                }
                config.retries = n as u32;
            }
            "repair" => {
                let on = arg_lgl(v, "repair")?.ok_or("`repair` must be TRUE or FALSE")?;
                config.repair = on.then(RepairPolicy::default);
            }
            other => return Err(format!("unknown profile option '{other}'").into()),
        }
    }
    Ok(())
}

unsafe fn host_start(
    url: SEXP,
    dispatcher: SEXP,
    memory: SEXP,
    stream: SEXP,
    serial: SEXP,
    opts: SEXP,
    tls: Option<mirai::transport::TlsConfig>,
) -> RResult<SEXP> {
    {
        let url = arg_string(url, "url")?;
        let dispatcher =
            arg_lgl(dispatcher, "dispatcher")?.ok_or("`dispatcher` must be TRUE or FALSE")?;
        let memory = if is_null(memory) {
            None
        } else {
            memory_budget(arg_num(memory, "memory")?)
        };
        let mut config = HostConfig::new(url.clone());
        config.mode = if dispatcher {
            Mode::Dispatcher
        } else {
            Mode::Direct
        };
        config.memory_limit = memory;
        config.stream = arg_stream(stream, "stream")?;
        config.serial = arg_raw(serial, "serial")?.to_vec();
        config.transport = transport_options();
        config.transport.tls = tls;
        profile_options(opts, &mut config)?;
        // Diagnostics and side-by-side benchmarks: MIRAI_PIPELINE=off sends each daemon one
        // task at a time, as mirai does; a number sets the threshold in milliseconds
        // (pipelining is described in docs/architecture.md).
        if let Ok(v) = std::env::var("MIRAI_PIPELINE") {
            match v.to_ascii_lowercase().as_str() {
                "off" | "0" | "false" => config.pipeline = None,
                ms => {
                    if let Some(d) = ms.parse::<f64>().ok().filter(|x| x.is_finite() && *x > 0.0) {
                        config.pipeline = Some(std::time::Duration::from_secs_f64(d / 1000.0));
                    }
                }
            }
        }
        let host = Host::start(config).map_err(|e| {
            let msg = e.to_string();
            if msg.contains(&url) {
                msg
            } else {
                format!("cannot start a host at '{url}': {msg}")
            }
        })?;
        Ok(new_host(host))
    }
}

/// `.Call` routine (docs/r-bridge.md): the URL daemons dial.
pub(crate) fn mirai_host_url<'a>(s: &'a Scope, host: Sexp<'a>) -> RResult<Sexp<'a>> {
    let host = host.raw();
    // SAFETY: not yet ported to the safe API: a routine runs on R's main thread with
    // live arguments; the body's raw calls keep the rules of `legacy`.
    unsafe { legacy(s, || Ok(mk_string(host_of(host, "host")?.host.url()))) }
}

/// `.Call` routine (docs/r-bridge.md): resets a host (optionally telling daemons to exit first).
pub(crate) fn mirai_host_reset<'a>(
    s: &'a Scope,
    host: Sexp<'a>,
    exit: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let (host, exit) = (host.raw(), exit.raw());
    // SAFETY: not yet ported to the safe API: a routine runs on R's main thread with
    // live arguments; the body's raw calls keep the rules of `legacy`.
    unsafe {
        legacy(s, || {
            let hb = host_of(host, "host")?;
            if arg_lgl(exit, "exit")?.unwrap_or(false) {
                hb.host.exit_daemons();
            }
            hb.host.reset();
            Ok(R_NilValue)
        })
    }
}

fn saturating_i32(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// `.Call` routine (docs/r-bridge.md): counters and memory of a host.
pub(crate) fn mirai_host_status<'a>(s: &'a Scope, host: Sexp<'a>) -> RResult<Sexp<'a>> {
    let host = host.raw();
    // SAFETY: not yet ported to the safe API: a routine runs on R's main thread with
    // live arguments; the body's raw calls keep the rules of `legacy`.
    unsafe {
        legacy(s, || {
            let hb = host_of(host, "host")?;
            let mut st = hb.host.status();
            // Chunks count as their elements (the engine counts each chunk once).
            let (queued, running) = hb.chunk_extras();
            st.counters.awaiting += queued;
            st.counters.executing += running;
            st.counters.completed += hb.chunks_done.get();
            let mut p = Protector::new();
            let url = p.protect(mk_string(&st.url));
            let c = &st.counters;
            let counters = p.protect(Rf_allocVector(SEXPTYPE::INTSXP, 5));
            let cv = std::slice::from_raw_parts_mut(INTEGER(counters), 5);
            for (dst, v) in cv.iter_mut().zip([
                c.connections,
                c.cumulative,
                c.awaiting,
                c.executing,
                c.completed,
            ]) {
                *dst = saturating_i32(v);
            }
            let memory = p.protect(Rf_allocVector(SEXPTYPE::REALSXP, 3));
            let mv = std::slice::from_raw_parts_mut(REAL(memory), 3);
            mv[0] = st.memory.used as f64;
            mv[1] = st.memory.peak as f64;
            mv[2] = st.memory.limit.map_or(R_NaReal, |l| l as f64);
            Ok(named_list(&[
                (c"url", url),
                (c"counters", counters),
                (c"memory", memory),
            ]))
        })
    }
}

/// `.Call` routine (docs/r-bridge.md): waits, interruptibly, until `n` daemons completed the handshake.
pub(crate) fn mirai_host_wait_connections<'a>(
    s: &'a Scope,
    host: Sexp<'a>,
    n: Sexp<'a>,
    timeout: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let (host, n, timeout) = (host.raw(), n.raw(), timeout.raw());
    // SAFETY: not yet ported to the safe API: a routine runs on R's main thread with
    // live arguments; the body's raw calls keep the rules of `legacy`.
    unsafe {
        legacy(s, || {
            let hb = host_of(host, "host")?;
            let n = arg_num(n, "n")?;
            if n.is_nan() || n < 0.0 {
                return Err("`n` must be a non-negative number".into());
            }
            let dl = Deadline::after(wait_timeout(arg_num(timeout, "timeout")?));
            loop {
                if hb.host.wait_connections(n as u64, dl.slice(SLICE)) {
                    return Ok(lgl(true));
                }
                if dl.expired() {
                    return Ok(lgl(false));
                }
                if interrupt_pending_raw() {
                    return Err(RError::Interrupt);
                }
            }
        })
    }
}

/// `.Call` routine (docs/r-bridge.md): starts one daemon process.
pub(crate) fn mirai_host_launch<'a>(
    s: &'a Scope,
    host: Sexp<'a>,
    program: Sexp<'a>,
    args: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let (host, program, args) = (host.raw(), program.raw(), args.raw());
    // SAFETY: not yet ported to the safe API: a routine runs on R's main thread with
    // live arguments; the body's raw calls keep the rules of `legacy`.
    unsafe {
        legacy(s, || {
            let hb = host_of(host, "host")?;
            let mut command = Command::new(arg_string(program, "program")?);
            command.args = arg_strings(args, "args")?;
            hb.host.launch(&command, 1).map_err(host_error)?;
            Ok(R_NilValue)
        })
    }
}

/// `.Call` routine (docs/r-bridge.md): whether a task would be admitted under the memory budget now.
pub(crate) fn mirai_host_admit<'a>(s: &'a Scope, host: Sexp<'a>) -> RResult<Sexp<'a>> {
    let host = host.raw();
    // SAFETY: not yet ported to the safe API: a routine runs on R's main thread with
    // live arguments; the body's raw calls keep the rules of `legacy`.
    unsafe { legacy(s, || Ok(lgl(host_of(host, "host")?.host.admit()))) }
}

/// `.Call` routine (docs/r-bridge.md): waits, interruptibly, until a task would be admitted.
pub(crate) fn mirai_host_wait_admit<'a>(
    s: &'a Scope,
    host: Sexp<'a>,
    timeout: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let (host, timeout) = (host.raw(), timeout.raw());
    // SAFETY: not yet ported to the safe API: a routine runs on R's main thread with
    // live arguments; the body's raw calls keep the rules of `legacy`.
    unsafe {
        legacy(s, || {
            let hb = host_of(host, "host")?;
            let dl = Deadline::after(wait_timeout(arg_num(timeout, "timeout")?));
            loop {
                if hb.host.wait_admit(dl.slice(SLICE)) {
                    return Ok(lgl(true));
                }
                if dl.expired() {
                    return Ok(lgl(false));
                }
                if interrupt_pending_raw() {
                    return Err(RError::Interrupt);
                }
            }
        })
    }
}

/// `.Call` routine (docs/r-bridge.md): sends an exit instruction to every connected daemon.
pub(crate) fn mirai_host_exit_daemons<'a>(s: &'a Scope, host: Sexp<'a>) -> RResult<Sexp<'a>> {
    let host = host.raw();
    // SAFETY: not yet ported to the safe API: a routine runs on R's main thread with
    // live arguments; the body's raw calls keep the rules of `legacy`.
    unsafe {
        legacy(s, || {
            host_of(host, "host")?.host.exit_daemons();
            Ok(R_NilValue)
        })
    }
}

/// `.Call` routine (docs/r-bridge.md): opens (`open` TRUE) or ends the `mirai_map` span under
/// which the tasks submitted meanwhile are traced. Nothing happens when tracing is off.
pub(crate) fn mirai_host_map_span<'a>(
    s: &'a Scope,
    host: Sexp<'a>,
    open: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let (host, open) = (host.raw(), open.raw());
    // SAFETY: not yet ported to the safe API: a routine runs on R's main thread with
    // live arguments; the body's raw calls keep the rules of `legacy`.
    unsafe {
        legacy(s, || {
            let hb = host_of(host, "host")?;
            let open = arg_lgl(open, "open")?.unwrap_or(false);
            let mut slot = hb.map_span.borrow_mut();
            if let Some((mut span, tasks)) = slot.take() {
                span.set_attribute("mirai.tasks", tasks);
            }
            if open && hb.host.tracing() {
                *slot = Some((hb.host.map_span(None), 0));
            }
            Ok(R_NilValue)
        })
    }
}
