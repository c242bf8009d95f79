//! The daemon side: `mirai_daemon_run` runs `mirai_daemon::run` on R's main thread with an
//! evaluator that calls the R package's `init` and `eval` closures; cancels are watched while
//! `eval` runs (`crate::cancel`).
//!
//! An element of a batch (a `mirai_map` chunk, see `crate::chunk`) is evaluated alone: the
//! chunk is unserialized once for all its elements (kept preserved until the next chunk), and
//! each element is handed to `eval` as a chunk of one (`map` and `seeds` cut to that element),
//! so that it is evaluated, cleaned up after and answered as a task of its own would be.

#![forbid(unsafe_code)]

use mirai::daemon::{
    self, AutoExit, DaemonConfig, DaemonError, EvalControl, Evaluation, Evaluator, Init, Status,
    Task, Unit,
};
use mirai::proto::flags;
use mirai_rapi::{args, clear_interrupt, Caught, Preserved, RError, RResult, Scope, Sexp};

use crate::serial::{serialize_of, unserialize_in, HooksOf, OwnedHooks};
use crate::sexp::{limit_count, limit_ms};
use crate::values::{mirai_error, mirai_interrupt};

/// Calls the R package's `init` and `eval` closures (arguments of the routine, alive for the
/// whole run); `s` is the routine's scope, under which each call makes a child scope.
struct REvaluator<'a> {
    s: &'a Scope<'a>,
    init_fn: Sexp<'a>,
    eval_fn: Sexp<'a>,
    /// The hooks of `init()`'s value.
    hooks: Option<OwnedHooks>,
    /// Why `init()` failed, raised as it was once `run` returns.
    init_failure: Option<RError>,
    /// The last batch's chunk, unserialized: `(Unit::chunk, data)`.
    chunk: Option<(u64, Preserved)>,
}

/// Chunk `data` cut to its element `index`: the same list with `map` and `seeds` holding only
/// that element's entry (`seeds` empty if it has none). `None` if `data` is not a named list.
fn element_data<'s>(q: &'s Scope<'_>, data: Sexp<'_>, index: u32) -> Option<Sexp<'s>> {
    let names = data.names()?;
    let n = data.len();
    let out = q.list(n);
    for i in 0..n {
        let v = data.list_elt(i)?;
        match data.name_at(i).as_str() {
            "map" | "seeds" => {
                let e = v.list_elt(index as usize);
                let one = q.list(usize::from(e.is_some()));
                if let Some(e) = e {
                    one.set_list_elt(0, e);
                }
                out.set_list_elt(i, one);
            }
            _ => out.set_list_elt(i, v),
        }
    }
    out.set_attr(q.r().sym(c"names"), names);
    Some(out)
}

/// The reply for what `eval` returned (or raised), serialized with `hooks`.
fn reply(q: &Scope<'_>, result: Result<Sexp<'_>, Caught>, hooks: &HooksOf<'_>) -> Evaluation {
    match result {
        Ok(v) => {
            let status = if v.inherits(c"miraiError") {
                Status::Error
            } else if v.inherits(c"miraiInterrupt") {
                Status::Interrupted
            } else {
                Status::Ok
            };
            match serialize_of(v, hooks) {
                Ok(payload) => Evaluation { status, payload },
                Err(RError::Interrupt) => reply_interrupt(q),
                Err(e) => reply_error(
                    q,
                    &format!("the result could not be serialized: {}", e.message()),
                ),
            }
        }
        Err(Caught::Error(cond)) => reply_error(q, &cond.sexp().condition_message()),
        Err(Caught::Jump) => reply_interrupt(q),
    }
}

/// An error reply: a minimal miraiError with `msg`.
fn reply_error(s: &Scope<'_>, msg: &str) -> Evaluation {
    let q = s.child();
    let v = mirai_error(&q, msg);
    Evaluation {
        status: Status::Error,
        payload: serialize_of(v, &HooksOf::none()).unwrap_or_default(),
    }
}

/// An interrupted reply.
fn reply_interrupt(s: &Scope<'_>) -> Evaluation {
    let q = s.child();
    let v = mirai_interrupt(&q);
    Evaluation {
        status: Status::Interrupted,
        payload: serialize_of(v, &HooksOf::none()).unwrap_or_default(),
    }
}

fn reply_failure(s: &Scope<'_>, e: RError) -> Evaluation {
    match e {
        RError::Interrupt => reply_interrupt(s),
        other => reply_error(s, &other.message()),
    }
}

