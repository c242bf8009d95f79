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

use std::cell::Cell;
use std::collections::HashSet;
use std::ffi::CStr;

use mirai_rapi::{error_buffer, Binding, Caught, Kind, Preserved, RResult, Scope, Sexp, R};

use crate::cancel::{cancel_seen, evaluation_done};
use crate::values::mirai_error;

/// The symbols an evaluation uses (permanent), looked up once.
#[derive(Clone, Copy)]
struct Syms {
    x: Sexp<'static>,
    expr_var: Sexp<'static>,
    mirai_var: Sexp<'static>,
    options: Sexp<'static>,
    name: Sexp<'static>,
    as_list: Sexp<'static>,
    list2env: Sexp<'static>,
    /// The CHARSXPs of `expr`, `globals`, `args`, `map`, `seeds` (addresses: R caches them).
    part_names: [usize; 5],
}

thread_local! {
    static SYMS: Cell<Option<Syms>> = const { Cell::new(None) };
    static KIT: Cell<Option<&'static Kit>> = const { Cell::new(None) };
}

fn syms(r: R) -> Syms {
    if let Some(s) = SYMS.with(Cell::get) {
        return s;
    }
    let s = Syms {
        x: r.sym(c".x"),
        expr_var: r.sym(c"._expr_."),
        mirai_var: r.sym(c"._mirai_."),
        options: r.sym(c".Options"),
        name: r.sym(c"name"),
        as_list: r.sym(c"as.list"),
        list2env: r.sym(c"list2env"),
        part_names: [c"expr", c"globals", c"args", c"map", c"seeds"]
            .map(|n| r.sym(n).printname().map_or(0, |c| c.addr())),
    };
    SYMS.with(|c| c.set(Some(s)));
    s
}

/// A namespace object by name (set-up only), preserved.
fn ns_get(s: &Scope<'_>, ns: Sexp<'_>, name: &CStr) -> RResult<Preserved> {
    let r = s.r();
    let missing = || {
        format!(
            "mirai: `{}` not found in the package namespace",
            name.to_string_lossy()
        )
    };
    let Some(Binding::Value(v)) = ns.frame_binding(r.sym(name)) else {
        return Err(missing().into());
    };
    if v.kind() == Kind::PROMSXP {
        // Lazy-loaded: forcing reads the package's database, confined like any R code.
        let q = s.child();
        let forced = q.eval(v, r.base_env())?;
        return Ok(Preserved::new(r, forced));
    }
    Ok(Preserved::new(r, v))
}

/// The parts of a task payload (`NULL` when absent).
#[derive(Clone, Copy)]
struct Parts<'a> {
    expr: Sexp<'a>,
    globals: Sexp<'a>,
    args: Sexp<'a>,
    map: Sexp<'a>,
    seeds: Sexp<'a>,
}

/// The parts of payload `x`, a list, read in one pass: by name (the first of each), or, for a
/// payload without names, by position: `list(expr, globals, args)`, trailing parts left out.
fn parts<'a>(x: Sexp<'a>, sy: &Syms) -> Parts<'a> {
    let mut p = Parts {
        expr: Sexp::null(),
        globals: Sexp::null(),
        args: Sexp::null(),
        map: Sexp::null(),
        seeds: Sexp::null(),
    };
    let Some(names) = x.names() else {
        let mut it = x.list_elts();
        for slot in [&mut p.expr, &mut p.globals, &mut p.args] {
            match it.next() {
                Some(v) => *slot = v,
                None => break,
            }
        }
        return p;
    };
    let mut found = [false; 5];
    for (c, v) in names.str_elts().zip(x.list_elts()) {
        let Some(k) = sy.part_names.iter().position(|&n| n == c.addr()) else {
            continue;
        };
        if !found[k] {
            found[k] = true;
            *[
                &mut p.expr,
                &mut p.globals,
                &mut p.args,
                &mut p.map,
                &mut p.seeds,
            ][k] = v;
        }
    }
    p
}

