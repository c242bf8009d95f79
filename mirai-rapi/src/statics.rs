//! Objects a package makes once and keeps for the whole session: namespaces looked up (with R's
//! errors confined), objects preserved for good, shared values marked immutable, and a scope for
//! code handed only the token (such as the lazy set-up of those objects).

use libR_sys::*;

use crate::guard::{protect_raw, Caught, Preserved};
use crate::scope::Scope;
use crate::sexp::Sexp;
use crate::token::R;

impl<'p> Scope<'p> {
    /// The namespace of package `name` (`getNamespace(name)`: loaded if it is not yet), with
    /// R's errors and interrupts confined; protected by this scope.
    pub fn find_namespace(&self, name: &std::ffi::CStr) -> Result<Sexp<'_>, Caught> {
        // SAFETY: main thread (a scope exists only there). The closure owns nothing; its one
        // protect is balanced on return and reset by the jump R_ToplevelExec confines
        // otherwise. The namespace is protected as soon as it is returned.
        unsafe {
            let ns = protect_raw(|| {
                let n = Rf_protect(Rf_mkString(name.as_ptr()));
                let ns = R_FindNamespace(n);
                Rf_unprotect(1);
                ns
            })?;
            Ok(self.protect_raw(ns))
        }
    }
}

impl Preserved {
    /// Keeps the object for the rest of the session (it is never released), so that it can be
    /// used as a `'static` object, e.g. cached in a `thread_local`.
    pub fn leak(self) -> Sexp<'static> {
        let x = self.into_raw();
        // SAFETY: preserved and never released from here on, so alive for the session.
        unsafe { Sexp::from_raw(x) }
    }
}

impl<'a> Sexp<'a> {
    /// Marks the object as not mutable (`MARK_NOT_MUTABLE`): R code that modifies it modifies a
    /// copy, so that one object can be shared as a constant (e.g. a class vector).
    pub fn mark_not_mutable(self) {
        // SAFETY: a live object; this only sets its reference count/NAMED field to the maximum.
        unsafe { MARK_NOT_MUTABLE(self.raw()) }
    }
}

impl R {
    /// Runs `f` with a scope of its own, for code handed only the token (callbacks, lazy
    /// set-up); what `f` protects through it is unprotected when `f` returns, and no object it
    /// protects can outlive that (the scope's borrow ends with `f`).
    pub fn with_scope<T>(self, f: impl FnOnce(&Scope<'static>) -> T) -> T {
        // SAFETY: main thread (token), inside R (a token is only made there). The scope nests
        // in whatever protects are on R's stack and is dropped before this returns, after any
        // scope `f` made from it.
        let s = unsafe { Scope::root() };
        f(&s)
    }
}
