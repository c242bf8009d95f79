//! Environments as a daemon's evaluation uses them: new environments, locks, listing and
//! removing bindings, without running R code.

use libR_sys::*;

use crate::scope::Scope;
use crate::sexp::{Kind, Sexp};

/// What [`Sexp::binding_flags`] tells of a binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BindingFlags {
    /// Locked: assigning to it is an error.
    pub locked: bool,
    /// Active: reading or assigning it calls R code.
    pub active: bool,
}

impl<'p> Scope<'p> {
    /// A new environment enclosed by `parent`, hashed if `hash`, with room for about `size`
    /// bindings; `None` if `parent` is not an environment.
    pub fn new_env(&self, parent: Sexp<'_>, hash: bool, size: usize) -> Option<Sexp<'_>> {
        if parent.kind() != Kind::ENVSXP {
            return None;
        }
        let size = i32::try_from(size).unwrap_or(i32::MAX).max(1);
        // SAFETY: main thread; an environment as the enclosure; protected at once.
        Some(unsafe { self.protect_raw(R_NewEnv(parent.raw(), i32::from(hash), size)) })
    }

    /// The names of the bindings of environment `env` (`ls(env, all.names = all, sorted =
    /// sorted)`), or `None` if `env` is not an environment. Active bindings are listed, not
    /// called.
    pub fn binding_names(&self, env: Sexp<'_>, all: bool, sorted: bool) -> Option<Sexp<'_>> {
        if env.kind() != Kind::ENVSXP {
            return None;
        }
        // SAFETY: main thread, an environment; R_lsInternal3 only reads the frame and
        // allocates the result, protected at once.
        Some(unsafe {
            self.protect_raw(R_lsInternal3(
                env.raw(),
                Rboolean::from(all),
                Rboolean::from(sorted),
            ))
        })
    }
}

impl<'a> Sexp<'a> {
    /// True for a locked environment (no binding can be added or removed).
    pub fn env_is_locked(self) -> bool {
        // SAFETY: checked type; a read.
        self.kind() == Kind::ENVSXP
            && unsafe { R_EnvironmentIsLocked(self.raw()) } != Rboolean::FALSE
    }

    /// What the binding of symbol `sym` in environment `self`'s own frame is, without reading
    /// it; `None` if there is none (or `self` is not an environment, `sym` not a symbol).
    pub fn binding_flags(self, sym: Sexp<'_>) -> Option<BindingFlags> {
        if self.kind() != Kind::ENVSXP || sym.kind() != Kind::SYMSXP {
            return None;
        }
        // SAFETY: checked types; R_BindingIsLocked and R_BindingIsActive are asked only for an
        // existing binding (they error otherwise); all three are reads.
        unsafe {
            if R_existsVarInFrame(self.raw(), sym.raw()) == Rboolean::FALSE {
                return None;
            }
            Some(BindingFlags {
                locked: R_BindingIsLocked(sym.raw(), self.raw()) != Rboolean::FALSE,
                active: R_BindingIsActive(sym.raw(), self.raw()) != Rboolean::FALSE,
            })
        }
    }

    /// Removes the binding of `sym` from environment `self`'s own frame; false (nothing done)
    /// if `self` is not an unlocked environment or `sym` not a symbol. Removing an absent
    /// binding does nothing.
    pub fn remove_binding(self, sym: Sexp<'_>) -> bool {
        if self.kind() != Kind::ENVSXP || sym.kind() != Kind::SYMSXP || self.env_is_locked() {
            return false;
        }
        // SAFETY: an unlocked environment and a symbol (checked), for which
        // R_removeVarFromFrame raises no error; it calls no R code and allocates nothing.
        unsafe { R_removeVarFromFrame(sym.raw(), self.raw()) };
        true
    }
}
