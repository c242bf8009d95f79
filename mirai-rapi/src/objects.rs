//! Environments as objects: new environments (optionally without an enclosure), closures built
//! from parts, active bindings, and a few calls into R's C API that such objects need (R's
//! random number stream). For packages whose R objects are environments with active bindings
//! (nanonext's Aios).

use libR_sys::*;

use crate::scope::Scope;
use crate::sexp::{Kind, Sexp};
use crate::token::R;

// Exported by libR.so and declared in Rinternals.h, but not bound by libR-sys for R 4.2.
#[allow(improper_ctypes)]
extern "C" {
    fn SET_ENCLOS(x: SEXP, v: SEXP);
}

impl<'p> Scope<'p> {
    /// A new, empty, unhashed environment whose enclosure is `enclos`; `None` gives an
    /// environment with no enclosure at all (`parent.env()` is `NULL`), which R code cannot
    /// make: symbols are never looked up through it, only its own bindings are read.
    pub fn new_object_env(&self, enclos: Option<Sexp<'_>>, size: usize) -> Sexp<'_> {
        let e = enclos.filter(|e| e.kind() == Kind::ENVSXP);
        let size = i32::try_from(size).unwrap_or(i32::MAX);
        // SAFETY: main thread (a scope exists only there); R_NewEnv with hash = 0 only
        // allocates the environment (any enclosure value is stored as is); protected at once.
        unsafe {
            let enclos = e.map_or(R_NilValue, |e| e.raw());
            self.protect_raw(R_NewEnv(enclos, 0, size))
        }
    }

    /// A closure `function() body` whose environment is `env` (an environment, else the base
    /// environment).
    pub fn closure0(&self, body: Sexp<'_>, env: Sexp<'_>) -> Sexp<'_> {
        let env = if env.kind() == Kind::ENVSXP {
            env
        } else {
            self.r().base_env()
        };
        // SAFETY: main thread; the fresh closure is protected at once, then filled with live
        // objects (the setters do not allocate).
        unsafe {
            let f = self.protect_raw(Rf_allocSExp(Kind::CLOSXP));
            crate::ffi::SET_FORMALS(f.raw(), R_NilValue);
            crate::ffi::SET_BODY(f.raw(), body.raw());
            crate::ffi::SET_CLOENV(f.raw(), env.raw());
            f
        }
    }
}

impl<'a> Sexp<'a> {
    /// Makes `sym` an active binding of environment `self` calling closure `fun` on every
    /// read. Refused (false) when `self` is not an environment, `fun` not a closure, `sym` not
    /// a symbol, `self` is locked, or `sym` is already bound there to a plain value (R would
    /// raise an error).
    pub fn make_active_binding(self, sym: Sexp<'_>, fun: Sexp<'_>) -> bool {
        if self.kind() != Kind::ENVSXP || fun.kind() != Kind::CLOSXP || sym.kind() != Kind::SYMSXP {
            return false;
        }
        // SAFETY: checked types; the checks below are the conditions under which
        // R_MakeActiveBinding raises an error, so it does not; it may allocate a frame cell
        // while all three stay reachable.
        unsafe {
            if R_EnvironmentIsLocked(self.raw()) != Rboolean::FALSE {
                return false;
            }
            if R_existsVarInFrame(self.raw(), sym.raw()) != Rboolean::FALSE
                && R_BindingIsActive(sym.raw(), self.raw()) == Rboolean::FALSE
            {
                return false;
            }
            R_MakeActiveBinding(sym.raw(), fun.raw(), self.raw());
        }
        true
    }

    /// Sets the enclosure of environment `self` to environment `enclos` (ignored unless both
    /// are environments, or `self` is one of R's special environments).
    pub fn set_enclosure(self, enclos: Sexp<'_>) {
        if self.kind() != Kind::ENVSXP || enclos.kind() != Kind::ENVSXP {
            return;
        }
        // SAFETY: reads of R's permanent environments.
        let special =
            unsafe { [R_GlobalEnv, R_BaseEnv, R_EmptyEnv, R_BaseNamespace].contains(&self.raw()) };
        if !special {
            // SAFETY: two live environments; the setter does not allocate.
            unsafe { SET_ENCLOS(self.raw(), enclos.raw()) };
        }
    }

    /// Whether environment `self` has a binding of `sym` in its own frame (without reading
    /// it: an active binding is not called).
    pub fn has_binding(self, sym: Sexp<'_>) -> bool {
        if self.kind() != Kind::ENVSXP || sym.kind() != Kind::SYMSXP {
            return false;
        }
        // SAFETY: an environment and a symbol; a read.
        unsafe { R_existsVarInFrame(self.raw(), sym.raw()) != Rboolean::FALSE }
    }
}

impl R {
    /// Draws one exponential variate from R's random number stream (`rexp(1)`), updating
    /// `.Random.seed`; an error R raises for a corrupt `.Random.seed` is caught.
    pub fn exp_rand(self) -> Result<f64, crate::guard::Caught> {
        let mut v = 0.0;
        // SAFETY: main thread (token); the closure owns nothing and calls R's RNG functions,
        // whose errors are confined by protect_raw.
        unsafe {
            crate::guard::protect_raw(|| {
                GetRNGstate();
                v = exp_rand();
                PutRNGstate();
                R_NilValue
            })?;
        }
        Ok(v)
    }
}
