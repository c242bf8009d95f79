//! R's marker objects that a routine may be handed as an argument value.

use libR_sys::*;

use crate::sexp::Sexp;

impl<'a> Sexp<'a> {
    /// Whether `self` is R's missing-argument marker (the empty symbol), as passed by an
    /// argument bound to `substitute()` or `quote(expr = )`.
    pub fn is_missing_arg(self) -> bool {
        // SAFETY: reading R's permanent marker object.
        self.raw() == unsafe { R_MissingArg }
    }
}
