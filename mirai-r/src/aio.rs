//! `mirai` objects built and settled in C: the hot path of `mirai()`, `x[]`, `$data`,
//! `call_mirai()`, `collect_mirai()` and `stop_mirai()`.
//!
//! A `mirai` is an environment (parent: the package namespace) with class
//! `c("mirai", "recvAio")`, an integer attribute `id`, and an active binding `data` (spec §2.1).
//! A mirai made by `mirai()` is *keyed*: its task waits in the bridge's table under the mirai
//! itself (see `crate::handles`), so it holds nothing besides `data` (plus `.hooks` when the
//! profile has a serialization config). Other mirai (chunk elements, `everywhere()`, ephemeral) hold
//! their task handle as `.aio`. Settling caches the result as `value`, drops the task (the
//! table entry, or `.aio` set to `NULL`) and, unless
//! the value is the timeout error 5 (an ephemeral process that timed out keeps evaluating until
//! the mirai is collected), drops `.host`. An element of a chunked `mirai_map()` also holds
//! `.idx`: its 1-based position in the result list of the chunk task `.aio`.
//!
//! Doing this in C rather than R takes one `.Call` per operation instead of a dozen closure
//! calls, and builds each object with the fewest R allocations: the class vector is shared by
//! every mirai, and the binding's function body is shared too (only the closure cell is per
//! object, because its environment must be the mirai).

// Not yet ported to mirai_rapi's safe API: raw R calls, each under the rules its comments state.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::ffi::CStr;

use mirai_rapi::sys::*;

use crate::aiokind;
use crate::keyed::{is_keyed, release_keyed, submit_keyed, watch_keyed};
use crate::sexp::*;
use crate::task::{take, task_attempts, wait_task};
use crate::values::error_value;
use crate::wait::Deadline;
use mirai_rapi::ffi::{SET_BODY, SET_CLOENV, SET_FORMALS};
use mirai_rapi::guard::protect_raw as protect;
use mirai_rapi::{RResult, Scope, Sexp, R};

thread_local! {
    /// Ids given so far (process-wide, strictly increasing; main thread only).
    static LAST_ID: Cell<i32> = const { Cell::new(0) };
    /// Cached, preserved R objects (main thread only): see `statics`.
    static STATICS: Cell<Option<Statics>> = const { Cell::new(None) };
    /// The last profile name looked up by `mirai_go` and its symbol (see `profile_symbol`).
    static LAST_PROFILE: Cell<Option<(SEXP, SEXP)>> = const { Cell::new(None) };
}

/// R objects every mirai shares, made once and preserved for the life of the process.
#[derive(Clone, Copy)]
pub(crate) struct Statics {
    pub(crate) class: Sexp<'static>,
    pub(crate) body: Sexp<'static>,
    pub(crate) ns: Sexp<'static>,
    pub(crate) unresolved: Sexp<'static>,
    pub(crate) s_aio: Sexp<'static>,
    /// `aio`: the Aio handle of the ABI (see `crate::aiokind`), then the integer id.
    pub(crate) s_handle: Sexp<'static>,
    /// What `aio` is rebound to once settled: 1 for an answer from a daemon, 0 for an error
    /// value. Shared by every mirai (never modified in place: not mutable).
    pub(crate) id_ok: Sexp<'static>,
    pub(crate) id_err: Sexp<'static>,
    /// The `.idx` of a stopped chunk element (compared by address).
    pub(crate) stopped: Sexp<'static>,
    pub(crate) s_hooks: Sexp<'static>,
    pub(crate) s_host: Sexp<'static>,
    pub(crate) s_idx: Sexp<'static>,
    pub(crate) s_data: Sexp<'static>,
    pub(crate) s_value: Sexp<'static>,
    pub(crate) s_id: Sexp<'static>,
    pub(crate) s_attempts: Sexp<'static>,
    /// Names `mirai_go` looks up on every call: symbols made once, as `Rf_install` hashes and
    /// compares the name each time (~0.1 us each, seven per call).
    pub(crate) s_expr: Sexp<'static>,
    pub(crate) s_default: Sexp<'static>,
    pub(crate) s_sync: Sexp<'static>,
    pub(crate) s_gate: Sexp<'static>,
    pub(crate) s_seed: Sexp<'static>,
    pub(crate) s_prof_host: Sexp<'static>,
    pub(crate) s_serial: Sexp<'static>,
    /// The profile registry `..` and the options `.opts` of the namespace.
    pub(crate) registry: Sexp<'static>,
    pub(crate) opts: Sexp<'static>,
}

