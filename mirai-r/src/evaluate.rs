//! The daemon's evaluation of one task (or one chunk of `mirai_map()` elements) in C, and the
//! cheap check that tells the daemon's cleanup whether anything needs restoring.
//!
//! `mirai_eval(data, base, cleanup)` does what the R code once did with `list2env()`,
//! `tryCatch()` and `withCallingHandlers()`, at a fraction of the cost:
//! 1. assigns the task's globals in the global environment;
//! 2. makes the task's environment (parent: the global environment) holding its locals and
//!    `._expr_.`, and evaluates `eval(._mirai_.[["._expr_."]], envir = ._mirai_., enclos =
//!    globalenv())` (the package's `.evalcall`) from a small frame binding `._mirai_.`, so that
//!    calls, frames and conditions look exactly as before;
//! 3. catches an error with a calling handler that records the stack trace (the package's
//!    `.stack_trace()`, run at the point of the error) and then aborts to a top-level context
//!    around the evaluation; the value is then the package's `.mirai_error(cond, trace)`;
//! 4. turns an interrupt (a cancel raised by the bridge, or SIGINT) into `.miraiInterrupt`.
//!
//! A chunk (`data$map`, a list of elements) evaluates `expr` once per element with `.x` bound
//! to it, each with its own environment, its globals assigned again (and its `.Random.seed`
//! from `data$seeds` when the profile is seeded), and `cleanup()` called between elements when
//! `mirai_dirty(base)` says the state changed: each element sees what a task of its own would.
//! Its value is the list of the elements' values; a cancel stops it (the remaining elements
//! are reported interrupted).
//!
//! `mirai_dirty(base)` compares the global environment's variable names, the search path and
//! the options with the baseline `list(vars, search, opts)` by pointer (R caches strings, and
//! `base$opts` keeps every baseline option value alive, so an unchanged pointer means an
//! unchanged value): microseconds. `mirai_clean(base)` also removes the new global variables
//! (the task's globals, typically) itself, leaving only search path and option changes, which
//! are rare, to the R code.

// Not yet ported to mirai_rapi's safe API: raw R calls, each under the rules its comments state.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::collections::HashSet;
use std::ffi::CStr;
use std::os::raw::c_void;

use mirai_rapi::sys::*;

use crate::cancel::{cancel_seen, evaluation_done};
use crate::sexp::*;
use mirai_rapi::ffi::R_curErrorBuf;
use mirai_rapi::guard::{abort_call, protect_raw as protect};
use mirai_rapi::{Preserved, RResult, Scope, Sexp};

thread_local! {
    static SYMS: Cell<Option<Syms>> = const { Cell::new(None) };
    static KIT: Cell<Option<Kit>> = const { Cell::new(None) };
}

#[derive(Clone, Copy)]
struct Syms {
    globals: SEXP,
    args: SEXP,
    expr: SEXP,
    map: SEXP,
    seeds: SEXP,
    x: SEXP,
    expr_var: SEXP,
    mirai_var: SEXP,
    seed: SEXP,
    options: SEXP,
}

unsafe fn syms() -> Syms {
    if let Some(s) = SYMS.with(Cell::get) {
        return s;
    }
    let i = |n: &CStr| Rf_install(n.as_ptr());
    let s = Syms {
        globals: i(c"globals"),
        args: i(c"args"),
        expr: i(c"expr"),
        map: i(c"map"),
        seeds: i(c"seeds"),
        x: i(c".x"),
        expr_var: i(c"._expr_."),
        mirai_var: i(c"._mirai_."),
        seed: i(c".Random.seed"),
        options: i(c".Options"),
    };
    SYMS.with(|c| c.set(Some(s)));
    s
}

/// A namespace object by name (error path and set-up only).
unsafe fn ns_get(ns: SEXP, name: &CStr) -> RResult<SEXP> {
    let v = Rf_findVar(Rf_install(name.as_ptr()), ns);
    if v == R_UnboundValue {
        return Err(format!(
            "mirai: `{}` not found in the package namespace",
            name.to_string_lossy()
        )
        .into());
    }
    if type_of(v) == SEXPTYPE::PROMSXP {
        // Lazy-loaded: forcing reads the package's database, confined like any R code.
        return Ok(protect(|| Rf_eval(v, R_BaseEnv))?);
    }
    Ok(v)
}

