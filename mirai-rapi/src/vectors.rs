//! Vectors the rest of the layer does not make or read: logical and complex vectors built from
//! plain data, complex data read as pairs, and character vectors from byte strings.

use std::os::raw::c_char;

use libR_sys::*;

use crate::scope::Scope;
use crate::sexp::{Kind, Sexp};

impl<'p> Scope<'p> {
    /// A logical vector holding `v` (R's representation: 0, 1, `i32::MIN` for `NA`; other
    /// values are stored as given and read as `TRUE`).
    pub fn lgl_vec(&self, v: &[i32]) -> Sexp<'_> {
        // SAFETY: main thread; protected at once; a fresh LGLSXP of v.len() elements written
        // once.
        unsafe {
            let x = self.protect_raw(Rf_allocVector(Kind::LGLSXP, v.len() as R_xlen_t));
            if !v.is_empty() {
                std::ptr::copy_nonoverlapping(v.as_ptr(), LOGICAL(x.raw()), v.len());
            }
            x
        }
    }

    /// A complex vector from `(re, im)` pairs laid out flat (`v.len() / 2` elements).
    pub fn cplx_vec(&self, v: &[f64]) -> Sexp<'_> {
        let n = v.len() / 2;
        // SAFETY: main thread; protected at once; Rcomplex is two f64 (repr(C)), so the
        // fresh CPLXSXP of n elements holds exactly 2n doubles, written once.
        unsafe {
            let x = self.protect_raw(Rf_allocVector(Kind::CPLXSXP, n as R_xlen_t));
            if n > 0 {
                std::ptr::copy_nonoverlapping(v.as_ptr(), COMPLEX(x.raw()) as *mut f64, 2 * n);
            }
            x
        }
    }

    /// A character vector whose elements are the byte strings `items`, marked UTF-8 if valid
    /// UTF-8 and native otherwise (each must hold no NUL byte; an element is cut at one).
    pub fn strings_bytes(&self, items: &[&[u8]]) -> Sexp<'_> {
        let v = self.strings(items.len());
        for (i, b) in items.iter().enumerate() {
            let cut = b.iter().position(|&c| c == 0).unwrap_or(b.len());
            let b = &b[..cut];
            let enc = if std::str::from_utf8(b).is_ok() {
                cetype_t::CE_UTF8
            } else {
                cetype_t::CE_NATIVE
            };
            let len = i32::try_from(b.len()).unwrap_or(i32::MAX);
            // SAFETY: `v` is protected; `len` bytes of `b` are readable; the CHARSXP is
            // stored into `v` at once, before any other allocation.
            unsafe {
                let c = Rf_mkCharLenCE(b.as_ptr() as *const c_char, len, enc);
                SET_STRING_ELT(v.raw(), i as R_xlen_t, c);
            }
        }
        v
    }
}

impl<'a> Sexp<'a> {
    /// The data of a complex vector as flat `(re, im)` pairs.
    pub fn cplx_parts(self) -> Option<&'a [f64]> {
        if self.kind() != Kind::CPLXSXP {
            return None;
        }
        let n = self.len();
        if n == 0 {
            return Some(&[]);
        }
        // SAFETY: checked type; Rcomplex is two f64 (repr(C)); the data lives with the vector.
        Some(unsafe { std::slice::from_raw_parts(COMPLEX(self.raw()) as *const f64, 2 * n) })
    }
}
