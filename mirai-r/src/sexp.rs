//! Small helpers over the R C API: argument checking and value construction.
//!
//! All functions here are `unsafe`: they must run on R's main thread with valid SEXPs. Values
//! they return are unprotected unless stated otherwise.

use std::ffi::CStr;
use std::os::raw::c_char;
use std::time::Duration;

use libR_sys::*;

use crate::guard::{Protector, RResult};

/// `TYPEOF(x)`.
pub(crate) unsafe fn type_of(x: SEXP) -> SEXPTYPE {
    TYPEOF(x)
}

/// True if `x` is `NULL`.
pub(crate) unsafe fn is_null(x: SEXP) -> bool {
    type_of(x) == SEXPTYPE::NILSXP
}

/// `inherits(x, what)` for one class name.
pub(crate) unsafe fn inherits(x: SEXP, what: &CStr) -> bool {
    Rf_inherits(x, what.as_ptr()) != Rboolean::FALSE
}

/// The UTF-8 text of a CHARSXP (lossy for invalid bytes).
pub(crate) unsafe fn char_text(c: SEXP) -> String {
    CStr::from_ptr(Rf_translateCharUTF8(c))
        .to_string_lossy()
        .into_owned()
}

/// A character(1), not `NA`.
pub(crate) unsafe fn arg_string(x: SEXP, name: &str) -> RResult<String> {
    if type_of(x) != SEXPTYPE::STRSXP || Rf_xlength(x) != 1 || STRING_ELT(x, 0) == R_NaString {
        return Err(format!("`{name}` must be a single non-NA character string").into());
    }
    Ok(char_text(STRING_ELT(x, 0)))
}

/// A character vector (no `NA`s).
pub(crate) unsafe fn arg_strings(x: SEXP, name: &str) -> RResult<Vec<String>> {
    if is_null(x) {
        return Ok(Vec::new());
    }
    if type_of(x) != SEXPTYPE::STRSXP {
        return Err(format!("`{name}` must be a character vector").into());
    }
    let n = Rf_xlength(x);
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let c = STRING_ELT(x, i);
        if c == R_NaString {
            return Err(format!("`{name}` must not contain NA").into());
        }
        out.push(char_text(c));
    }
    Ok(out)
}

/// A logical(1) (or numeric(1)): `Some(bool)`, or `None` for `NA`.
pub(crate) unsafe fn arg_lgl(x: SEXP, name: &str) -> RResult<Option<bool>> {
    if Rf_xlength(x) == 1 {
        match type_of(x) {
            SEXPTYPE::LGLSXP | SEXPTYPE::INTSXP => {
                let v = *int_or_lgl_ptr(x);
                return Ok(if v == R_NaInt { None } else { Some(v != 0) });
            }
            SEXPTYPE::REALSXP => {
                let v = *REAL(x);
                return Ok(if v.is_nan() { None } else { Some(v != 0.0) });
            }
            _ => {}
        }
    }
    Err(format!("`{name}` must be a single logical value").into())
}

unsafe fn int_or_lgl_ptr(x: SEXP) -> *const i32 {
    if type_of(x) == SEXPTYPE::LGLSXP {
        LOGICAL(x)
    } else {
        INTEGER(x)
    }
}

/// A numeric(1) (integer or double); `NA` becomes NaN.
pub(crate) unsafe fn arg_num(x: SEXP, name: &str) -> RResult<f64> {
    if Rf_xlength(x) == 1 {
        match type_of(x) {
            SEXPTYPE::REALSXP => return Ok(*REAL(x)),
            SEXPTYPE::INTSXP | SEXPTYPE::LGLSXP => {
                let v = *int_or_lgl_ptr(x);
                return Ok(if v == R_NaInt { f64::NAN } else { f64::from(v) });
            }
            _ => {}
        }
    }
    Err(format!("`{name}` must be a single number").into())
}

/// A raw vector's bytes (`NULL` is empty).
pub(crate) unsafe fn arg_raw<'a>(x: SEXP, name: &str) -> RResult<&'a [u8]> {
    match type_of(x) {
        SEXPTYPE::NILSXP => Ok(&[]),
        SEXPTYPE::RAWSXP => Ok(raw_slice(x)),
        _ => Err(format!("`{name}` must be a raw vector or NULL").into()),
    }
}

/// The bytes of a RAWSXP (valid while `x` is protected and unmodified).
pub(crate) unsafe fn raw_slice<'a>(x: SEXP) -> &'a [u8] {
    let n = Rf_xlength(x) as usize;
    if n == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(RAW(x), n)
    }
}