/// Element `name` of list `x` (`R_NilValue` if absent). A payload without names is positional:
/// `list(expr, globals, args)`, trailing parts left out.
unsafe fn elt(x: SEXP, name: SEXP) -> SEXP {
    let names = Rf_getAttrib(x, R_NamesSymbol);
    if type_of(names) != SEXPTYPE::STRSXP {
        let s = syms();
        let at = if name == s.expr {
            0
        } else if name == s.globals {
            1
        } else if name == s.args {
            2
        } else {
            return R_NilValue;
        };
        return if at < Rf_xlength(x) {
            VECTOR_ELT(x, at)
        } else {
            R_NilValue
        };
    }
    let want = PRINTNAME(name);
    for i in 0..Rf_xlength(names) {
        if STRING_ELT(names, i) == want {
            return VECTOR_ELT(x, i);
        }
    }
    R_NilValue
}

/// Assigns every named element of list `vals` in `env` (as `list2env()`); unnamed ones are
/// skipped. `env` must accept them: see [`assign_globals`] for the global environment.
unsafe fn assign_all(vals: SEXP, env: SEXP) {
    if type_of(vals) != SEXPTYPE::VECSXP {
        return;
    }
    let names = Rf_getAttrib(vals, R_NamesSymbol);
    if type_of(names) != SEXPTYPE::STRSXP {
        return;
    }
    for i in 0..Rf_xlength(vals) {
        let nm = STRING_ELT(names, i);
        if nm == R_NaString || *R_CHAR(nm) == 0 {
            continue;
        }
        Rf_defineVar(Rf_installTrChar(nm), VECTOR_ELT(vals, i), env);
    }
}

/// Assigns the task's globals in the global environment. Where R would refuse (a locked
/// environment or binding), R's own `list2env()` does it, so that its error comes out as it
/// would have (confined, then raised by the routine).
unsafe fn assign_globals(vals: SEXP) -> RResult<()> {
    if type_of(vals) != SEXPTYPE::VECSXP || Rf_xlength(vals) == 0 {
        return Ok(());
    }
    let names = Rf_getAttrib(vals, R_NamesSymbol);
    let locked = R_EnvironmentIsLocked(R_GlobalEnv) != Rboolean::FALSE
        || (type_of(names) == SEXPTYPE::STRSXP
            && (0..Rf_xlength(names)).any(|i| {
                let nm = STRING_ELT(names, i);
                nm != R_NaString && *R_CHAR(nm) != 0 && {
                    let s = Rf_installTrChar(nm);
                    R_existsVarInFrame(R_GlobalEnv, s) != Rboolean::FALSE
                        && R_BindingIsLocked(s, R_GlobalEnv) != Rboolean::FALSE
                }
            }));
    if !locked {
        assign_all(vals, R_GlobalEnv);
        return Ok(());
    }
    let mut p = Protector::new();
    let call = p.protect(Rf_lang3(
        Rf_install(c"list2env".as_ptr()),
        vals,
        R_GlobalEnv,
    ));
    protect(|| Rf_eval(call, R_BaseEnv))?;
    Ok(())
}

/// What one protected evaluation needs and produces (see the module docs).
struct EvalCtx {
    call: SEXP,
    rho: SEXP,
    /// The task's environment, which `.stack_trace()` looks for among the frames.
    env: SEXP,
    trace_fn: SEXP,
    result: SEXP,
    /// The error condition, preserved; null if none.
    cond: SEXP,
    /// The stack trace taken when the error was signalled, preserved; null if none.
    trace: SEXP,
}

// The trampolines may be skipped by a longjmp; they own nothing.
unsafe extern "C" fn ev_body(data: *mut c_void) -> SEXP {
    let ctx = data as *mut EvalCtx;
    Rf_eval((*ctx).call, (*ctx).rho)
}

