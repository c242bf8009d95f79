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
//! the mirai is collected), drops `.host`.
//!
//! Doing this in C rather than R takes one `.Call` per operation instead of a dozen closure
//! calls, and builds each object with the fewest R allocations: the class vector is shared by
//! every mirai, and the binding's function body is shared too (only the closure cell is per
//! object, because its environment must be the mirai).

use std::cell::Cell;
use std::ffi::CStr;

use mirai_rapi::{args, Kind, Preserved, RError, RResult, Scope, Sexp, R};

use crate::aiokind;
use crate::handles::is_task_ref;
use crate::keyed::{is_keyed, release_keyed, submit_keyed, watch_keyed};
use crate::task::{take, task_attempts, wait_task};
use crate::wait::Deadline;

thread_local! {
    /// Ids given so far (process-wide, strictly increasing; main thread only).
    static LAST_ID: Cell<i32> = const { Cell::new(0) };
    /// Cached, preserved R objects (main thread only): see `statics`.
    static STATICS: Cell<Option<Statics>> = const { Cell::new(None) };
    /// The last profile name looked up by `mirai_go` (its address) and its symbol (see
    /// `profile_symbol_of`).
    static LAST_PROFILE: Cell<Option<(usize, Sexp<'static>)>> = const { Cell::new(None) };
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
    pub(crate) s_hooks: Sexp<'static>,
    pub(crate) s_host: Sexp<'static>,
    pub(crate) s_data: Sexp<'static>,
    pub(crate) s_value: Sexp<'static>,
    pub(crate) s_id: Sexp<'static>,
    pub(crate) s_class: Sexp<'static>,
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

/// The shared objects; made on first use (the namespace is loaded by then: R calls us from it,
/// and nanonext's before it).
pub(crate) fn statics_of(r: R) -> RResult<Statics> {
    if let Some(s) = STATICS.with(Cell::get) {
        return Ok(s);
    }
    let s = r.with_scope(make_statics)?;
    STATICS.with(|c| c.set(Some(s)));
    Ok(s)
}

/// Makes the shared objects (see [`Statics`]), each preserved for the session.
fn make_statics(sc: &Scope) -> RResult<Statics> {
    let r = sc.r();
    let keep = |x: Sexp<'_>| Preserved::new(r, x).leak();
    let constant = |x: Sexp<'_>| {
        x.mark_not_mutable();
        keep(x)
    };
    // Both lookups and the forcing of lazy-loaded bindings evaluate R code: confined.
    let ns = sc.find_namespace(c"mirai")?;
    // The sentinel is nanonext's one object (spec nanonext-api §1.2: recognised by identity);
    // mirai imports nanonext, so its namespace is loaded.
    let nx = sc.find_namespace(c"nanonext")?;
    let mut unresolved = nx
        .frame_get(r.sym(c".unresolvedValue"))
        .ok_or("mirai: the nanonext namespace lacks `.unresolvedValue`")?;
    if unresolved.kind() == Kind::PROMSXP {
        unresolved = sc.eval(unresolved, r.base_env())?;
    }
    let registry = ns_env(sc, ns, c"..")?;
    let opts = ns_env(sc, ns, c".opts")?;
    // `.Call(mirai_data, environment())`: the binding's frame's parent is the mirai itself.
    let env_call = sc.lang(r.sym(c"environment"), &[]);
    let body = sc.lang(r.sym(c".Call"), &[r.sym(c"mirai_data"), env_call]);
    Ok(Statics {
        class: constant(sc.cstrings(&[c"mirai", c"recvAio"])),
        body: keep(body),
        ns: keep(ns),
        unresolved: keep(unresolved),
        s_aio: r.sym(c".aio"),
        s_handle: r.sym(c"aio"),
        id_ok: constant(sc.int(1)),
        id_err: constant(sc.int(0)),
        s_hooks: r.sym(c".hooks"),
        s_host: r.sym(c".host"),
        s_data: r.sym(c"data"),
        s_value: r.sym(c"value"),
        s_id: r.sym(c"id"),
        s_class: r.sym(c"class"),
        s_attempts: r.sym(c".attempts"),
        s_expr: r.sym(c".expr"),
        s_default: r.sym(c"default"),
        s_sync: r.sym(c"sync"),
        s_gate: r.sym(c"gate"),
        s_seed: r.sym(c"seed"),
        s_prof_host: r.sym(c"host"),
        s_serial: r.sym(c"serial"),
        registry: keep(registry),
        opts: keep(opts),
    })
}

/// An environment of the namespace (forced if lazy-loaded), protected by `sc`.
fn ns_env<'s>(sc: &'s Scope, ns: Sexp<'_>, name: &CStr) -> RResult<Sexp<'s>> {
    let missing = || {
        RError::from(format!(
            "mirai: the package namespace lacks `{}`",
            name.to_string_lossy()
        ))
    };
    let v = ns.frame_get(sc.r().sym(name)).ok_or_else(missing)?;
    let v = if v.kind() == Kind::PROMSXP {
        sc.eval(v, sc.r().base_env())?
    } else {
        sc.protect(v)
    };
    if v.kind() != Kind::ENVSXP {
        return Err(missing());
    }
    Ok(v)
}

/// The symbol of profile name `name` (a CHARSXP; `None` for anything else or `NA`): the last
/// one is remembered, as R keeps one CHARSXP per string and almost every call names the same
/// profile.
pub(crate) fn profile_symbol_of(r: R, name: Sexp<'_>) -> Option<Sexp<'static>> {
    if let Some((c, s)) = LAST_PROFILE.with(Cell::get) {
        if c == name.addr() {
            return Some(s);
        }
    }
    let s = r.install_char(name)?;
    // Remembered only when `name` is the symbol's own print name: symbols are never collected,
    // so that CHARSXP never is either, and its address cannot come back as another string.
    if s.printname().is_some_and(|p| p.addr() == name.addr()) {
        LAST_PROFILE.with(|l| l.set(Some((name.addr(), s))));
    }
    Some(s)
}

/// The next mirai id.
fn next_id() -> i32 {
    LAST_ID.with(|c| {
        let id = c.get().saturating_add(1);
        c.set(id);
        id
    })
}

/// A new mirai holding task handle `aio` (or none, and then no `aio` handle either) and
/// `hooks` (unless `NULL`), protected by `sc`.
pub(crate) fn new_mirai<'s>(
    sc: &'s Scope,
    aio: Option<Sexp<'_>>,
    hooks: Sexp<'_>,
) -> RResult<Sexp<'s>> {
    let s = statics_of(sc.r())?;
    let env = shell(sc, &s, aio.is_some())?;
    if let Some(aio) = aio {
        env.define(s.s_aio, aio);
    }
    if !hooks.is_null() {
        env.define(s.s_hooks, hooks);
    }
    Ok(env)
}