unsafe fn sym(name: &CStr) -> SEXP {
    Rf_install(name.as_ptr())
}

/// The shared objects; made on first use (the namespace is loaded by then: R calls us from it,
/// and nanonext's before it).
pub(crate) unsafe fn statics() -> RResult<Statics> {
    if let Some(s) = STATICS.with(Cell::get) {
        return Ok(s);
    }
    let mut p = Protector::new();
    let name = p.protect(mk_string("mirai"));
    // Both calls evaluate R code (getNamespace(), the lazy-load database): confined.
    let ns = p.protect(protect(|| R_FindNamespace(name))?);
    // The sentinel is nanonext's one object (spec nanonext-api §1.2: recognised by identity);
    // mirai imports nanonext, so its namespace is loaded.
    let nx = p.protect(mk_string("nanonext"));
    let nx = p.protect(protect(|| R_FindNamespace(nx))?);
    let mut unresolved = Rf_findVarInFrame(nx, sym(c".unresolvedValue"));
    if unresolved == R_UnboundValue {
        return Err("mirai: the nanonext namespace lacks `.unresolvedValue`".into());
    }
    if type_of(unresolved) == SEXPTYPE::PROMSXP {
        unresolved = p.protect(protect(|| Rf_eval(unresolved, R_BaseEnv))?);
    }
    R_PreserveObject(unresolved);
    let registry = ns_env(ns, c"..", &mut p)?;
    let opts = ns_env(ns, c".opts", &mut p)?;
    let class = mk_strings(&[c"mirai", c"recvAio"]);
    R_PreserveObject(class);
    MARK_NOT_MUTABLE(class);
    // `.Call(mirai_data, environment())`: the binding's frame's parent is the mirai itself.
    let env_call = p.protect(Rf_lang1(sym(c"environment")));
    let body = Rf_lang3(sym(c".Call"), sym(c"mirai_data"), env_call);
    R_PreserveObject(body);
    R_PreserveObject(ns);
    let int_static = |v: i32| {
        let x = Rf_ScalarInteger(v);
        R_PreserveObject(x);
        MARK_NOT_MUTABLE(x);
        x
    };
    let (id_ok, id_err, stopped) = (int_static(1), int_static(0), int_static(i32::MIN));
    let s = Statics {
        class: Sexp::from_raw(class),
        body: Sexp::from_raw(body),
        ns: Sexp::from_raw(ns),
        unresolved: Sexp::from_raw(unresolved),
        s_aio: Sexp::from_raw(sym(c".aio")),
        s_handle: Sexp::from_raw(sym(c"aio")),
        id_ok: Sexp::from_raw(id_ok),
        id_err: Sexp::from_raw(id_err),
        stopped: Sexp::from_raw(stopped),
        s_hooks: Sexp::from_raw(sym(c".hooks")),
        s_host: Sexp::from_raw(sym(c".host")),
        s_idx: Sexp::from_raw(sym(c".idx")),
        s_data: Sexp::from_raw(sym(c"data")),
        s_value: Sexp::from_raw(sym(c"value")),
        s_id: Sexp::from_raw(sym(c"id")),
        s_attempts: Sexp::from_raw(sym(c".attempts")),
        s_expr: Sexp::from_raw(sym(c".expr")),
        s_default: Sexp::from_raw(sym(c"default")),
        s_sync: Sexp::from_raw(sym(c"sync")),
        s_gate: Sexp::from_raw(sym(c"gate")),
        s_seed: Sexp::from_raw(sym(c"seed")),
        s_prof_host: Sexp::from_raw(sym(c"host")),
        s_serial: Sexp::from_raw(sym(c"serial")),
        registry: Sexp::from_raw(registry),
        opts: Sexp::from_raw(opts),
    };
    STATICS.with(|c| c.set(Some(s)));
    Ok(s)
}

/// An environment of the namespace (forced if lazy-loaded), preserved.
unsafe fn ns_env(ns: SEXP, name: &CStr, p: &mut Protector) -> RResult<SEXP> {
    let mut v = Rf_findVarInFrame(ns, sym(name));
    if type_of(v) == SEXPTYPE::PROMSXP {
        v = p.protect(protect(|| Rf_eval(v, R_BaseEnv))?);
    }
    if type_of(v) != SEXPTYPE::ENVSXP {
        return Err(format!(
            "mirai: the package namespace lacks `{}`",
            name.to_string_lossy()
        )
        .into());
    }
    R_PreserveObject(v);
    Ok(v)
}