unsafe extern "C" fn ev_error(cond: SEXP, data: *mut c_void) -> SEXP {
    let ctx = data as *mut EvalCtx;
    if (*ctx).cond.is_null() {
        R_PreserveObject(cond);
        (*ctx).cond = cond;
        // Still at the point of the error: the frames are there to be listed.
        let call = Rf_protect(Rf_lang2((*ctx).trace_fn, (*ctx).env));
        if let Ok(t) = protect(|| Rf_eval(call, R_BaseEnv)) {
            R_PreserveObject(t);
            (*ctx).trace = t;
        }
        Rf_unprotect(1);
    }
    // Jumps to the R_ToplevelExec in `eval_caught`.
    Rf_eval(abort_call(), R_BaseEnv);
    R_NilValue
}

unsafe extern "C" fn ev_top(data: *mut c_void) {
    let ctx = data as *mut EvalCtx;
    (*ctx).result = R_withCallingErrorHandler(Some(ev_body), data, Some(ev_error), data);
}

/// How an evaluation ended.
enum Ended {
    Value(SEXP),
    Error {
        cond: Preserved,
        trace: Option<Preserved>,
    },
    /// It jumped out without an error condition reaching the handler: an interrupt, or an
    /// error raised while calling handlers are off (C stack overflow), whose message R left in
    /// its error buffer (`Some`).
    Jump(Option<String>),
}

/// R's error buffer, to tell an error that bypassed handlers from an interrupt.
unsafe fn error_buffer() -> Vec<u8> {
    let p = R_curErrorBuf();
    if p.is_null() {
        Vec::new()
    } else {
        CStr::from_ptr(p).to_bytes().to_vec()
    }
}

/// Evaluates `call` in `rho` under a top-level context with an error handler (module docs).
unsafe fn eval_caught(call: SEXP, rho: SEXP, env: SEXP, trace_fn: SEXP) -> Ended {
    abort_call();
    let before = error_buffer();
    let mut ctx = EvalCtx {
        call,
        rho,
        env,
        trace_fn,
        result: R_NilValue,
        cond: std::ptr::null_mut(),
        trace: std::ptr::null_mut(),
    };
    let ok = R_ToplevelExec(Some(ev_top), &mut ctx as *mut EvalCtx as *mut c_void);
    let trace = if ctx.trace.is_null() {
        None
    } else {
        Some(Preserved::adopt(ctx.trace))
    };
    if !ctx.cond.is_null() {
        return Ended::Error {
            cond: Preserved::adopt(ctx.cond),
            trace,
        };
    }
    if ok == Rboolean::TRUE {
        return Ended::Value(ctx.result);
    }
    let after = error_buffer();
    Ended::Jump(if after != before && !after.is_empty() {
        Some(String::from_utf8_lossy(&after).into_owned())
    } else {
        None
    })
}

/// The message of an error R reported itself ("Error in <call> : <msg>" or "Error: <msg>").
fn buffer_message(text: &str) -> String {
    let t = text.trim_end();
    let rest = t
        .strip_prefix("Error in ")
        .and_then(|r| r.split_once(" : ").map(|(_, m)| m));
    rest.or_else(|| t.strip_prefix("Error: "))
        .unwrap_or(t)
        .to_owned()
}

/// The package objects an evaluation uses (namespace objects: alive while it is loaded).
#[derive(Clone, Copy)]
struct Kit {
    evalcall: SEXP,
    trace_fn: SEXP,
    error_fn: SEXP,
    interrupt: SEXP,
}

unsafe fn kit(ns: SEXP) -> RResult<Kit> {
    if let Some(k) = KIT.with(Cell::get) {
        return Ok(k);
    }
    let k = Kit {
        evalcall: ns_get(ns, c".evalcall")?,
        trace_fn: ns_get(ns, c".stack_trace")?,
        error_fn: ns_get(ns, c".mirai_error")?,
        interrupt: ns_get(ns, c".miraiInterrupt")?,
    };
    for x in [k.evalcall, k.trace_fn, k.error_fn, k.interrupt] {
        R_PreserveObject(x);
    }
    KIT.with(|c| c.set(Some(k)));
    Ok(k)
}

