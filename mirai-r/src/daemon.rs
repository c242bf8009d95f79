//! The daemon side: `mirai_daemon_run` runs `mirai_daemon::run` on R's main thread with an
//! evaluator that calls the R package's `init` and `eval` closures; cancels are watched while
//! `eval` runs (`crate::cancel`).

// Not yet ported to mirai_rapi's safe API: raw R calls, each under the rules its comments state.
#![allow(unsafe_code)]

use mirai::daemon::{
    self, AutoExit, DaemonConfig, DaemonError, EvalControl, Evaluation, Evaluator, Init, Status,
    Task,
};
use mirai::proto::flags;
use mirai_rapi::sys::*;

use crate::serial::{serialize, unserialize, Hooks};
use crate::sexp::*;
use mirai_rapi::guard::protect_raw as protect;
use mirai_rapi::{Caught, Preserved, RError, RResult, Scope, Sexp, R};

/// Calls the R package's `init` and `eval` closures.
struct REvaluator {
    init_fn: SEXP,
    eval_fn: SEXP,
    /// The hooks parsed from `hooks_value` (borrowing from it; declared first so it is dropped
    /// first).
    hooks: Option<Hooks>,
    /// `init()`'s value, kept alive.
    hooks_value: Option<Preserved>,
    /// Why `init()` failed, raised as it was once `run` returns.
    init_failure: Option<RError>,
}

unsafe fn reply_error(msg: &str) -> Evaluation {
    let mut p = Protector::new();
    let v = p.protect(mirai_error(msg));
    Evaluation {
        status: Status::Error,
        payload: serialize(v, None).unwrap_or_default(),
    }
}

unsafe fn reply_interrupt() -> Evaluation {
    let mut p = Protector::new();
    let v = p.protect(mirai_interrupt());
    Evaluation {
        status: Status::Interrupted,
        payload: serialize(v, None).unwrap_or_default(),
    }
}

unsafe fn reply_failure(e: RError) -> Evaluation {
    match e {
        RError::Interrupt => reply_interrupt(),
        other => reply_error(&other.message()),
    }
}

impl Evaluator for REvaluator {
    fn init(&mut self, init: &Init) -> Result<(), String> {
        // SAFETY: `run` calls this on the thread that called it: R's main thread.
        unsafe {
            let mut p = Protector::new();
            let stream = match init.stream {
                Some(s) => {
                    let v = p.protect(Rf_allocVector(SEXPTYPE::INTSXP, 7));
                    std::slice::from_raw_parts_mut(INTEGER(v), 7).copy_from_slice(&s);
                    v
                }
                None => R_NilValue,
            };
            let serial = p.protect(mk_raw(&init.serial));
            let call = p.protect(Rf_lang3(self.init_fn, stream, serial));
            let failure = match protect(|| Rf_eval(call, R_GlobalEnv)) {
                Ok(v) => {
                    p.protect(v);
                    match Hooks::from_sexp(v, "the value of init()") {
                        Ok(hooks) => {
                            self.hooks = None;
                            self.hooks_value = Some(preserve(v));
                            self.hooks = hooks;
                            return Ok(());
                        }
                        Err(e) => e,
                    }
                }
                Err(caught) => caught.into(),
            };
            let msg = failure.message();
            self.init_failure = Some(failure);
            Err(msg)
        }
    }

