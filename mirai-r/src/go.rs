//! The hot path of `mirai()`: `mirai_go` builds the payload and the keyed mirai in one call
//! when nothing needs the R code (see `crate::aio` for the mirai object itself).

use mirai_rapi::{Binding, Kind, RResult, Scope, Sexp};

use crate::aio::{new_keyed_mirai, profile_symbol_of, statics_of, Statics};

/// A list whose every element has a non-empty name (an empty list counts).
fn all_named(x: Sexp<'_>) -> bool {
    let n = x.len();
    if n == 0 {
        return true;
    }
    let Some(names) = x.names() else {
        return false;
    };
    (0..n).all(|i| {
        names
            .str_elt(i)
            .is_some_and(|c| !c.is_na_string() && c.char_bytes().is_some_and(|b| !b.is_empty()))
    })
}

/// A logical field of a profile: TRUE only for `TRUE`.
fn flag(prof: Sexp<'_>, name: Sexp<'_>) -> bool {
    prof.frame_get(name)
        .and_then(|v| v.lgls())
        .is_some_and(|v| v == [1])
}

/// The value a bare symbol `.expr` stands for when it is bound, as seen from the caller, to a
/// language object (spec §2.1, `.capture` in mirai.R): `Some(expr)` with the value or the
/// symbol itself, `None` when R must decide (an active binding or an unforced promise on the
/// way, whose evaluation could run R code). `frame` is `mirai()`'s frame, whose `.expr`
/// promise knows the caller's environment.
fn capture<'a>(expr: Sexp<'a>, frame: Sexp<'a>, s: &Statics) -> Option<Sexp<'a>> {
    if expr.symbol_name().is_some_and(|n| n.is_empty()) {
        return Some(expr);
    }
    let mut env = frame.frame_get(s.s_expr)?.promise_env()?;
    loop {
        match env.frame_binding(expr) {
            Some(Binding::Active) => return None,
            Some(Binding::Value(mut v)) => {
                if v.kind() == Kind::PROMSXP {
                    v = v.promise_value()?;
                }
                let lang = matches!(v.kind(), Kind::LANGSXP | Kind::SYMSXP | Kind::EXPRSXP);
                return Some(if lang { v } else { expr });
            }
            None => match env.enclosure() {
                Some(e) => env = e,
                None => return Some(expr),
            },
        }
    }
}

/// `.Call` routine: the common case of `mirai()` in one call (see mirai.R). `expr` is the
/// captured expression (`substitute(.expr)`), `globals` `list(...)` or `NULL`, `args` the
/// value of `.args`, then `.timeout`, `.compute`, and `mirai()`'s own frame (for a bare
/// symbol, see [`capture`]). Returns the new mirai, or `NULL` when the call needs the R path:
/// arguments that must be validated or converted there (unnamed `...`, an environment, a
/// non-list `.args`), an unset profile (ephemeral), a sync profile, a memory gate or a seed.
pub(crate) fn mirai_go<'a>(
    sc: &'a Scope,
    expr: Sexp<'a>,
    globals: Sexp<'a>,
    args: Sexp<'a>,
    timeout: Sexp<'a>,
    compute: Sexp<'a>,
    frame: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let none = Ok(Sexp::null());
    let s = statics_of(sc.r())?;
    let expr = if expr.kind() == Kind::SYMSXP {
        if frame.kind() != Kind::ENVSXP {
            return none;
        }
        match capture(expr, frame, &s) {
            Some(e) => e,
            None => return none,
        }
    } else {
        expr
    };
    if !globals.is_null() && (globals.kind() != Kind::VECSXP || !all_named(globals)) {
        return none;
    }
    if !(args.is_null() || (args.kind() == Kind::VECSXP && !args.is_object() && all_named(args))) {
        return none;
    }
    if !timeout.is_null() && !matches!(timeout.kind(), Kind::REALSXP | Kind::INTSXP) {
        return none;
    }
    let name = if compute.is_null() {
        match s.opts.frame_get(s.s_default) {
            Some(n) => n,
            None => return none,
        }
    } else {
        compute
    };
    let name = match name.str_elt(0) {
        Some(c) if name.len() == 1 && !c.is_na_string() => c,
        _ => return none,
    };
    let Some(prof) = profile_symbol_of(sc.r(), name).and_then(|p| s.registry.frame_get(p)) else {
        return none;
    };
    if prof.kind() != Kind::ENVSXP || flag(prof, s.s_sync) || flag(prof, s.s_gate) {
        return none;
    }
    if prof.frame_get(s.s_seed).is_some_and(|seed| !seed.is_null()) {
        return none;
    }
    let host = prof.frame_get(s.s_prof_host).unwrap_or(Sexp::null());
    let hooks = prof.frame_get(s.s_serial).unwrap_or(Sexp::null());
    let timeout = if timeout.is_null() {
        Sexp::null()
    } else {
        match sc.as_reals(timeout) {
            Some(t) => t,
            None => return none,
        }
    };
    // Positional and without empty parts: every queued task keeps its payload, so its size
    // counts (docs/r-bridge.md).
    let has_args = !args.is_null() && !args.is_empty();
    let has_globals = !globals.is_null() && !globals.is_empty();
    let n = if has_args {
        3
    } else if has_globals {
        2
    } else {
        1
    };
    let data = sc.list(n);
    data.set_list_elt(0, expr);
    if n > 1 {
        data.set_list_elt(1, globals);
    }
    if n > 2 {
        data.set_list_elt(2, args);
    }
    new_keyed_mirai(sc, host, data, timeout, hooks)
}