impl Evaluator for REvaluator<'_> {
    fn init(&mut self, init: &Init) -> Result<(), String> {
        let q = self.s.child();
        let r = q.r();
        let stream = match init.stream {
            Some(st) => q.int_vec(&st),
            None => Sexp::null(),
        };
        let serial = q.raw(&init.serial);
        let call = q.lang(self.init_fn, &[stream, serial]);
        let failure = match q.eval(call, r.global_env()) {
            Ok(v) => match OwnedHooks::new(r, v, "the value of init()") {
                Ok(hooks) => {
                    self.hooks = Some(hooks);
                    return Ok(());
                }
                Err(e) => e,
            },
            Err(caught) => caught.into(),
        };
        let msg = failure.message();
        self.init_failure = Some(failure);
        Err(msg)
    }

    fn evaluate(&mut self, task: Task, ctl: &mut EvalControl<'_>) -> Evaluation {
        let q = self.s.child();
        let r = q.r();
        // An interrupt left from between tasks must not hit this one.
        clear_interrupt(r);
        let Task {
            payload,
            flags: task_flags,
            ..
        } = task;
        let none = HooksOf::none();
        let hooks = self.hooks.as_ref().map_or(&none, |h| h.get());
        let data = match unserialize_in(&q, &payload, hooks) {
            Ok(d) => d,
            Err(e) => return reply_failure(&q, e),
        };
        drop(payload);
        let everywhere = r.lgl(task_flags & flags::EVERYWHERE != 0);
        let call = q.lang(self.eval_fn, &[data, everywhere]);
        let result = crate::cancel::watch_cancels(r, ctl, || q.eval(call, r.global_env()));
        reply(&q, result, hooks)
    }

    fn evaluate_unit(&mut self, _task: Task, unit: &Unit, ctl: &mut EvalControl<'_>) -> Evaluation {
        let q = self.s.child();
        let r = q.r();
        clear_interrupt(r);
        let none = HooksOf::none();
        let hooks = self.hooks.as_ref().map_or(&none, |h| h.get());
        if self.chunk.as_ref().is_none_or(|(c, _)| *c != unit.chunk) {
            // The previous chunk is released first: only one is kept.
            self.chunk = None;
            match unserialize_in(&q, &unit.payload, hooks) {
                Ok(d) => self.chunk = Some((unit.chunk, Preserved::new(r, d))),
                Err(e) => return reply_failure(&q, e),
            }
        }
        let Some((_, data)) = &self.chunk else {
            return reply_error(&q, "the chunk of this element is missing");
        };
        let Some(one) = element_data(&q, data.sexp(), unit.index) else {
            return reply_error(&q, "the chunk of this element is not a named list");
        };
        let call = q.lang(self.eval_fn, &[one, r.lgl(false)]);
        let result = crate::cancel::watch_cancels(r, ctl, || q.eval(call, r.global_env()));
        // A chunk's value is the list of its elements' values: here, of one.
        let result = result.map(|v| match v.list_elt(0) {
            Some(e) if !v.is_object() => e,
            _ => v,
        });
        reply(&q, result, hooks)
    }
}

/// `autoexit`: `TRUE` (or any non-zero number) exits, `NA` finishes the task, `FALSE` stays.
fn autoexit_mode(v: Option<bool>) -> AutoExit {
    match v {
        Some(true) => AutoExit::Exit,
        None => AutoExit::Finish,
        Some(false) => AutoExit::Stay,
    }
}

/// `.Call` routine (docs/r-bridge.md): runs the daemon loop on R's main thread.
#[allow(clippy::too_many_arguments)]
pub(crate) fn mirai_daemon_run<'a>(
    s: &'a Scope,
    url: Sexp<'a>,
    asyncdial: Sexp<'a>,
    autoexit: Sexp<'a>,
    idletime: Sexp<'a>,
    walltime: Sexp<'a>,
    maxtasks: Sexp<'a>,
    init: Sexp<'a>,
    eval: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let r = s.r();
    // The CA chain and the bridge's settings (R options `mirai.transport` and `mirai.log`, see
    // daemon.R) travel as attributes of `url` (routines have a fixed arity).
    let attr = |name: &std::ffi::CStr| url.attr(r.sym(name));
    let tlscert = attr(c"tlscert");
    let tls = if tlscert.is_null() {
        None
    } else {
        Some(crate::tls::client_config(tlscert)?)
    };
    let mut config = DaemonConfig::new(args::string(url, "url")?);
    config.transport = crate::host::transport_options(attr(c"transport"), "transport")?;
    crate::remote::set_log_level(attr(c"log"), "log")?;
    config.transport.tls = tls;
    config.asyncdial =
        args::lgl(asyncdial, "asyncdial")?.ok_or("`asyncdial` must be TRUE or FALSE")?;
    config.autoexit = autoexit_mode(args::lgl(autoexit, "autoexit")?);
    config.idletime = limit_ms(args::num(idletime, "idletime")?, "idletime")?;
    config.walltime = limit_ms(args::num(walltime, "walltime")?, "walltime")?;
    config.maxtasks = limit_count(args::num(maxtasks, "maxtasks")?, "maxtasks")?;
    let mut ev = REvaluator {
        s,
        init_fn: args::function(init, "init")?,
        eval_fn: args::function(eval, "eval")?,
        hooks: None,
        init_failure: None,
        chunk: None,
    };
    match daemon::run(&config, &mut ev) {
        Ok(code) => Ok(s.int(code as i32)),
        Err(DaemonError::Init(msg)) => Err(ev
            .init_failure
            .take()
            .unwrap_or_else(|| RError::Msg(format!("daemon initialisation failed: {msg}")))),
        // A failed synchronous dial reads "<code> | <text>", e.g. "6 | Connection refused";
        // a refused TLS handshake (26, 27) also says why, e.g. which certificate failed.
        Err(DaemonError::Dial {
            code: code @ (26 | 27),
            text,
            source,
        }) => Err(RError::Msg(format!("{code} | {text}: {source}"))),
        Err(e) => Err(RError::Msg(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn autoexit_maps_true_na_false() {
        assert_eq!(autoexit_mode(Some(true)), AutoExit::Exit);
        assert_eq!(autoexit_mode(None), AutoExit::Finish);
        assert_eq!(autoexit_mode(Some(false)), AutoExit::Stay);
    }
}
