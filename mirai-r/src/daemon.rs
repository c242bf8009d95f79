//! The daemon side: `mirai_daemon_run` runs `mirai_daemon::run` on R's main thread with an
//! evaluator that calls the R package's `init` and `eval` closures; cancels are watched while
//! `eval` runs (`crate::cancel`).
//!
//! An element of a batch (a `mirai_map` chunk, see `crate::chunk`) is evaluated alone: the
//! chunk is unserialized once for all its elements (kept preserved until the next chunk), and
//! each element is handed to `eval` as a chunk of one (`map` and `seeds` cut to that element),
//! so that it is evaluated, cleaned up after and answered as a task of its own would be. The
//! chunk of one and the call of `eval` on it are built once per chunk ([`ChunkKit`]); each
//! element only swaps its entries into them, which saves a dozen allocations per element.

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
    /// The last batch's chunk, unserialized and prepared: `(Unit::chunk, kit)`.
    chunk: Option<(u64, ChunkKit)>,
}

/// A chunk prepared for evaluating its elements one by one: one preserved list
/// `list(data, call, map1, seeds1, seeds0, one)` where `data` is the unserialized chunk,
/// `call` is `eval(one, FALSE)` with `one` a copy of `data` whose `map` is `map1` (a list of
/// one) and whose `seeds` is `seeds1` (a list of one) or `seeds0` (empty) for the element at
/// hand (an element out of range of either part gets `seeds0` there).
///
/// Reusing `one` is safe: `eval` reads it and binds the element itself (not `map1`) for the
/// user's code, so nothing that outlives an element's evaluation refers to the swapped lists.
struct ChunkKit {
    held: Preserved,
    /// Where `map` sits in `data` (and `one`), if the chunk has that part.
    map_at: Option<usize>,
    /// Where `seeds` sits in `data` (and `one`), if the chunk has that part.
    seeds_at: Option<usize>,
}

const KIT_DATA: usize = 0;
const KIT_CALL: usize = 1;
const KIT_MAP1: usize = 2;
const KIT_SEEDS1: usize = 3;
const KIT_SEEDS0: usize = 4;
const KIT_ONE: usize = 5;

impl ChunkKit {
    /// Prepares chunk `data` for `eval_fn`; `None` if `data` is not a named list.
    fn new(q: &Scope<'_>, eval_fn: Sexp<'_>, data: Sexp<'_>) -> Option<ChunkKit> {
        let r = q.r();
        let names = data.names()?;
        let n = data.len();
        let one = q.list(n);
        let (map1, seeds1, seeds0) = (q.list(1), q.list(1), q.list(0));
        let (mut map_at, mut seeds_at) = (None, None);
        for i in 0..n {
            let v = data.list_elt(i)?;
            // The first of each name counts, as the evaluation reads it.
            match data.name_at(i).as_str() {
                "map" if map_at.is_none() => {
                    one.set_list_elt(i, map1);
                    map_at = Some(i);
                }
                "seeds" if seeds_at.is_none() => {
                    one.set_list_elt(i, seeds0);
                    seeds_at = Some(i);
                }
                _ => one.set_list_elt(i, v),
            }
        }
        one.set_attr(r.sym(c"names"), names);
        let call = q.lang(eval_fn, &[one, r.lgl(false)]);
        let held = q.list(6);
        for (k, v) in [
            (KIT_DATA, data),
            (KIT_CALL, call),
            (KIT_MAP1, map1),
            (KIT_SEEDS1, seeds1),
            (KIT_SEEDS0, seeds0),
            (KIT_ONE, one),
        ] {
            held.set_list_elt(k, v);
        }
        Some(ChunkKit {
            held: Preserved::new(r, held),
            map_at,
            seeds_at,
        })
    }

    /// The call of `eval` on element `index` alone (see the type's docs).
    fn call_for(&self, index: u32) -> Sexp<'_> {
        let held = self.held.sexp();
        let part = |k| held.list_elt(k).unwrap_or(Sexp::null());
        let (data, one) = (part(KIT_DATA), part(KIT_ONE));
        let i = index as usize;
        let entry = |at: usize| data.list_elt(at).and_then(|v| v.list_elt(i));
        if let Some(at) = self.map_at {
            match entry(at) {
                Some(e) => {
                    let map1 = part(KIT_MAP1);
                    map1.set_list_elt(0, e);
                    one.set_list_elt(at, map1);
                }
                None => one.set_list_elt(at, part(KIT_SEEDS0)),
            }
        }
        if let Some(at) = self.seeds_at {
            match entry(at) {
                Some(e) => {
                    let seeds1 = part(KIT_SEEDS1);
                    seeds1.set_list_elt(0, e);
                    one.set_list_elt(at, seeds1);
                }
                None => one.set_list_elt(at, part(KIT_SEEDS0)),
            }
        }
        part(KIT_CALL)
    }
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
            let data = match unserialize_in(&q, &unit.payload, hooks) {
                Ok(d) => d,
                Err(e) => return reply_failure(&q, e),
            };
            let Some(kit) = ChunkKit::new(&q, self.eval_fn, data) else {
                return reply_error(&q, "the chunk of this element is not a named list");
            };
            self.chunk = Some((unit.chunk, kit));
        }
        let Some((_, kit)) = &self.chunk else {
            return reply_error(&q, "the chunk of this element is missing");
        };
        let call = kit.call_for(unit.index);
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
