//! mirai's R values made through the safe API (the raw versions still used by unported
//! modules are in `crate::sexp`).

#![forbid(unsafe_code)]

use mirai_rapi::{Scope, Sexp};

/// `structure(code, class = c("errorValue", "try-error"))`, protected by `s`.
pub(crate) fn error_value<'s>(s: &'s Scope<'_>, code: i32) -> Sexp<'s> {
    let v = s.int(code);
    v.set_class(s, &[c"errorValue", c"try-error"]);
    v
}
