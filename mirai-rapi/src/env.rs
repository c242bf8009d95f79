//! Reads of environments, bindings, promises and symbols, and R's coercion to double: what
//! code that looks at the caller's frames needs, without evaluating anything.

use libR_sys::*;

use crate::ffi::{PRENV, PRVALUE};
use crate::scope::Scope;
use crate::sexp::{Kind, Sexp};

/// A binding found in an environment's own frame.
#[derive(Clone, Copy)]
pub enum Binding<'a> {
    /// An active binding: reading it would call R code.
    Active,
    /// A plain binding to this value (possibly a promise).
    Value(Sexp<'a>),
}

impl<'a> Sexp<'a> {
    /// The binding of symbol `sym` in environment `self`'s own frame, without calling R code
    /// (an active binding is reported, not read); `None` if unbound or `self` is not an
    /// environment.
    pub fn frame_binding(self, sym: Sexp<'_>) -> Option<Binding<'a>> {
        if self.kind() != Kind::ENVSXP || sym.kind() != Kind::SYMSXP {
            return None;
        }
        // SAFETY: an environment and a symbol (checked); these reads call no R code:
        // R_BindingIsActive is asked only once the binding is known to exist (it errors
        // otherwise), and findVarInFrame reads a non-active binding.
        unsafe {
            if R_existsVarInFrame(self.raw(), sym.raw()) == Rboolean::FALSE {
                return None;
            }
            if R_BindingIsActive(sym.raw(), self.raw()) != Rboolean::FALSE {
                return Some(Binding::Active);
            }
            let v = Rf_findVarInFrame(self.raw(), sym.raw());
            // Bound in the frame: alive while the environment is and the binding stays.
            Some(Binding::Value(Sexp::from_raw(v)))
        }
    }

    /// The enclosing environment of environment `self` (`None` for the empty environment or
    /// anything but an environment).
    pub fn enclosure(self) -> Option<Sexp<'a>> {
        // SAFETY: reading R's permanent empty environment.
        if self.kind() != Kind::ENVSXP || self.raw() == unsafe { R_EmptyEnv } {
            return None;
        }
        // SAFETY: an environment; its enclosure lives while it does.
        Some(unsafe { Sexp::from_raw(ENCLOS(self.raw())) })
    }

    /// The environment of promise `self` while unforced (`None` once forced, or for anything
    /// but a promise).
    pub fn promise_env(self) -> Option<Sexp<'a>> {
        if self.kind() != Kind::PROMSXP {
            return None;
        }
        // SAFETY: a promise; its environment (NULL once forced) lives with it.
        let e = unsafe { Sexp::from_raw(PRENV(self.raw())) };
        (e.kind() == Kind::ENVSXP).then_some(e)
    }

    /// The value of promise `self` once forced (`None` before, or for anything but a promise).
    pub fn promise_value(self) -> Option<Sexp<'a>> {
        if self.kind() != Kind::PROMSXP {
            return None;
        }
        // SAFETY: a promise; its value lives with it; R_UnboundValue is permanent.
        unsafe {
            let v = PRVALUE(self.raw());
            (v != R_UnboundValue).then(|| Sexp::from_raw(v))
        }
    }

    /// The name of symbol `self` as stored (`None` for anything but a symbol).
    pub fn symbol_name(self) -> Option<&'a [u8]> {
        if self.kind() != Kind::SYMSXP {
            return None;
        }
        // SAFETY: a symbol; its print name is a CHARSXP, as permanent as the symbol.
        unsafe { Sexp::from_raw(PRINTNAME(self.raw())) }.char_bytes()
    }
}

impl<'p> Scope<'p> {
    /// `x` as a double vector (itself if it is one), for integer, logical and double vectors;
    /// `None` for anything else (whose coercion could warn or fail).
    pub fn as_reals<'s>(&'s self, x: Sexp<'_>) -> Option<Sexp<'s>> {
        match x.kind() {
            Kind::REALSXP => Some(self.protect(x)),
            Kind::INTSXP | Kind::LGLSXP => {
                // SAFETY: main thread, a live atomic vector, whose coercion to double only
                // allocates; protected at once.
                let v = unsafe { self.protect_raw(Rf_coerceVector(x.raw(), Kind::REALSXP)) };
                Some(v)
            }
            _ => None,
        }
    }
}
