//! The hot path of `mirai()`: `mirai_go` builds the payload and the keyed mirai in one call
//! when nothing needs the R code (see `crate::aio` for the mirai object itself).

// Not yet ported to mirai_rapi's safe API: raw R calls, each under the rules its comments state.
#![allow(unsafe_code)]

use mirai_rapi::ffi::{PRENV, PRVALUE};
use mirai_rapi::sys::*;
use mirai_rapi::{RResult, Scope, Sexp};

use crate::aio::{new_keyed_mirai, profile_symbol, statics, Statics};
use crate::sexp::*;

/// A list whose every element has a non-empty name (an empty list counts).
unsafe fn all_named(x: SEXP) -> bool {
    let n = Rf_xlength(x);
    if n == 0 {
        return true;
    }
    let names = Rf_getAttrib(x, R_NamesSymbol);
    if type_of(names) != SEXPTYPE::STRSXP {
        return false;
    }
    (0..n).all(|i| {
        let c = STRING_ELT(names, i);
        c != R_NaString && *R_CHAR(c) != 0
    })
}

/// A logical field of a profile: TRUE only for `TRUE`.
unsafe fn flag(prof: SEXP, name: SEXP) -> bool {
    let v = Rf_findVarInFrame(prof, name);
    type_of(v) == SEXPTYPE::LGLSXP && Rf_xlength(v) == 1 && *LOGICAL(v) == 1
}

/// The value a bare symbol `.expr` stands for when it is bound, as seen from the caller, to a
/// language object (spec §2.1, `.capture` in mirai.R): `Some(expr)` with the value or the
/// symbol itself, `None` when R must decide (an active binding or an unforced promise on the
/// way, whose evaluation could run R code). `frame` is `mirai()`'s frame, whose `.expr`
/// promise knows the caller's environment.
unsafe fn capture(expr: SEXP, frame: SEXP, s: &Statics) -> Option<SEXP> {
    if *R_CHAR(PRINTNAME(expr)) == 0 {
        return Some(expr);
    }
    let prom = Rf_findVarInFrame(frame, s.s_expr);
    if type_of(prom) != SEXPTYPE::PROMSXP {
        return None;
    }
    let mut env = PRENV(prom);
    if type_of(env) != SEXPTYPE::ENVSXP {
        return None;
    }
    while env != R_EmptyEnv {
        if R_existsVarInFrame(env, expr) != Rboolean::FALSE {
            if R_BindingIsActive(expr, env) != Rboolean::FALSE {
                return None;
            }
            let mut v = Rf_findVarInFrame(env, expr);
            if type_of(v) == SEXPTYPE::PROMSXP {
                if PRVALUE(v) == R_UnboundValue {
                    return None;
                }
                v = PRVALUE(v);
            }
            let lang = matches!(
                type_of(v),
                SEXPTYPE::LANGSXP | SEXPTYPE::SYMSXP | SEXPTYPE::EXPRSXP
            );
            return Some(if lang { v } else { expr });
        }
        env = ENCLOS(env);
    }
    Some(expr)
}

/// `.Call` routine: the common case of `mirai()` in one call (see mirai.R). `expr` is the
/// captured expression (`substitute(.expr)`), `globals` `list(...)` or `NULL`, `args` the
/// value of `.args`, then `.timeout`, `.compute`, and `mirai()`'s own frame (for a bare
/// symbol, see [`capture`]). Returns the new mirai, or `NULL` when the call needs the R path:
/// arguments that must be validated or converted there (unnamed `...`, an environment, a
/// non-list `.args`), an unset profile (ephemeral), a sync profile, a memory gate or a seed.
pub(crate) fn mirai_go<'a>(
    s: &'a Scope,
    expr: Sexp<'a>,
    globals: Sexp<'a>,
    args: Sexp<'a>,
    timeout: Sexp<'a>,
    compute: Sexp<'a>,
    frame: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let (expr, globals, args, timeout, compute, frame) = (
        expr.raw(),
        globals.raw(),
        args.raw(),
        timeout.raw(),
        compute.raw(),
        frame.raw(),
    );
    // SAFETY: not yet ported to the safe API: a routine runs on R's main thread with
    // live arguments; the body's raw calls keep the rules of `legacy`.
    unsafe {
        legacy(s, || {
            let s = statics()?;
            let expr = if type_of(expr) == SEXPTYPE::SYMSXP {
                if type_of(frame) != SEXPTYPE::ENVSXP {
                    return Ok(R_NilValue);
                }
                match capture(expr, frame, &s) {
                    Some(e) => e,
                    None => return Ok(R_NilValue),
                }
            } else {
                expr
            };
            let globals = if is_null(globals) {
                R_NilValue
            } else {
                globals
            };
            if !is_null(globals) && (type_of(globals) != SEXPTYPE::VECSXP || !all_named(globals)) {
                return Ok(R_NilValue);
            }
            if !(is_null(args)
                || (type_of(args) == SEXPTYPE::VECSXP && OBJECT(args) == 0 && all_named(args)))
            {
                return Ok(R_NilValue);
            }
            if !is_null(timeout)
                && !matches!(type_of(timeout), SEXPTYPE::REALSXP | SEXPTYPE::INTSXP)
            {
                return Ok(R_NilValue);
            }
            let name = if is_null(compute) {
                Rf_findVarInFrame(s.opts, s.s_default)
            } else {
                compute
            };
            if type_of(name) != SEXPTYPE::STRSXP
                || Rf_xlength(name) != 1
                || STRING_ELT(name, 0) == R_NaString
            {
                return Ok(R_NilValue);
            }
            let prof = Rf_findVarInFrame(s.registry, profile_symbol(STRING_ELT(name, 0)));
            if type_of(prof) != SEXPTYPE::ENVSXP || flag(prof, s.s_sync) || flag(prof, s.s_gate) {
                return Ok(R_NilValue);
            }
            let seed = Rf_findVarInFrame(prof, s.s_seed);
            if seed != R_UnboundValue && !is_null(seed) {
                return Ok(R_NilValue);
            }
            let host = Rf_findVarInFrame(prof, s.s_prof_host);
            let mut hooks = Rf_findVarInFrame(prof, s.s_serial);
            if hooks == R_UnboundValue {
                hooks = R_NilValue;
            }
            let mut p = Protector::new();
            let timeout = if is_null(timeout) {
                R_NilValue
            } else {
                p.protect(Rf_coerceVector(timeout, SEXPTYPE::REALSXP))
            };
            // Positional and without empty parts: every queued task keeps its payload, so its size
            // counts (docs/r-bridge.md).
            let has_args = !is_null(args) && Rf_xlength(args) > 0;
            let has_globals = !is_null(globals) && Rf_xlength(globals) > 0;
            let n = if has_args {
                3
            } else if has_globals {
                2
            } else {
                1
            };
            let data = p.protect(Rf_allocVector(SEXPTYPE::VECSXP, n));
            SET_VECTOR_ELT(data, 0, expr);
            if n > 1 {
                SET_VECTOR_ELT(data, 1, globals);
            }
            if n > 2 {
                SET_VECTOR_ELT(data, 2, args);
            }
            new_keyed_mirai(host, data, timeout, hooks)
        })
    }
}