/// The symbol of profile name `name` (a CHARSXP): the last one is remembered, as R keeps one
/// CHARSXP per string and almost every call names the same profile.
pub(crate) unsafe fn profile_symbol(name: SEXP) -> SEXP {
    if let Some((c, s)) = LAST_PROFILE.with(Cell::get) {
        if c == name {
            return s;
        }
    }
    let s = Rf_installTrChar(name);
    // Remembered only when `name` is the symbol's own print name: symbols are never collected,
    // so that CHARSXP never is either, and its address cannot come back as another string.
    if PRINTNAME(s) == name {
        LAST_PROFILE.with(|l| l.set(Some((name, s))));
    }
    s
}

/// The next mirai id.
fn next_id() -> i32 {
    LAST_ID.with(|c| {
        let id = c.get().saturating_add(1);
        c.set(id);
        id
    })
}

/// A binding of `env`'s own frame, or `None` when unbound.
unsafe fn local(env: SEXP, s: SEXP) -> Option<SEXP> {
    let v = Rf_findVarInFrame(env, s);
    if v == R_UnboundValue {
        None
    } else {
        Some(v)
    }
}

/// Is `x` a mirai (an environment inheriting "mirai")?
pub(crate) unsafe fn is_mirai(x: SEXP) -> bool {
    aiokind::is_mirai(Sexp::from_raw(x))
}

/// A new mirai holding task handle `aio` (or none: `NULL`, and then no `aio` handle either),
/// `hooks` (unless `NULL`) and, for an element of a chunk, `idx` (unless `NULL`). Unprotected.
///
/// # Safety
/// Main thread, valid SEXPs.
pub(crate) unsafe fn new_mirai(sc: &Scope, aio: SEXP, hooks: SEXP, idx: SEXP) -> RResult<SEXP> {
    let s = statics()?;
    let mut p = Protector::new();
    let env = p.protect(shell(&s, (!is_null(aio)).then_some(sc))?);
    if !is_null(aio) {
        Rf_defineVar(s.s_aio.raw(), aio, env);
    }
    if !is_null(hooks) {
        Rf_defineVar(s.s_hooks.raw(), hooks, env);
    }
    if !is_null(idx) {
        Rf_defineVar(s.s_idx.raw(), idx, env);
    }
    Ok(env)
}

/// A new mirai with its `id`, class, `data` binding and, given a scope, its `aio` handle, and
/// nothing else. Unprotected.
unsafe fn shell(s: &Statics, handle: Option<&Scope>) -> RResult<SEXP> {
    let mut p = Protector::new();
    let env = p.protect(R_NewEnv(s.ns.raw(), 0, 4));
    let id = p.protect(Rf_ScalarInteger(next_id()));
    Rf_setAttrib(env, s.s_id.raw(), id);
    Rf_setAttrib(env, R_ClassSymbol, s.class.raw());
    let f = p.protect(Rf_allocSExp(SEXPTYPE::CLOSXP));
    SET_FORMALS(f, R_NilValue);
    SET_BODY(f, s.body.raw());
    SET_CLOENV(f, env);
    R_MakeActiveBinding(s.s_data.raw(), f, env);
    if let Some(sc) = handle {
        let q = sc.child();
        let h = aiokind::new_handle(&q, Sexp::from_raw(env));
        Rf_defineVar(s.s_handle.raw(), h.raw(), env);
    }
    Ok(env)
}

/// Submits `data` to `host` and returns the new keyed mirai of the task, protected by `sc`
/// (the one protection it needs).
pub(crate) fn new_keyed_mirai<'s>(
    sc: &'s Scope,
    host: Sexp<'_>,
    data: Sexp<'_>,
    timeout: Sexp<'_>,
    hooks: Sexp<'_>,
) -> RResult<Sexp<'s>> {
    let r = sc.r();
    // SAFETY: main thread (a scope exists only there), live objects; the new mirai is
    // protected at once, by `sc`.
    let env = unsafe {
        let s = statics()?;
        let env = sc.protect_raw(shell(&s, Some(sc))?);
        if !hooks.is_null() {
            Rf_defineVar(s.s_hooks.raw(), hooks.raw(), env.raw());
        }
        env
    };
    // Linked into R's list of weak references at once, so protected by R from here on.
    let watch = watch_keyed(env);
    submit_keyed(r, host, data, timeout, hooks, watch)?;
    Ok(env)
}