/// A new mirai with its `id`, class, `data` binding and, if `handle`, its `aio` handle, and
/// nothing else; protected by `sc` (the one protection it keeps).
fn shell<'s>(sc: &'s Scope, s: &Statics, handle: bool) -> RResult<Sexp<'s>> {
    let env = sc.new_object_env(Some(s.ns), 4);
    let q = sc.child();
    // A fresh, unlocked environment with no bindings: never refused. Made while the
    // environment has no class, as R asks whether a classed one is a user database at each
    // frame lookup (a string compare per class).
    if !env.make_active_binding(s.s_data, q.closure0(s.body, env)) {
        return Err("mirai: could not make the `data` binding of a mirai".into());
    }
    env.set_attr(s.s_id, q.int(next_id()));
    env.set_attr(s.s_class, s.class);
    if handle {
        env.define(s.s_handle, aiokind::new_handle(&q, env));
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
    let s = statics_of(r)?;
    let env = shell(sc, &s, true)?;
    if !hooks.is_null() {
        env.define(s.s_hooks, hooks);
    }
    // Linked into R's list of weak references at once, so protected by R from here on.
    let watch = watch_keyed(env);
    submit_keyed(r, host, data, timeout, hooks, watch)?;
    Ok(env)
}

/// The value of mirai `m` if it has resolved (settling it: see the module docs), otherwise
/// the `unresolvedValue` sentinel. Never waits. A value taken now is protected by `sc`; one
/// settled before is reached through `m`.
pub(crate) fn settle<'s>(sc: &'s Scope, m: Sexp<'s>) -> RResult<Sexp<'s>> {
    let r = sc.r();
    let s = statics_of(r)?;
    let Some(aio) = aiokind::task_of(r, m)?.filter(|t| is_task_ref(r, *t)) else {
        return Ok(m.frame_get(s.s_value).unwrap_or(Sexp::null()));
    };
    let hooks = m.frame_get(s.s_hooks).unwrap_or(Sexp::null());
    let v = take(sc, aio, hooks, s.unresolved)?;
    if v.addr() == s.unresolved.addr() {
        return Ok(v);
    }
    // The value first: a keyed task's outcome is not cached elsewhere once taken.
    m.define(s.s_value, v);
    let id = if is_error_code(v) { s.id_err } else { s.id_ok };
    m.define(s.s_handle, id);
    keep_attempts(sc, m, aio)?;
    // A task handle is an external pointer, or the mirai itself when keyed.
    if aio.kind() == Kind::ENVSXP {
        release_keyed(r, aio);
    } else {
        m.define(s.s_aio, Sexp::null());
    }
    if m.frame_get(s.s_host).is_some_and(|h| !h.is_null()) && !is_timeout(v) {
        m.define(s.s_host, Sexp::null());
    }
    Ok(v)
}

/// An integer error value (5, 7, 19, 20: no daemon answered), not a `miraiError`.
fn is_error_code(v: Sexp<'_>) -> bool {
    v.kind() == Kind::INTSXP && v.inherits(c"errorValue")
}

/// The integer error value 5 (timed out).
fn is_timeout(v: Sexp<'_>) -> bool {
    v.ints().and_then(|x| x.first()) == Some(&5) && v.inherits(c"errorValue")
}

/// Waits (interruptibly, forever) for mirai `m`, then settles it.
fn wait_settle<'s>(sc: &'s Scope, m: Sexp<'s>) -> RResult<Sexp<'s>> {
    wait_mirai(sc.r(), m, &Deadline::after(None))?;
    settle(sc, m)
}