/// The symbols of the usable names of list `vals` (as `list2env()` takes them: `NA` and `""`
/// are skipped), with their values.
fn named_values<'a>(r: R, vals: Sexp<'a>) -> impl Iterator<Item = (Sexp<'static>, Sexp<'a>)> {
    let names = if vals.kind() == Kind::VECSXP {
        vals.names()
    } else {
        None
    };
    names
        .into_iter()
        .flat_map(|n| n.str_elts())
        .zip(vals.list_elts())
        .filter(|(nm, _)| !nm.is_empty() && !nm.is_na_string())
        .filter_map(move |(nm, v)| Some((r.install_char(nm)?, v)))
}

/// Assigns every named element of list `vals` in `env`, an environment this module made
/// (as `list2env()`); unnamed ones are skipped. See [`assign_globals`] for the global
/// environment.
fn assign_all(r: R, vals: Sexp<'_>, env: Sexp<'_>) {
    for (sym, v) in named_values(r, vals) {
        env.define(sym, v);
    }
}

/// Assigns the task's globals in the global environment. Where R would refuse (a locked
/// environment or binding) or run R code (an active binding), R's own `list2env()` does it, so
/// that its error comes out as it would have (confined, then raised by the routine).
fn assign_globals(s: &Scope<'_>, vals: Sexp<'_>) -> RResult<()> {
    if vals.kind() != Kind::VECSXP || vals.is_empty() {
        return Ok(());
    }
    let r = s.r();
    let g = r.global_env();
    let careful = g.env_is_locked()
        || named_values(r, vals)
            .any(|(sym, _)| g.binding_flags(sym).is_some_and(|f| f.locked || f.active));
    if !careful {
        assign_all(r, vals, g);
        return Ok(());
    }
    let q = s.child();
    let call = q.lang(syms(r).list2env, &[vals, g]);
    q.eval(call, r.base_env())?;
    Ok(())
}

/// The package objects an evaluation uses (preserved for the life of the process).
struct Kit {
    evalcall: Preserved,
    trace_fn: Preserved,
    error_fn: Preserved,
    interrupt: Preserved,
}

fn kit(s: &Scope<'_>, ns: Sexp<'_>) -> RResult<&'static Kit> {
    if let Some(k) = KIT.with(Cell::get) {
        return Ok(k);
    }
    let k: &'static Kit = Box::leak(Box::new(Kit {
        evalcall: ns_get(s, ns, c".evalcall")?,
        trace_fn: ns_get(s, ns, c".stack_trace")?,
        error_fn: ns_get(s, ns, c".mirai_error")?,
        interrupt: ns_get(s, ns, c".miraiInterrupt")?,
    }));
    KIT.with(|c| c.set(Some(k)));
    Ok(k)
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

/// `.mirai_error(cond, trace)`, or a minimal miraiError if that fails.
fn mirai_error_value<'s>(s: &'s Scope<'_>, k: &Kit, cond: Sexp<'_>, trace: Sexp<'_>) -> Sexp<'s> {
    let call = s.lang(k.error_fn.sexp(), &[cond, trace]);
    match s.eval(call, s.r().base_env()) {
        Ok(v) => v,
        Err(_) => mirai_error(s, &cond.condition_message()),
    }
}