/// The shared objects (see [`statics`]).
pub(crate) fn statics_of(_r: R) -> RResult<Statics> {
    // SAFETY: main thread (token).
    unsafe { statics() }
}

/// [`profile_symbol`] of a CHARSXP (`None` for anything else).
pub(crate) fn profile_symbol_of(name: Sexp<'_>) -> Option<Sexp<'static>> {
    if name.kind() != SEXPTYPE::CHARSXP {
        return None;
    }
    // SAFETY: main thread (a Sexp exists only there), a CHARSXP; symbols are permanent.
    Some(unsafe { Sexp::from_raw(profile_symbol(name.raw())) })
}

/// The task handle of mirai `m`: its `.aio` binding, or `m` itself while its keyed task is in
/// the table; `NULL` once settled or stopped (or for a mirai made resolved).
///
/// # Safety
/// Main thread; `m` a mirai.
pub(crate) unsafe fn aio_of(m: SEXP) -> RResult<SEXP> {
    let t = aiokind::live_task(R::assume(), Sexp::from_raw(m))?;
    Ok(t.map_or(R_NilValue, |h| h.raw()))
}

/// The value of mirai `m` if it has resolved (settling it: see the module docs), otherwise
/// the `unresolvedValue` sentinel. Never waits.
///
/// # Safety
/// Main thread; `m` a mirai.
pub(crate) unsafe fn settle(sc: &Scope, m: SEXP) -> RResult<SEXP> {
    let s = statics()?;
    let r = R::assume();
    let stopped = aiokind::stopped(r, Sexp::from_raw(m))?;
    let aio = aiokind::task_of(r, Sexp::from_raw(m))?.map_or(R_NilValue, |t| t.raw());
    if !is_task(aio) {
        return Ok(local(m, s.s_value.raw()).unwrap_or(R_NilValue));
    }
    // Unprotected when this returns, like everything protected here (the value is reachable
    // from `m` by then).
    let q = sc.child();
    let mut p = Protector::new();
    let v = if stopped {
        error_value(&q, 20).raw()
    } else {
        let hooks = local(m, s.s_hooks.raw()).unwrap_or(R_NilValue);
        let v = take(
            &q,
            Sexp::from_raw(aio),
            Sexp::from_raw(hooks),
            Sexp::from_raw(s.unresolved.raw()),
        )?
        .raw();
        if v == s.unresolved.raw() {
            return Ok(v);
        }
        match local(m, s.s_idx.raw()) {
            Some(idx) => p.protect(chunk_element(v, idx)),
            None => v,
        }
    };
    // The value first: a keyed task's outcome is not cached elsewhere once taken.
    Rf_defineVar(s.s_value.raw(), v, m);
    let id = if is_error_code(v) { s.id_err } else { s.id_ok };
    Rf_defineVar(s.s_handle.raw(), id.raw(), m);
    keep_attempts(m, aio)?;
    // A task handle is an external pointer, or the mirai itself when keyed.
    if type_of(aio) == SEXPTYPE::ENVSXP {
        release_keyed(R::assume(), Sexp::from_raw(aio));
    } else {
        Rf_defineVar(s.s_aio.raw(), R_NilValue, m);
    }
    if local(m, s.s_host.raw()).is_some_and(|h| !is_null(h)) && !is_timeout(v) {
        Rf_defineVar(s.s_host.raw(), R_NilValue, m);
    }
    Ok(v)
}

/// An element's value from its chunk's value: the element of the result list, or the
/// chunk's own error value (a lost, cancelled or timed-out chunk fails each element alike).
unsafe fn chunk_element(chunk: SEXP, idx: SEXP) -> SEXP {
    let i = if type_of(idx) == SEXPTYPE::INTSXP && Rf_xlength(idx) == 1 {
        *INTEGER(idx) as R_xlen_t - 1
    } else {
        -1
    };
    if type_of(chunk) == SEXPTYPE::VECSXP && OBJECT(chunk) == 0 && i >= 0 && i < Rf_xlength(chunk) {
        VECTOR_ELT(chunk, i)
    } else {
        chunk
    }
}

/// An integer error value (5, 7, 19, 20: no daemon answered), not a `miraiError`.
unsafe fn is_error_code(v: SEXP) -> bool {
    type_of(v) == SEXPTYPE::INTSXP && inherits(v, c"errorValue")
}

/// The integer error value 5 (timed out).
unsafe fn is_timeout(v: SEXP) -> bool {
    type_of(v) == SEXPTYPE::INTSXP
        && Rf_xlength(v) >= 1
        && *INTEGER(v) == 5
        && inherits(v, c"errorValue")
}

/// Waits (interruptibly, forever) for mirai `m`, then settles it.
unsafe fn wait_settle(sc: &Scope, m: SEXP) -> RResult<SEXP> {
    let r = R::assume();
    if aiokind::waiting(r, Sexp::from_raw(m))? {
        wait_task(r, Sexp::from_raw(aio_of(m)?), &Deadline::after(None))?;
    }
    settle(sc, m)
}

/// `.Call` routine: serializes `data`, submits it to `host` and returns the new mirai.
pub(crate) fn mirai_async<'a>(
    s: &'a Scope,
    host: Sexp<'a>,
    data: Sexp<'a>,
    timeout: Sexp<'a>,
    hooks: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    new_keyed_mirai(s, host, data, timeout, hooks)
}