/// A 7-integer L'Ecuyer stream, or `None` for `NULL`.
pub(crate) unsafe fn arg_stream(x: SEXP, name: &str) -> RResult<Option<[i32; 7]>> {
    if is_null(x) {
        return Ok(None);
    }
    let mut out = [0i32; 7];
    if Rf_xlength(x) == 7 {
        match type_of(x) {
            SEXPTYPE::INTSXP => {
                out.copy_from_slice(std::slice::from_raw_parts(INTEGER(x), 7));
                return Ok(Some(out));
            }
            SEXPTYPE::REALSXP => {
                let v = std::slice::from_raw_parts(REAL(x), 7);
                if v.iter()
                    .all(|d| d.is_finite() && d.fract() == 0.0 && d.abs() <= i32::MAX as f64)
                {
                    for (o, d) in out.iter_mut().zip(v) {
                        *o = *d as i32;
                    }
                    return Ok(Some(out));
                }
            }
            _ => {}
        }
    }
    Err(format!("`{name}` must be NULL or an integer vector of length 7").into())
}

/// A closure or other function.
pub(crate) unsafe fn arg_function(x: SEXP, name: &str) -> RResult<SEXP> {
    if Rf_isFunction(x) == Rboolean::FALSE {
        return Err(format!("`{name}` must be a function").into());
    }
    Ok(x)
}

/// Milliseconds as given to a waiting routine: negative, `NA` or infinite means "forever"
/// (`None`).
pub(crate) fn wait_timeout(ms: f64) -> Option<Duration> {
    if ms.is_finite() && ms >= 0.0 {
        // Too large to represent: as good as forever.
        Duration::try_from_secs_f64(ms / 1000.0).ok()
    } else {
        None
    }
}

/// Milliseconds as a limit (`idletime`, `.timeout`): `NA`/`Inf` means none; negative is an error.
pub(crate) fn limit_ms(ms: f64, name: &str) -> Result<Option<Duration>, String> {
    if ms.is_nan() || ms == f64::INFINITY {
        Ok(None)
    } else if ms >= 0.0 {
        Ok(Duration::try_from_secs_f64(ms / 1000.0).ok())
    } else {
        Err(format!(
            "`{name}` must be a non-negative number of milliseconds"
        ))
    }
}

/// A count limit (`maxtasks`): `NA`/`Inf` means none.
pub(crate) fn limit_count(n: f64, name: &str) -> Result<Option<u64>, String> {
    if n.is_nan() || n == f64::INFINITY {
        Ok(None)
    } else if n >= 0.0 {
        Ok(Some(n as u64))
    } else {
        Err(format!("`{name}` must be a non-negative number"))
    }
}

/// A memory budget in bytes: `NA`, `Inf` or `<= 0` means none.
pub(crate) fn memory_budget(bytes: f64) -> Option<u64> {
    if bytes.is_finite() && bytes > 0.0 {
        Some(bytes as u64)
    } else {
        None
    }
}

/// `TRUE`/`FALSE`.
pub(crate) unsafe fn lgl(b: bool) -> SEXP {
    Rf_ScalarLogical(i32::from(b))
}

/// A CHARSXP in UTF-8.
pub(crate) unsafe fn mk_char(s: &str) -> SEXP {
    let len = i32::try_from(s.len()).unwrap_or(i32::MAX);
    // Interior NULs are not representable; R would error, so cut there.
    let cut = s
        .as_bytes()
        .iter()
        .position(|&b| b == 0)
        .map_or(len, |p| p as i32);
    Rf_mkCharLenCE(s.as_ptr() as *const c_char, cut, cetype_t::CE_UTF8)
}

/// A character(1) in UTF-8.
pub(crate) unsafe fn mk_string(s: &str) -> SEXP {
    Rf_ScalarString(mk_char(s))
}

/// A character vector from static C strings.
pub(crate) unsafe fn mk_strings(items: &[&CStr]) -> SEXP {
    let mut p = Protector::new();
    let v = p.protect(Rf_allocVector(SEXPTYPE::STRSXP, items.len() as R_xlen_t));
    for (i, s) in items.iter().enumerate() {
        SET_STRING_ELT(v, i as R_xlen_t, Rf_mkChar(s.as_ptr()));
    }
    v
}

/// A raw vector holding a copy of `bytes`.
pub(crate) unsafe fn mk_raw(bytes: &[u8]) -> SEXP {
    let v = Rf_allocVector(SEXPTYPE::RAWSXP, bytes.len() as R_xlen_t);
    if !bytes.is_empty() {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), RAW(v), bytes.len());
    }
    v
}

/// Sets `class` on `x`.
pub(crate) unsafe fn set_class(x: SEXP, classes: &[&CStr]) {
    let mut p = Protector::new();
    let cls = p.protect(mk_strings(classes));
    Rf_setAttrib(x, R_ClassSymbol, cls);
}

