//! mirai's values and limits over the R API, and the raw shims still used by modules not yet
//! ported to `mirai_rapi`'s safe API.
//!
//! The `unsafe` functions here must run on R's main thread with valid SEXPs. Values they return
//! are unprotected unless stated otherwise.

// Not yet ported to mirai_rapi's safe API: raw R calls, each under the rules its comments state.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::os::raw::c_char;
use std::time::Duration;

use mirai_rapi::sys::*;
use mirai_rapi::{args, RResult, Scope, Sexp, R};

use crate::handles::is_task_ref;

/// [`is_task_ref`] on a raw SEXP.
pub(crate) unsafe fn is_task(x: SEXP) -> bool {
    is_task_ref(R::assume(), Sexp::from_raw(x))
}

/// Runs a routine body written against the raw API; its raw result becomes a `Sexp` of the
/// call (returned to R with nothing allocated in between).
///
/// # Safety
/// `f` keeps the raw API's rules: main thread, valid and protected SEXPs, jumps confined.
pub(crate) unsafe fn legacy<'a>(
    _s: &'a Scope,
    f: impl FnOnce() -> RResult<SEXP>,
) -> RResult<Sexp<'a>> {
    f().map(|v| Sexp::from_raw(v))
}

/// Counts `PROTECT`s and unprotects them when dropped (the raw API's [`Scope`]).
pub(crate) struct Protector(i32);

impl Protector {
    pub(crate) fn new() -> Self {
        Protector(0)
    }

    /// Protects `x` until this protector is dropped.
    ///
    /// # Safety
    /// `x` must be a valid SEXP; main thread only; protectors must be dropped in reverse
    /// order of creation (they are stack values, so this holds).
    pub(crate) unsafe fn protect(&mut self, x: SEXP) -> SEXP {
        Rf_protect(x);
        self.0 += 1;
        x
    }
}

impl Drop for Protector {
    fn drop(&mut self) {
        if self.0 > 0 {
            // SAFETY: exactly the PROTECTs made through this protector. Jumps that would have
            // reset the protect stack under it never cross it.
            unsafe { Rf_unprotect(self.0) }
        }
    }
}

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
    Sexp::from_raw(x).inherits(what)
}

/// [`args::lgl`] on a raw SEXP.
pub(crate) unsafe fn arg_lgl(x: SEXP, name: &str) -> RResult<Option<bool>> {
    args::lgl(Sexp::from_raw(x), name)
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
