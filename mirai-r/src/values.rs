//! mirai's R values: error values, interrupts and `miraiError`s.

use mirai_rapi::{Scope, Sexp};

/// `structure(code, class = c("errorValue", "try-error"))`, protected by `s`.
pub(crate) fn error_value<'s>(s: &'s Scope<'_>, code: i32) -> Sexp<'s> {
    let v = s.int(code);
    v.set_class(s, &[c"errorValue", c"try-error"]);
    v
}

/// A `miraiInterrupt`: `""` with class `c("miraiInterrupt", "errorValue", "try-error")`.
pub(crate) fn mirai_interrupt<'s>(s: &'s Scope<'_>) -> Sexp<'s> {
    let v = s.string("");
    v.set_class(s, &[c"miraiInterrupt", c"errorValue", c"try-error"]);
    v
}

/// A minimal `miraiError` for failures outside the evaluation (the payload could not be
/// unserialized, the result could not be serialized): `"Error: <msg>"` with `message`,
/// `condition.class` and an empty `stack.trace`.
pub(crate) fn mirai_error<'s>(s: &'s Scope<'_>, msg: &str) -> Sexp<'s> {
    let r = s.r();
    let v = s.string(&format!("Error: {msg}"));
    v.set_attr(r.sym(c"message"), s.string(msg));
    v.set_attr(
        r.sym(c"condition.class"),
        s.cstrings(&[c"simpleError", c"error", c"condition"]),
    );
    v.set_attr(r.sym(c"stack.trace"), s.list(0));
    v.set_class(s, &[c"miraiError", c"errorValue", c"try-error"]);
    v
}