/// `.mirai_error(cond, trace)`, or a minimal miraiError if that fails.
unsafe fn mirai_error_value(k: &Kit, cond: SEXP, trace: SEXP) -> SEXP {
    let mut p = Protector::new();
    let call = p.protect(Rf_lang3(k.error_fn, cond, trace));
    match protect(|| Rf_eval(call, R_BaseEnv)) {
        Ok(v) => v,
        Err(_) => mirai_error(&condition_message(cond)),
    }
}

/// Evaluates one task body: `args` (a list) and, for a chunk element, `x` as `.x`, in a new
/// environment; the value or an error value. Unprotected result.
unsafe fn eval_one(k: &Kit, s: &Syms, args: SEXP, expr: SEXP, x: Option<SEXP>) -> SEXP {
    let mut p = Protector::new();
    let n = if type_of(args) == SEXPTYPE::VECSXP {
        Rf_xlength(args)
    } else {
        0
    };
    let env = p.protect(R_NewEnv(
        R_GlobalEnv,
        Rboolean::from(n > 16) as i32,
        (n + 2) as i32,
    ));
    assign_all(args, env);
    if let Some(x) = x {
        Rf_defineVar(s.x, x, env);
    }
    Rf_defineVar(s.expr_var, expr, env);
    let frame = p.protect(R_NewEnv(R_BaseEnv, 0, 1));
    Rf_defineVar(s.mirai_var, env, frame);
    match eval_caught(k.evalcall, frame, env, k.trace_fn) {
        Ended::Value(v) => v,
        Ended::Error { cond, trace } => {
            let trace = match &trace {
                Some(t) => t.get(),
                None => p.protect(Rf_allocVector(SEXPTYPE::VECSXP, 0)),
            };
            mirai_error_value(k, cond.get(), trace)
        }
        Ended::Jump(None) => k.interrupt,
        Ended::Jump(Some(text)) => {
            let msg = p.protect(mk_string(&buffer_message(&text)));
            let cond = p.protect(named_list(&[(c"message", msg), (c"call", R_NilValue)]));
            set_class(cond, &[c"simpleError", c"error", c"condition"]);
            let trace = p.protect(Rf_allocVector(SEXPTYPE::VECSXP, 0));
            mirai_error_value(k, cond, trace)
        }
    }
}

