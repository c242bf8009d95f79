//! Typed extraction of routine arguments. Each failure is an [`RError::Msg`] naming the
//! argument as the caller calls it (`name`), in a fixed wording the R tests match.

use crate::guard::{RError, RResult};
use crate::sexp::{Kind, Sexp};

fn err(msg: String) -> RError {
    RError::Msg(msg)
}

/// A character(1), not `NA`.
pub fn string(x: Sexp<'_>, name: &str) -> RResult<String> {
    match x.str_elt(0) {
        Some(c) if x.len() == 1 && !c.is_na_string() => Ok(c.char_text().unwrap_or_default()),
        _ => Err(err(format!(
            "`{name}` must be a single non-NA character string"
        ))),
    }
}

/// A character vector without `NA`s (`NULL` is empty).
pub fn strings(x: Sexp<'_>, name: &str) -> RResult<Vec<String>> {
    if x.is_null() {
        return Ok(Vec::new());
    }
    if x.kind() != Kind::STRSXP {
        return Err(err(format!("`{name}` must be a character vector")));
    }
    (0..x.len())
        .map(|i| match x.str_elt(i) {
            Some(c) if !c.is_na_string() => Ok(c.char_text().unwrap_or_default()),
            _ => Err(err(format!("`{name}` must not contain NA"))),
        })
        .collect()
}

/// A logical(1) (or integer or double of length 1): `Some(bool)`, or `None` for `NA`.
pub fn lgl(x: Sexp<'_>, name: &str) -> RResult<Option<bool>> {
    if x.len() == 1 {
        if let Some(&v) = x.lgls().or_else(|| x.ints()).and_then(|s| s.first()) {
            return Ok((v != i32::MIN).then_some(v != 0));
        }
        if let Some(&v) = x.reals().and_then(|s| s.first()) {
            return Ok((!v.is_nan()).then_some(v != 0.0));
        }
    }
    Err(err(format!("`{name}` must be a single logical value")))
}

/// A numeric(1) (double, integer or logical); `NA` becomes NaN.
pub fn num(x: Sexp<'_>, name: &str) -> RResult<f64> {
    if x.len() == 1 {
        if let Some(&v) = x.reals().and_then(|s| s.first()) {
            return Ok(v);
        }
        if let Some(&v) = x.ints().or_else(|| x.lgls()).and_then(|s| s.first()) {
            return Ok(if v == i32::MIN {
                f64::NAN
            } else {
                f64::from(v)
            });
        }
    }
    Err(err(format!("`{name}` must be a single number")))
}

/// A raw vector's bytes (`NULL` is empty).
pub fn raw<'a>(x: Sexp<'a>, name: &str) -> RResult<&'a [u8]> {
    if x.is_null() {
        return Ok(&[]);
    }
    x.bytes()
        .ok_or_else(|| err(format!("`{name}` must be a raw vector or NULL")))
}

/// Whole numbers that fit an `i32`, from an integer vector or a double vector of whole
/// numbers.
fn whole(v: &[f64]) -> Option<Vec<i32>> {
    v.iter()
        .all(|d| d.is_finite() && d.fract() == 0.0 && d.abs() <= i32::MAX as f64)
        .then(|| v.iter().map(|d| *d as i32).collect())
}

/// A 7-integer L'Ecuyer stream, or `None` for `NULL`.
pub fn stream(x: Sexp<'_>, name: &str) -> RResult<Option<[i32; 7]>> {
    if x.is_null() {
        return Ok(None);
    }
    let v = match (x.ints(), x.reals()) {
        (Some(i), _) if i.len() == 7 => Some(i.to_vec()),
        (_, Some(d)) if d.len() == 7 => whole(d),
        _ => None,
    };
    match v.and_then(|v| <[i32; 7]>::try_from(v).ok()) {
        Some(s) => Ok(Some(s)),
        None => Err(err(format!(
            "`{name}` must be NULL or an integer vector of length 7"
        ))),
    }
}

/// An integer vector without `NA` (or doubles holding whole numbers), or `None` for `NULL`.
pub fn ints(x: Sexp<'_>, name: &str) -> RResult<Option<Vec<i32>>> {
    if x.is_null() {
        return Ok(None);
    }
    if let Some(v) = x.ints() {
        if v.contains(&i32::MIN) {
            return Err(err(format!("`{name}` must not contain NA")));
        }
        return Ok(Some(v.to_vec()));
    }
    if let Some(d) = x.reals() {
        return whole(d)
            .map(Some)
            .ok_or_else(|| err(format!("`{name}` must hold whole numbers")));
    }
    Err(err(format!("`{name}` must be an integer vector or NULL")))
}

/// A closure or other function.
pub fn function<'a>(x: Sexp<'a>, name: &str) -> RResult<Sexp<'a>> {
    if !x.is_function() {
        return Err(err(format!("`{name}` must be a function")));
    }
    Ok(x)
}

/// An environment.
pub fn env<'a>(x: Sexp<'a>, what: &str) -> RResult<Sexp<'a>> {
    if x.kind() != Kind::ENVSXP {
        return Err(err(format!("`{what}` must be an environment")));
    }
    Ok(x)
}

/// `NULL` as `None`, anything else through `f`.
pub fn optional<'a, T>(x: Sexp<'a>, f: impl FnOnce(Sexp<'a>) -> RResult<T>) -> RResult<Option<T>> {
    if x.is_null() {
        Ok(None)
    } else {
        f(x).map(Some)
    }
}
