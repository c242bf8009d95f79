//! Error codes as R shows them (spec §1.3): `nng_error()` from the engine's one table
//! (`mirai_proto::ErrorCode`), cut to 39 bytes as upstream does.

use mirai_proto::ErrorCode;
use mirai_rapi::{Kind, RResult, Scope, Sexp};

/// `x[1]` coerced as `as.integer()` would (without its warning): `NA` (`i32::MIN`) for what
/// does not convert, and for an empty vector.
pub(crate) fn as_int(x: Sexp<'_>) -> i32 {
    match x.kind() {
        Kind::INTSXP => x.ints().and_then(|v| v.first().copied()),
        Kind::LGLSXP => x.lgls().and_then(|v| v.first().copied()),
        Kind::REALSXP => x.reals().and_then(|v| v.first()).map(|d| real_to_int(*d)),
        Kind::STRSXP => x
            .str_elt(0)
            .filter(|c| !c.is_na_string())
            .and_then(|c| c.char_text())
            .and_then(|t| t.trim().parse::<f64>().ok())
            .map(real_to_int),
        _ => None,
    }
    .unwrap_or(i32::MIN)
}

/// A double truncated to an integer, `NA` outside the integer range or for `NaN`.
fn real_to_int(d: f64) -> i32 {
    if d.is_nan() || d.trunc() >= 2147483648.0 || d.trunc() <= -2147483648.0 {
        i32::MIN
    } else {
        d.trunc() as i32
    }
}

/// `.Call(nano_nng_error, xc)`: `"<code> | <text>"` for `xc` coerced to integer.
pub(crate) fn nano_nng_error<'a>(s: &'a Scope, xc: Sexp<'a>) -> RResult<Sexp<'a>> {
    Ok(s.string(&ErrorCode::from_code(as_int(xc)).to_string()))
}