/// `.Call` routine: evaluates task `data` (see the module docs). `base` (the cleanup baseline,
/// or `NULL` for no cleanup) and `cleanup` (a function, or `NULL`) are used between the
/// elements of a chunk. `ns` is the package namespace.
pub(crate) fn mirai_eval<'a>(
    s: &'a Scope,
    data: Sexp<'a>,
    base: Sexp<'a>,
    cleanup: Sexp<'a>,
    ns: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let (data, base, cleanup, ns) = (data.raw(), base.raw(), cleanup.raw(), ns.raw());
    // SAFETY: not yet ported to the safe API: a routine runs on R's main thread with
    // live arguments; the body's raw calls keep the rules of `legacy`.
    unsafe {
        legacy(s, || {
            if type_of(data) != SEXPTYPE::VECSXP {
                return Err("`data` must be a mirai task (a list)".into());
            }
            if type_of(ns) != SEXPTYPE::ENVSXP {
                return Err("`ns` must be the package namespace".into());
            }
            let s = syms();
            let k = kit(ns)?;
            let globals = elt(data, s.globals);
            let mut p = Protector::new();
            let mut args = elt(data, s.args);
            if !is_null(args) && type_of(args) != SEXPTYPE::VECSXP {
                let call = p.protect(Rf_lang2(Rf_install(c"as.list".as_ptr()), args));
                args = p.protect(protect(|| Rf_eval(call, R_BaseEnv))?);
            }
            let expr = elt(data, s.expr);
            let map = elt(data, s.map);
            if type_of(map) != SEXPTYPE::VECSXP {
                assign_globals(globals)?;
                let v = eval_one(&k, &s, args, expr, None);
                evaluation_done();
                return Ok(v);
            }
            let seeds = elt(data, s.seeds);
            let n = Rf_xlength(map);
            let out = p.protect(Rf_allocVector(SEXPTYPE::VECSXP, n));
            let clean = !is_null(base) && Rf_isFunction(cleanup) != Rboolean::FALSE;
            let clean_call = if clean {
                p.protect(Rf_lang1(cleanup))
            } else {
                R_NilValue
            };
            for i in 0..n {
                assign_globals(globals)?;
                if type_of(seeds) == SEXPTYPE::VECSXP && i < Rf_xlength(seeds) {
                    let mut q = Protector::new();
                    let seed = q.protect(Rf_allocVector(SEXPTYPE::VECSXP, 1));
                    SET_VECTOR_ELT(seed, 0, VECTOR_ELT(seeds, i));
                    let nm = q.protect(Rf_ScalarString(PRINTNAME(s.seed)));
                    Rf_setAttrib(seed, R_NamesSymbol, nm);
                    assign_globals(seed)?;
                }
                let v = eval_one(&k, &s, args, expr, Some(VECTOR_ELT(map, i)));
                SET_VECTOR_ELT(out, i, v);
                if cancel_seen() {
                    // The whole chunk was cancelled: its host has resolved it already.
                    for j in i + 1..n {
                        SET_VECTOR_ELT(out, j, k.interrupt);
                    }
                    break;
                }
                if clean && i + 1 < n && self::clean(base) {
                    // The cleanup guards itself (errors and interrupts are its own business).
                    let _ = protect(|| Rf_eval(clean_call, R_GlobalEnv));
                }
            }
            evaluation_done();
            Ok(out)
        })
    }
}

/// Whether the global environment's names, the search path or the options differ from the
/// baseline `list(vars, search, opts)`.
unsafe fn dirty(base: SEXP) -> bool {
    if type_of(base) != SEXPTYPE::VECSXP || Rf_xlength(base) < 3 {
        return true;
    }
    new_vars(VECTOR_ELT(base, 0), false)
        || search_changed(VECTOR_ELT(base, 1))
        || options_changed(VECTOR_ELT(base, 2))
}

/// The cleanup's own part for the global environment (new variables are removed here), and
/// whether the rest (search path, options) still needs `.cleanup()`.
unsafe fn clean(base: SEXP) -> bool {
    if type_of(base) != SEXPTYPE::VECSXP || Rf_xlength(base) < 3 {
        return true;
    }
    // New variables are removed here, unless the global environment is locked (R refuses then,
    // and `.cleanup()` reports it its own way).
    let locked = R_EnvironmentIsLocked(R_GlobalEnv) != Rboolean::FALSE;
    let had_new = new_vars(VECTOR_ELT(base, 0), true);
    (had_new && locked)
        || search_changed(VECTOR_ELT(base, 1))
        || options_changed(VECTOR_ELT(base, 2))
}

/// Whether a variable not in the baseline names exists in the global environment; with
/// `remove`, such variables are removed (what `.cleanup()` does with them), and the result says
/// whether there were any.
unsafe fn new_vars(vars: SEXP, remove: bool) -> bool {
    if type_of(vars) != SEXPTYPE::STRSXP {
        return true;
    }
    let mut p = Protector::new();
    let now = p.protect(R_lsInternal3(R_GlobalEnv, Rboolean::TRUE, Rboolean::FALSE));
    let (n, m) = (Rf_xlength(now), Rf_xlength(vars));
    let known: Option<HashSet<usize>> =
        (m > 32).then(|| (0..m).map(|j| STRING_ELT(vars, j) as usize).collect());
    let is_new = |c: SEXP| match &known {
        Some(k) => !k.contains(&(c as usize)),
        None => !(0..m).any(|j| STRING_ELT(vars, j) == c),
    };
    // R would refuse to remove from a locked environment: leave that to `.cleanup()`.
    let remove = remove && R_EnvironmentIsLocked(R_GlobalEnv) == Rboolean::FALSE;
    let mut found = false;
    for i in 0..n {
        let c = STRING_ELT(now, i);
        if is_new(c) {
            found = true;
            if !remove {
                return true;
            }
            R_removeVarFromFrame(Rf_installTrChar(c), R_GlobalEnv);
        }
    }
    found
}