/// Waits (interruptibly, until `dl`) for mirai `m`'s task if it has one that has not resolved.
fn wait_mirai(r: R, m: Sexp<'_>, dl: &Deadline) -> RResult<()> {
    if aiokind::waiting(r, m)? {
        if let Some(task) = aiokind::task_of(r, m)? {
            wait_task(r, task, dl)?;
        }
    }
    Ok(())
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
    if !aio.is_null() && (!is_task_ref(s.r(), aio) || is_keyed(aio)) {
        return Err("`aio` must be a mirai task handle or NULL".into());
    }
    new_mirai(s, (!aio.is_null()).then_some(aio), hooks)
}

/// `.Call` routine: the body of the `data` active binding; `frame` is the binding function's
/// evaluation frame, whose parent is the mirai.
pub(crate) fn mirai_data<'a>(s: &'a Scope, frame: Sexp<'a>) -> RResult<Sexp<'a>> {
    if frame.kind() != Kind::ENVSXP {
        return Err("`frame` must be an environment".into());
    }
    match frame.enclosure() {
        Some(m) => settle(s, m),
        None => Ok(Sexp::null()),
    }
}

/// `.Call` routine: `x[]` for a mirai: waits (interruptibly) and returns the value.
pub(crate) fn mirai_value<'a>(s: &'a Scope, x: Sexp<'a>) -> RResult<Sexp<'a>> {
    if !aiokind::is_mirai(x) {
        return Err("`x` must be a mirai".into());
    }
    wait_settle(s, x)
}

/// `.Call` routine: waits (interruptibly) for a mirai or every mirai in a list, in order, and
/// settles them. With `values = TRUE` returns the list of values (other elements as they are;
/// a single mirai gives its value), else `NULL`.
pub(crate) fn mirai_collect<'a>(s: &'a Scope, x: Sexp<'a>, values: Sexp<'a>) -> RResult<Sexp<'a>> {
    let values = args::lgl(values, "values")?.unwrap_or(false);
    if aiokind::is_mirai(x) {
        let v = wait_settle(s, x)?;
        return Ok(if values { v } else { Sexp::null() });
    }
    if x.kind() != Kind::VECSXP {
        return Ok(if values { x } else { Sexp::null() });
    }
    let r = s.r();
    let n = x.len();
    let mirai_at = |i| x.list_elt(i).filter(|m| aiokind::is_mirai(*m));
    // Wait for all first: an interrupt then leaves every mirai as it was.
    let forever = Deadline::after(None);
    for m in (0..n).filter_map(mirai_at) {
        wait_mirai(r, m, &forever)?;
    }
    let out = if values { s.list(n) } else { Sexp::null() };
    for (i, e) in (0..n).filter_map(|i| x.list_elt(i).map(|e| (i, e))) {
        // What settling protects is needed only until it is in `out` (or in the mirai).
        let q = s.child();
        let v = if aiokind::is_mirai(e) {
            settle(&q, e)?
        } else {
            e
        };
        // Ignored when `out` is NULL (`values = FALSE`).
        out.set_list_elt(i, v);
    }
    Ok(out)
}

/// `.Call` routine: cancels mirai `x` (see `stop_mirai()`): TRUE if its profile's dispatcher
/// still held the task. The mirai resolves to 20 unless it already resolved.
pub(crate) fn mirai_stop<'a>(s: &'a Scope, x: Sexp<'a>) -> RResult<Sexp<'a>> {
    let r = s.r();
    Ok(r.lgl(aiokind::is_mirai(x) && aiokind::stop_mirai(r, x)?))
}

/// `.Call` routine (docs/r-bridge.md): how many times mirai `x`'s task was sent to a daemon:
/// 1 normally, more when it was retried after losing its daemon (`daemons(retry = )`), 0 if
/// it never left the queue.
pub(crate) fn mirai_attempts_of<'a>(s: &'a Scope, x: Sexp<'a>) -> RResult<Sexp<'a>> {
    if !aiokind::is_mirai(x) {
        return Err("`x` must be a mirai".into());
    }
    let r = s.r();
    let st = statics_of(r)?;
    if let Some(aio) = aiokind::task_of(r, x)?.filter(|t| is_task_ref(r, *t)) {
        return Ok(s.int(attempts_int(task_attempts(r, aio)?)));
    }
    Ok(x.frame_get(st.s_attempts).unwrap_or_else(|| s.int(1)))
}

/// An attempt count as an R integer.
fn attempts_int(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Before mirai `m` lets go of its task handle `aio`: keeps the task's attempt count for
/// `mirai_attempts_of`, only when unusual (retried, or never sent), so that the common mirai
/// stays as small.
pub(crate) fn keep_attempts(sc: &Scope, m: Sexp<'_>, aio: Sexp<'_>) -> RResult<()> {
    let r = sc.r();
    let attempts = task_attempts(r, aio)?;
    if attempts != 1 {
        let q = sc.child();
        m.define(statics_of(r)?.s_attempts, q.int(attempts_int(attempts)));
    }
    Ok(())
}