/// Sets attribute `name` on `x`.
pub(crate) unsafe fn set_attr(x: SEXP, name: &CStr, value: SEXP) {
    Rf_setAttrib(x, Rf_install(name.as_ptr()), value);
}

/// `structure(code, class = c("errorValue", "try-error"))`.
pub(crate) unsafe fn error_value(code: i32) -> SEXP {
    let mut p = Protector::new();
    let v = p.protect(Rf_ScalarInteger(code));
    set_class(v, &[c"errorValue", c"try-error"]);
    v
}

/// A `miraiInterrupt`: `""` with class `c("miraiInterrupt", "errorValue", "try-error")`.
pub(crate) unsafe fn mirai_interrupt() -> SEXP {
    let mut p = Protector::new();
    let v = p.protect(mk_string(""));
    set_class(v, &[c"miraiInterrupt", c"errorValue", c"try-error"]);
    v
}

/// A minimal `miraiError` for failures outside the evaluation (the payload could not be
/// unserialized, the result could not be serialized): `"Error: <msg>"` with `message`,
/// `condition.class` and an empty `stack.trace`.
pub(crate) unsafe fn mirai_error(msg: &str) -> SEXP {
    let mut p = Protector::new();
    let v = p.protect(mk_string(&format!("Error: {msg}")));
    set_attr(v, c"message", p.protect(mk_string(msg)));
    set_attr(
        v,
        c"condition.class",
        p.protect(mk_strings(&[c"simpleError", c"error", c"condition"])),
    );
    set_attr(
        v,
        c"stack.trace",
        p.protect(Rf_allocVector(SEXPTYPE::VECSXP, 0)),
    );
    set_class(v, &[c"miraiError", c"errorValue", c"try-error"]);
    v
}

/// The message of a condition object (its `message` element), or a description of it.
pub(crate) unsafe fn condition_message(cond: SEXP) -> String {
    if type_of(cond) == SEXPTYPE::VECSXP {
        let names = Rf_getAttrib(cond, R_NamesSymbol);
        if type_of(names) == SEXPTYPE::STRSXP {
            for i in 0..Rf_xlength(names) {
                if char_text(STRING_ELT(names, i)) == "message" {
                    let m = VECTOR_ELT(cond, i);
                    if type_of(m) == SEXPTYPE::STRSXP && Rf_xlength(m) >= 1 {
                        return char_text(STRING_ELT(m, 0));
                    }
                }
            }
        }
    }
    "an R condition without a message".to_owned()
}

/// A named list from `(name, value)` pairs.
pub(crate) unsafe fn named_list(items: &[(&CStr, SEXP)]) -> SEXP {
    let mut p = Protector::new();
    let list = p.protect(Rf_allocVector(SEXPTYPE::VECSXP, items.len() as R_xlen_t));
    let names = p.protect(Rf_allocVector(SEXPTYPE::STRSXP, items.len() as R_xlen_t));
    for (i, (name, value)) in items.iter().enumerate() {
        SET_VECTOR_ELT(list, i as R_xlen_t, *value);
        SET_STRING_ELT(names, i as R_xlen_t, Rf_mkChar(name.as_ptr()));
    }
    Rf_setAttrib(list, R_NamesSymbol, names);
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_timeout_negative_na_inf_mean_forever() {
        assert_eq!(wait_timeout(-1.0), None);
        assert_eq!(wait_timeout(f64::NAN), None);
        assert_eq!(wait_timeout(f64::INFINITY), None);
        assert_eq!(wait_timeout(0.0), Some(Duration::ZERO));
        assert_eq!(wait_timeout(1500.0), Some(Duration::from_millis(1500)));
        assert_eq!(wait_timeout(1e300), None);
    }

    #[test]
    fn limits_map_inf_and_na_to_none_and_reject_negatives() {
        assert_eq!(limit_ms(f64::INFINITY, "x"), Ok(None));
        assert_eq!(limit_ms(f64::NAN, "x"), Ok(None));
        assert_eq!(limit_ms(250.0, "x"), Ok(Some(Duration::from_millis(250))));
        assert!(limit_ms(-1.0, "idletime")
            .unwrap_err()
            .contains("`idletime`"));
        assert_eq!(limit_count(f64::INFINITY, "m"), Ok(None));
        assert_eq!(limit_count(10.0, "m"), Ok(Some(10)));
        assert!(limit_count(-2.0, "m").is_err());
    }

    #[test]
    fn memory_budget_none_for_na_inf_and_non_positive() {
        assert_eq!(memory_budget(f64::NAN), None);
        assert_eq!(memory_budget(f64::INFINITY), None);
        assert_eq!(memory_budget(0.0), None);
        assert_eq!(memory_budget(-5.0), None);
        assert_eq!(memory_budget(1e6), Some(1_000_000));
    }
}