/// Evaluates one task body: `args` (a list) and, for a chunk element, `x` as `.x`, in a new
/// environment (see the module docs); the value or an error value, protected by `s`.
fn eval_one<'s>(
    s: &'s Scope<'_>,
    k: &'static Kit,
    sy: &Syms,
    args: Sexp<'_>,
    expr: Sexp<'_>,
    x: Option<Sexp<'_>>,
) -> Sexp<'s> {
    let r = s.r();
    let n = if args.kind() == Kind::VECSXP {
        args.len()
    } else {
        0
    };
    let (Some(env), Some(frame)) = (
        s.new_env(r.global_env(), n > 16, n + 2),
        s.new_env(r.base_env(), false, 1),
    ) else {
        return mirai_error(s, "the evaluation environment could not be made");
    };
    assign_all(r, args, env);
    if let Some(x) = x {
        env.define(sy.x, x);
    }
    env.define(sy.expr_var, expr);
    frame.define(sy.mirai_var, env);
    let before = error_buffer(r);
    let mut trace: Option<Preserved> = None;
    let ended = s.eval_traced(k.evalcall.sexp(), frame, &mut |q, _cond| {
        // Still at the point of the error: the frames are there to be listed.
        let call = q.lang(k.trace_fn.sexp(), &[env]);
        if let Ok(t) = q.eval(call, q.r().base_env()) {
            trace = Some(Preserved::new(q.r(), t));
        }
    });
    match ended {
        Ok(v) => v,
        Err(Caught::Error(cond)) => {
            let trace = match &trace {
                Some(t) => s.protect(t.sexp()),
                None => s.list(0),
            };
            mirai_error_value(s, k, cond.sexp(), trace)
        }
        Err(Caught::Jump) => {
            // No error condition reached the handler: an interrupt, or an error raised while
            // calling handlers are off (C stack overflow), whose message R left in its buffer.
            let after = error_buffer(r);
            if after == before || after.is_empty() {
                return s.protect(k.interrupt.sexp());
            }
            let text = String::from_utf8_lossy(&after);
            let msg = s.string(&buffer_message(&text));
            let cond = s.named_list(&[(c"message", msg), (c"call", Sexp::null())]);
            cond.set_class(s, &[c"simpleError", c"error", c"condition"]);
            mirai_error_value(s, k, cond, s.list(0))
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
    if data.kind() != Kind::VECSXP {
        return Err("`data` must be a mirai task (a list)".into());
    }
    if ns.kind() != Kind::ENVSXP {
        return Err("`ns` must be the package namespace".into());
    }
    let r = s.r();
    let sy = syms(r);
    let k = kit(s, ns)?;
    let p = parts(data, &sy);
    let (globals, expr, map, seeds) = (p.globals, p.expr, p.map, p.seeds);
    let mut args = p.args;
    if !args.is_null() && args.kind() != Kind::VECSXP {
        let call = s.lang(sy.as_list, &[args]);
        args = s.eval(call, r.base_env())?;
    }
    if map.kind() != Kind::VECSXP {
        assign_globals(s, globals)?;
        let v = eval_one(s, k, &sy, args, expr, None);
        evaluation_done();
        return Ok(v);
    }
    let n = map.len();
    let out = s.list(n);
    let clean = !base.is_null() && cleanup.is_function();
    let clean_call = if clean {
        s.lang(cleanup, &[])
    } else {
        Sexp::null()
    };
    for (i, x) in map.list_elts().enumerate() {
        let q = s.child();
        assign_globals(&q, globals)?;
        if let Some(seed) = seeds.list_elt(i).filter(|_| seeds.kind() == Kind::VECSXP) {
            let seed = q.named_list(&[(c".Random.seed", seed)]);
            assign_globals(&q, seed)?;
        }
        let v = eval_one(&q, k, &sy, args, expr, Some(x));
        out.set_list_elt(i, v);
        if cancel_seen() {
            // The whole chunk was cancelled: its host has resolved it already.
            for j in i + 1..n {
                out.set_list_elt(j, k.interrupt.sexp());
            }
            break;
        }
        if clean && i + 1 < n && clean_globals(&q, base) {
            // The cleanup guards itself (errors and interrupts are its own business).
            let _ = q.eval(clean_call, r.global_env());
        }
    }
    evaluation_done();
    Ok(out)
}

/// Whether the global environment's names, the search path or the options differ from the
/// baseline `list(vars, search, opts)`.
fn dirty(s: &Scope<'_>, base: Sexp<'_>) -> bool {
    let part = |k| base.list_elt(k).unwrap_or(Sexp::null());
    if base.kind() != Kind::VECSXP || base.len() < 3 {
        return true;
    }
    new_vars(s, part(0), false) || search_changed(s.r(), part(1)) || options_changed(s.r(), part(2))
}

/// The cleanup's own part for the global environment (new variables are removed here), and
/// whether the rest (search path, options) still needs `.cleanup()`.
fn clean_globals(s: &Scope<'_>, base: Sexp<'_>) -> bool {
    let part = |k| base.list_elt(k).unwrap_or(Sexp::null());
    if base.kind() != Kind::VECSXP || base.len() < 3 {
        return true;
    }
    // New variables are removed here, unless the global environment is locked (R refuses then,
    // and `.cleanup()` reports it its own way).
    let locked = s.r().global_env().env_is_locked();
    let had_new = new_vars(s, part(0), true);
    (had_new && locked) || search_changed(s.r(), part(1)) || options_changed(s.r(), part(2))
}

/// Whether a variable not in the baseline names exists in the global environment; with
/// `remove`, such variables are removed (what `.cleanup()` does with them), and the result says
/// whether there were any.
fn new_vars(s: &Scope<'_>, vars: Sexp<'_>, remove: bool) -> bool {
    if vars.kind() != Kind::STRSXP {
        return true;
    }
    let r = s.r();
    let g = r.global_env();
    let q = s.child();
    let Some(now) = q.binding_names(g, true, false) else {
        return true;
    };
    let known: Option<HashSet<usize>> =
        (vars.len() > 32).then(|| vars.str_elts().map(|c| c.addr()).collect());
    let is_new = |c: Sexp<'_>| match &known {
        Some(k) => !k.contains(&c.addr()),
        None => !vars.str_elts().any(|v| v.addr() == c.addr()),
    };
    // R would refuse to remove from a locked environment: leave that to `.cleanup()`.
    let remove = remove && !g.env_is_locked();
    let mut found = false;
    for c in now.str_elts() {
        if is_new(c) {
            found = true;
            if !remove {
                return true;
            }
            if let Some(sym) = r.install_char(c) {
                g.remove_binding(sym);
            }
        }
    }
    found
}