    fn evaluate(&mut self, task: Task, ctl: &mut EvalControl<'_>) -> Evaluation {
        // SAFETY: as in `init`; R values are protected for as long as they are used, and R's
        // jumps are confined by `protect`.
        unsafe {
            // An interrupt left from between tasks must not hit this one.
            R_interrupts_pending = 0;
            let Task {
                payload,
                flags: task_flags,
                ..
            } = task;
            let mut p = Protector::new();
            let data = match unserialize(&payload, self.hooks.as_ref()) {
                Ok(d) => p.protect(d),
                Err(e) => return reply_failure(e),
            };
            drop(payload);
            let everywhere = p.protect(lgl(task_flags & flags::EVERYWHERE != 0));
            let call = p.protect(Rf_lang3(self.eval_fn, data, everywhere));
            let result = crate::cancel::watch_cancels(R::assume(), ctl, || {
                protect(|| Rf_eval(call, R_GlobalEnv))
            });
            match result {
                Ok(v) => {
                    p.protect(v);
                    let status = if inherits(v, c"miraiError") {
                        Status::Error
                    } else if inherits(v, c"miraiInterrupt") {
                        Status::Interrupted
                    } else {
                        Status::Ok
                    };
                    match serialize(v, self.hooks.as_ref()) {
                        Ok(payload) => Evaluation { status, payload },
                        Err(RError::Interrupt) => reply_interrupt(),
                        Err(e) => reply_error(&format!(
                            "the result could not be serialized: {}",
                            e.message()
                        )),
                    }
                }
                Err(Caught::Error(cond)) => reply_error(&condition_message(cond.get())),
                Err(Caught::Jump) => reply_interrupt(),
            }
        }
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
    let (url, asyncdial, autoexit, idletime, walltime, maxtasks, init, eval) = (
        url.raw(),
        asyncdial.raw(),
        autoexit.raw(),
        idletime.raw(),
        walltime.raw(),
        maxtasks.raw(),
        init.raw(),
        eval.raw(),
    );
    // SAFETY: not yet ported to the safe API: a routine runs on R's main thread with
    // live arguments; the body's raw calls keep the rules of `legacy`.
    unsafe {
        legacy(s, || {
            // The CA chain travels as an attribute of `url` (routines have a fixed arity).
            let tlscert = Rf_getAttrib(url, Rf_install(c"tlscert".as_ptr()));
            let tls = if is_null(tlscert) {
                None
            } else {
                Some(crate::tls::client_config(Sexp::from_raw(tlscert))?)
            };
            daemon_run(
                url, asyncdial, autoexit, idletime, walltime, maxtasks, init, eval, tls,
            )
        })
    }
}

#[allow(clippy::too_many_arguments)]
unsafe fn daemon_run(
    url: SEXP,
    asyncdial: SEXP,
    autoexit: SEXP,
    idletime: SEXP,
    walltime: SEXP,
    maxtasks: SEXP,
    init: SEXP,
    eval: SEXP,
    tls: Option<mirai::transport::TlsConfig>,
) -> RResult<SEXP> {
    {
        let mut config = DaemonConfig::new(arg_string(url, "url")?);
        // The bridge's settings ride as attributes of `url` too (R options `mirai.transport`
        // and `mirai.log`, see daemon.R).
        let attr =
            |name: &std::ffi::CStr| Sexp::from_raw(Rf_getAttrib(url, Rf_install(name.as_ptr())));
        config.transport = crate::host::transport_options(attr(c"transport"), "transport")?;
        crate::remote::set_log_level(attr(c"log"), "log")?;
        config.transport.tls = tls;
        config.asyncdial =
            arg_lgl(asyncdial, "asyncdial")?.ok_or("`asyncdial` must be TRUE or FALSE")?;
        config.autoexit = autoexit_mode(arg_lgl(autoexit, "autoexit")?);
        config.idletime = limit_ms(arg_num(idletime, "idletime")?, "idletime")?;
        config.walltime = limit_ms(arg_num(walltime, "walltime")?, "walltime")?;
        config.maxtasks = limit_count(arg_num(maxtasks, "maxtasks")?, "maxtasks")?;
        let mut ev = REvaluator {
            init_fn: arg_function(init, "init")?,
            eval_fn: arg_function(eval, "eval")?,
            hooks: None,
            hooks_value: None,
            init_failure: None,
        };
        match daemon::run(&config, &mut ev) {
            Ok(code) => Ok(Rf_ScalarInteger(code as i32)),
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