/// `.Call` routine: a new mirai around task handle `aio` (`NULL`: none, the caller sets
/// `value`), with `hooks` for reading its result.
pub(crate) fn mirai_wrap<'a>(s: &'a Scope, aio: Sexp<'a>, hooks: Sexp<'a>) -> RResult<Sexp<'a>> {
    let (aio, hooks) = (aio.raw(), hooks.raw());
    // SAFETY: not yet ported to the safe API: a routine runs on R's main thread with
    // live arguments; the body's raw calls keep the rules of `legacy`.
    unsafe {
        legacy(s, || {
            if !is_null(aio) && (!is_task(aio) || is_keyed(Sexp::from_raw(aio))) {
                return Err("`aio` must be a mirai task handle or NULL".into());
            }
            new_mirai(s, aio, hooks, R_NilValue)
        })
    }
}

/// `.Call` routine: the body of the `data` active binding; `frame` is the binding function's
/// evaluation frame, whose parent is the mirai.
pub(crate) fn mirai_data<'a>(s: &'a Scope, frame: Sexp<'a>) -> RResult<Sexp<'a>> {
    let frame = frame.raw();
    // SAFETY: not yet ported to the safe API: a routine runs on R's main thread with
    // live arguments; the body's raw calls keep the rules of `legacy`.
    unsafe {
        legacy(s, || {
            if type_of(frame) != SEXPTYPE::ENVSXP {
                return Err("`frame` must be an environment".into());
            }
            settle(s, ENCLOS(frame))
        })
    }
}

/// `.Call` routine: `x[]` for a mirai: waits (interruptibly) and returns the value.
pub(crate) fn mirai_value<'a>(s: &'a Scope, x: Sexp<'a>) -> RResult<Sexp<'a>> {
    let x = x.raw();
    // SAFETY: not yet ported to the safe API: a routine runs on R's main thread with
    // live arguments; the body's raw calls keep the rules of `legacy`.
    unsafe {
        legacy(s, || {
            if !is_mirai(x) {
                return Err("`x` must be a mirai".into());
            }
            wait_settle(s, x)
        })
    }
}

/// `.Call` routine: waits (interruptibly) for a mirai or every mirai in a list, in order, and
/// settles them. With `values = TRUE` returns the list of values (other elements as they are;
/// a single mirai gives its value), else `NULL`.
pub(crate) fn mirai_collect<'a>(s: &'a Scope, x: Sexp<'a>, values: Sexp<'a>) -> RResult<Sexp<'a>> {
    let (x, values) = (x.raw(), values.raw());
    // SAFETY: not yet ported to the safe API: a routine runs on R's main thread with
    // live arguments; the body's raw calls keep the rules of `legacy`.
    unsafe {
        legacy(s, || {
            let values = arg_lgl(values, "values")?.unwrap_or(false);
            if is_mirai(x) {
                let v = wait_settle(s, x)?;
                return Ok(if values { v } else { R_NilValue });
            }
            if type_of(x) != SEXPTYPE::VECSXP {
                return Ok(if values { x } else { R_NilValue });
            }
            let n = Rf_xlength(x);
            // Wait for all first: an interrupt then leaves every mirai as it was.
            let forever = Deadline::after(None);
            for i in 0..n {
                let m = VECTOR_ELT(x, i);
                if is_mirai(m) && aiokind::waiting(R::assume(), Sexp::from_raw(m))? {
                    wait_task(R::assume(), Sexp::from_raw(aio_of(m)?), &forever)?;
                }
            }
            let mut p = Protector::new();
            let out = if values {
                p.protect(Rf_allocVector(SEXPTYPE::VECSXP, n))
            } else {
                R_NilValue
            };
            for i in 0..n {
                let m = VECTOR_ELT(x, i);
                let v = if is_mirai(m) { settle(s, m)? } else { m };
                if values {
                    SET_VECTOR_ELT(out, i, v);
                }
            }
            Ok(out)
        })
    }
}