/// `search()` differs from the baseline (checked by walking the environments).
fn search_changed(r: R, search: Sexp<'_>) -> bool {
    if search.kind() != Kind::STRSXP {
        return true;
    }
    // search() = ".GlobalEnv", the attached environments' names, "package:base".
    let last = search.len() as isize - 1;
    let (base, name_sym) = (r.base_env(), syms(r).name);
    let mut k: isize = 1;
    let mut e = r.global_env().enclosure();
    while let Some(env) = e.filter(|&env| env != base) {
        if k >= last {
            return true;
        }
        let name = env.attr(name_sym);
        let c = name.str_elt(0);
        let want = search.str_elt(k as usize);
        if c.map(|c| c.addr()) != want.map(|w| w.addr()) {
            // An environment without a name shows as "(unknown)": compare the text then.
            if c.is_none() && want.and_then(|w| w.char_text()).as_deref() == Some("(unknown)") {
                k += 1;
                e = env.enclosure();
                continue;
            }
            return true;
        }
        k += 1;
        e = env.enclosure();
    }
    k != last
}

/// `.Options` differs from the baseline `as.list(.Options)`: another length, name or value.
fn options_changed(r: R, opts: Sexp<'_>) -> bool {
    if opts.kind() != Kind::VECSXP {
        return true;
    }
    let Some(names) = opts.names() else {
        return !opts.is_empty();
    };
    let mut cell = match r.base_env().frame_binding(syms(r).options) {
        Some(Binding::Value(v)) => v,
        _ => Sexp::null(),
    };
    let m = opts.len();
    let mut i = 0;
    while cell.kind() == Kind::LISTSXP {
        let Some((tag, car, cdr)) = cell.cell() else {
            break;
        };
        let same_value = opts.list_elt(i).is_some_and(|v| v.addr() == car.addr());
        let same_name = match (tag.printname(), names.str_elt(i)) {
            (Some(a), Some(b)) => a.addr() == b.addr(),
            _ => false,
        };
        if i >= m || !same_value || !same_name {
            return true;
        }
        i += 1;
        cell = cdr;
    }
    i != m
}

/// `.Call` routine: TRUE when the state differs from cleanup baseline `base` (module docs).
pub(crate) fn mirai_dirty<'a>(s: &'a Scope, base: Sexp<'a>) -> RResult<Sexp<'a>> {
    Ok(s.r().lgl(dirty(s, base)))
}

/// `.Call` routine: removes the global variables not in cleanup baseline `base`; TRUE when the
/// search path or the options still differ from it (then `.cleanup()` has work to do).
pub(crate) fn mirai_clean<'a>(s: &'a Scope, base: Sexp<'a>) -> RResult<Sexp<'a>> {
    Ok(s.r().lgl(clean_globals(s, base)))
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