/// `search()` differs from the baseline (checked by walking the environments).
unsafe fn search_changed(search: SEXP) -> bool {
    if type_of(search) != SEXPTYPE::STRSXP {
        return true;
    }
    let m = Rf_xlength(search);
    // search() = ".GlobalEnv", the attached environments' names, "package:base".
    let mut k: R_xlen_t = 1;
    let mut e = ENCLOS(R_GlobalEnv);
    while e != R_BaseEnv && e != R_EmptyEnv {
        if k >= m - 1 {
            return true;
        }
        let name = Rf_getAttrib(e, R_NameSymbol);
        let c = if type_of(name) == SEXPTYPE::STRSXP && Rf_xlength(name) > 0 {
            STRING_ELT(name, 0)
        } else {
            R_NilValue
        };
        if c != STRING_ELT(search, k) {
            // An environment without a name shows as "(unknown)": compare the text then.
            if is_null(c) && char_text(STRING_ELT(search, k)) == "(unknown)" {
                k += 1;
                e = ENCLOS(e);
                continue;
            }
            return true;
        }
        k += 1;
        e = ENCLOS(e);
    }
    k != m - 1
}

/// `.Options` differs from the baseline `as.list(.Options)`: another length, name or value.
unsafe fn options_changed(opts: SEXP) -> bool {
    if type_of(opts) != SEXPTYPE::VECSXP {
        return true;
    }
    let names = Rf_getAttrib(opts, R_NamesSymbol);
    if type_of(names) != SEXPTYPE::STRSXP {
        return Rf_xlength(opts) != 0;
    }
    let mut cell = Rf_findVarInFrame(R_BaseEnv, syms().options);
    let m = Rf_xlength(opts);
    let mut i: R_xlen_t = 0;
    while type_of(cell) == SEXPTYPE::LISTSXP {
        if i >= m
            || CAR(cell) != VECTOR_ELT(opts, i)
            || PRINTNAME(TAG(cell)) != STRING_ELT(names, i)
        {
            return true;
        }
        i += 1;
        cell = CDR(cell);
    }
    i != m
}

/// `.Call` routine: TRUE when the state differs from cleanup baseline `base` (module docs).
pub(crate) fn mirai_dirty<'a>(s: &'a Scope, base: Sexp<'a>) -> RResult<Sexp<'a>> {
    let base = base.raw();
    // SAFETY: not yet ported to the safe API: a routine runs on R's main thread with
    // live arguments; the body's raw calls keep the rules of `legacy`.
    unsafe { legacy(s, || Ok(lgl(dirty(base)))) }
}

/// `.Call` routine: removes the global variables not in cleanup baseline `base`; TRUE when the
/// search path or the options still differ from it (then `.cleanup()` has work to do).
pub(crate) fn mirai_clean<'a>(s: &'a Scope, base: Sexp<'a>) -> RResult<Sexp<'a>> {
    let base = base.raw();
    // SAFETY: not yet ported to the safe API: a routine runs on R's main thread with
    // live arguments; the body's raw calls keep the rules of `legacy`.
    unsafe { legacy(s, || Ok(lgl(clean(base)))) }
}

#[cfg(test)]
mod tests {
    use super::buffer_message;

    #[test]
    fn buffer_message_strips_r_error_prefixes() {
        assert_eq!(buffer_message("Error in f(x) : boom\n"), "boom");
        assert_eq!(
            buffer_message("Error: C stack usage is too close to the limit\n"),
            "C stack usage is too close to the limit"
        );
        assert_eq!(buffer_message("odd"), "odd");
    }
}