/// `.Call` routine: cancels mirai `x` (see `stop_mirai()`): TRUE if its profile's dispatcher
/// still held the task. The mirai resolves to 20 unless it already resolved. An element of a
/// chunk resolves to 20 alone; its chunk is cancelled once no element of it is waiting.
pub(crate) fn mirai_stop<'a>(s: &'a Scope, x: Sexp<'a>) -> RResult<Sexp<'a>> {
    let x = x.raw();
    // SAFETY: not yet ported to the safe API: a routine runs on R's main thread with
    // live arguments; the body's raw calls keep the rules of `legacy`.
    unsafe {
        legacy(s, || {
            if !is_mirai(x) {
                return Ok(lgl(false));
            }
            let r = R::assume();
            let held = aiokind::stop_mirai(r, Sexp::from_raw(x))?;
            // A stopped element settles at once, as every other stopped mirai has.
            if aiokind::stopped(r, Sexp::from_raw(x))? {
                settle(s, x)?;
            }
            Ok(lgl(held))
        })
    }
}

/// `.Call` routine (docs/r-bridge.md): how many times mirai `x`'s task was sent to a daemon:
/// 1 normally, more when it was retried after losing its daemon (`daemons(retry = )`), 0 if
/// it never left the queue.
pub(crate) fn mirai_attempts_of<'a>(s: &'a Scope, x: Sexp<'a>) -> RResult<Sexp<'a>> {
    let x = x.raw();
    // SAFETY: not yet ported to the safe API: a routine runs on R's main thread with
    // live arguments; the body's raw calls keep the rules of `legacy`.
    unsafe {
        legacy(s, || {
            if !is_mirai(x) {
                return Err("`x` must be a mirai".into());
            }
            let s = statics()?;
            let aio =
                aiokind::task_of(R::assume(), Sexp::from_raw(x))?.map_or(R_NilValue, |t| t.raw());
            if is_task(aio) {
                let n = task_attempts(R::assume(), Sexp::from_raw(aio))?;
                return Ok(Rf_ScalarInteger(n.min(i32::MAX as u32) as i32));
            }
            Ok(local(x, s.s_attempts.raw()).unwrap_or_else(|| Rf_ScalarInteger(1)))
        })
    }
}

/// Before mirai `m` lets go of its task handle `aio`: keeps the task's attempt count for
/// `mirai_attempts_of`, only when unusual (retried, or never sent), so that the common mirai
/// stays as small.
///
/// # Safety
/// Main thread; `m` a mirai, `aio` its task handle.
pub(crate) unsafe fn keep_attempts(m: SEXP, aio: SEXP) -> RResult<()> {
    let attempts = task_attempts(R::assume(), Sexp::from_raw(aio))?;
    if attempts != 1 {
        let mut p = Protector::new();
        let a = p.protect(Rf_ScalarInteger(attempts.min(i32::MAX as u32) as i32));
        Rf_defineVar(statics()?.s_attempts.raw(), a, m);
    }
    Ok(())
}

/// Accessors for the chunk module.
pub(crate) mod fields {
    use super::*;

    /// [`new_mirai`] on borrowed objects, protected by `s`.
    pub(crate) fn new_mirai_in<'s>(
        s: &'s Scope,
        aio: Sexp<'_>,
        hooks: Sexp<'_>,
        idx: Sexp<'_>,
    ) -> RResult<Sexp<'s>> {
        // SAFETY: main thread (a scope exists only there), live objects; the new mirai is
        // protected at once.
        unsafe { Ok(s.protect_raw(new_mirai(s, aio.raw(), hooks.raw(), idx.raw())?)) }
    }
}
