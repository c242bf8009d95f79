//! Building objects field by field, as R's reader does: vectors from their data bytes, strings
//! from bytes in a given encoding, pairlists cell by cell, and the header fields (attributes,
//! general-purpose bits, object bit) set as they were recorded.

use std::os::raw::c_char;

use libR_sys::*;

use crate::ffi::SETLEVELS;
use crate::guard::{protect_raw, Caught};
use crate::scope::Scope;
use crate::sexp::{Kind, Sexp};
use crate::token::R;

/// The encoding a string's bytes are declared in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Encoding {
    /// The session's native encoding.
    Native,
    /// UTF-8.
    Utf8,
    /// Latin-1.
    Latin1,
    /// Bytes, not to be translated.
    Bytes,
}

impl Encoding {
    fn ce(self) -> cetype_t {
        match self {
            Encoding::Native => cetype_t::CE_NATIVE,
            Encoding::Utf8 => cetype_t::CE_UTF8,
            Encoding::Latin1 => cetype_t::CE_LATIN1,
            Encoding::Bytes => cetype_t::CE_BYTES,
        }
    }
}

/// The size of an element of an atomic vector of `kind` whose data is plain bytes.
fn elt_size(kind: Kind) -> Option<usize> {
    match kind {
        Kind::LGLSXP | Kind::INTSXP => Some(4),
        Kind::REALSXP => Some(8),
        Kind::CPLXSXP => Some(16),
        Kind::RAWSXP => Some(1),
        _ => None,
    }
}

/// A CHARSXP of `bytes` (unprotected), or null if R cannot hold them (a NUL, too long).
///
/// # Safety
/// Main thread; the result must be protected or stored before the next allocation.
unsafe fn mk_char_raw(bytes: &[u8], enc: Encoding) -> Option<SEXP> {
    if bytes.contains(&0) {
        return None;
    }
    let n = i32::try_from(bytes.len()).ok()?;
    Some(Rf_mkCharLenCE(bytes.as_ptr() as *const c_char, n, enc.ce()))
}

/// Vectors of more bytes than this are allocated with R's errors confined: a size read from
/// data should fail as a value, not as a jump (smaller ones can only fail when R is out of
/// memory anyway).
const CONFINE_ABOVE: usize = 1 << 20;

impl<'p> Scope<'p> {
    /// A new vector of `kind` and `len` elements of `size` bytes, protected; `None` if R
    /// could not allocate one of more than `CONFINE_ABOVE` bytes.
    ///
    /// # Safety
    /// `kind` is a vector type whose elements R initialises or the caller writes at once.
    unsafe fn alloc_vector(&self, kind: Kind, len: usize, size: usize) -> Option<Sexp<'_>> {
        let n = R_xlen_t::try_from(len).ok()?;
        if len.saturating_mul(size) <= CONFINE_ABOVE {
            return Some(self.protect_raw(Rf_allocVector(kind, n)));
        }
        // The closure owns nothing; the fresh vector is protected before anything else runs.
        let v = protect_raw(|| Rf_allocVector(kind, n)).ok()?;
        Some(self.protect_raw(v))
    }

    /// A raw vector holding a copy of `bytes`, allocated with R's errors confined (for buffers
    /// large enough that R may fail to allocate them): the allocation's error as caught.
    pub fn try_raw(&self, bytes: &[u8]) -> Result<Sexp<'_>, Caught> {
        let n = R_xlen_t::try_from(bytes.len()).unwrap_or(R_xlen_t::MAX);
        // SAFETY: main thread; the closure owns nothing and only allocates; the vector is
        // protected at once and its bytes.len() bytes written once.
        unsafe {
            let v = self.protect_raw(protect_raw(|| Rf_allocVector(Kind::RAWSXP, n))?);
            if !bytes.is_empty() {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), RAW(v.raw()), bytes.len());
            }
            Ok(v)
        }
    }

    /// A logical, integer, double, complex or raw vector of `n` elements whose data is
    /// `bytes` (in memory order); `None` for another `kind` or if `bytes` is not exactly `n`
    /// elements long (or R could not allocate more than 1 MiB).
    pub fn vector_from_bytes(&self, kind: Kind, n: usize, bytes: &[u8]) -> Option<Sexp<'_>> {
        let size = elt_size(kind)?;
        if n.checked_mul(size)? != bytes.len() {
            return None;
        }
        // SAFETY: main thread; an atomic vector, whose data (exactly bytes.len() bytes, of a
        // type every bit pattern is valid for) is written once at once.
        unsafe {
            let v = self.alloc_vector(kind, n, size)?;
            if !bytes.is_empty() {
                std::ptr::copy_nonoverlapping(
                    bytes.as_ptr(),
                    DATAPTR(v.raw()) as *mut u8,
                    bytes.len(),
                );
            }
            Some(v)
        }
    }

    /// A character vector, list or expression vector of `n` elements (`""` for strings,
    /// `NULL` for lists), or `None` for another kind (or if R could not allocate a large one).
    pub fn vector(&self, kind: Kind, n: usize) -> Option<Sexp<'_>> {
        if !matches!(kind, Kind::STRSXP | Kind::VECSXP | Kind::EXPRSXP) {
            return None;
        }
        // SAFETY: main thread; R initialises the elements of these types.
        unsafe { self.alloc_vector(kind, n, std::mem::size_of::<SEXP>()) }
    }

    /// A CHARSXP of `bytes` declared in `enc`; `None` if R cannot hold them (a NUL byte, or
    /// more than 2^31 - 1 bytes).
    pub fn char_from_bytes(&self, bytes: &[u8], enc: Encoding) -> Option<Sexp<'_>> {
        // SAFETY: main thread; protected at once.
        unsafe { mk_char_raw(bytes, enc).map(|c| self.protect_raw(c)) }
    }

    /// A new pairlist cell (or call cell, with `lang`) holding `NULL`s.
    pub fn cell(&self, lang: bool) -> Sexp<'_> {
        // SAFETY: main thread; protected at once.
        unsafe {
            let nil = R_NilValue;
            self.protect_raw(if lang {
                Rf_lcons(nil, nil)
            } else {
                Rf_cons(nil, nil)
            })
        }
    }
}

impl<'a> Sexp<'a> {
    /// Sets element `i` of a character vector to a new CHARSXP of `bytes` in `enc`. False (and
    /// nothing done) if `self` is not a character vector, `i` is out of range or R cannot hold
    /// the bytes.
    pub fn set_str_elt_bytes(self, i: usize, bytes: &[u8], enc: Encoding) -> bool {
        if self.kind() != Kind::STRSXP || i >= self.len() {
            return false;
        }
        // SAFETY: main thread (a Sexp exists only there); checked type and bounds; the new
        // CHARSXP is stored before anything else allocates.
        unsafe {
            match mk_char_raw(bytes, enc) {
                Some(c) => {
                    SET_STRING_ELT(self.raw(), i as R_xlen_t, c);
                    true
                }
                None => false,
            }
        }
    }

    /// Appends a new cell (a call cell with `lang`) holding `NULL`s as the CDR of cell `self`,
    /// replacing its CDR, and returns it: it lives while `self` does. `None` if `self` is not a
    /// pairlist cell or call.
    pub fn push_cell(self, lang: bool) -> Option<Sexp<'a>> {
        self.cell()?;
        // SAFETY: main thread; `self` is a live cell (checked, kept alive by its owner), so the
        // new cell is reachable from the moment it is linked, before any other allocation.
        unsafe {
            let nil = R_NilValue;
            let c = if lang {
                Rf_lcons(nil, nil)
            } else {
                Rf_cons(nil, nil)
            };
            SETCDR(self.raw(), c);
            Some(Sexp::from_raw(c))
        }
    }

    /// Sets the CAR of pairlist cell or call `self` (ignored for anything else).
    pub fn set_car(self, v: Sexp<'_>) {
        if self.cell().is_some() {
            // SAFETY: a cell (checked) and a live value; does not allocate.
            unsafe { SETCAR(self.raw(), v.raw()) };
        }
    }

    /// Sets the CDR of pairlist cell or call `self` to `v`, a pairlist, call or `NULL`. False
    /// (nothing done) for anything else: R's own code walks CDRs expecting cells.
    pub fn set_cdr(self, v: Sexp<'_>) -> bool {
        if self.cell().is_none()
            || !matches!(v.kind(), Kind::LISTSXP | Kind::LANGSXP | Kind::NILSXP)
        {
            return false;
        }
        // SAFETY: as for `set_car`.
        unsafe { SETCDR(self.raw(), v.raw()) };
        true
    }

    /// Sets the tag of pairlist cell or call `self` to `v`, a symbol or `NULL`. False (nothing
    /// done) for anything else: R reads tags as symbols.
    pub fn set_tag(self, v: Sexp<'_>) -> bool {
        if self.cell().is_none() || !matches!(v.kind(), Kind::SYMSXP | Kind::NILSXP) {
            return false;
        }
        // SAFETY: as for `set_car`.
        unsafe { SET_TAG(self.raw(), v.raw()) };
        true
    }

    /// Replaces the attributes of a vector, pairlist cell or call by pairlist `attrib` (or
    /// `NULL`), as stored, without the checks `attr<-` makes. False (nothing done) for other
    /// objects or if `attrib` is neither a pairlist nor `NULL`.
    pub fn set_attrib(self, attrib: Sexp<'_>) -> bool {
        if !self.is_built() || !matches!(attrib.kind(), Kind::LISTSXP | Kind::NILSXP) {
            return false;
        }
        // SAFETY: checked types, live objects; does not allocate.
        unsafe { SET_ATTRIB(self.raw(), attrib.raw()) };
        true
    }

    /// Sets the general-purpose bits and the object bit of a vector, pairlist cell or call, as
    /// R's reader does (ignored for other objects, whose bits R gives other meanings).
    pub fn set_header_bits(self, levels: i32, is_object: bool) {
        if self.is_built() {
            // SAFETY: checked type; writes of header bits, no allocation.
            unsafe {
                SETLEVELS(self.raw(), levels);
                SET_OBJECT(self.raw(), i32::from(is_object));
            }
        }
    }

    /// The kinds [`Scope::vector`], [`Scope::vector_from_bytes`] and [`Scope::cell`] make.
    fn is_built(self) -> bool {
        matches!(
            self.kind(),
            Kind::LGLSXP
                | Kind::INTSXP
                | Kind::REALSXP
                | Kind::CPLXSXP
                | Kind::RAWSXP
                | Kind::STRSXP
                | Kind::VECSXP
                | Kind::EXPRSXP
                | Kind::LISTSXP
                | Kind::LANGSXP
        )
    }
}

impl R {
    /// The symbol named by CHARSXP `c` (translated to the native encoding, as R's reader
    /// does), or `None` if `c` is not a CHARSXP or is `NA`. Symbols are never collected.
    pub fn install_char(self, c: Sexp<'_>) -> Option<Sexp<'static>> {
        if c.kind() != Kind::CHARSXP || c.is_na_string() {
            return None;
        }
        // SAFETY: main thread (token), a live CHARSXP; installTrChar only allocates (the
        // symbol, permanent).
        Some(unsafe { Sexp::from_raw(Rf_installTrChar(c.raw())) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_sizes_match_r() {
        assert_eq!(elt_size(Kind::INTSXP), Some(4));
        assert_eq!(elt_size(Kind::LGLSXP), Some(4));
        assert_eq!(elt_size(Kind::REALSXP), Some(8));
        assert_eq!(elt_size(Kind::CPLXSXP), Some(16));
        assert_eq!(elt_size(Kind::RAWSXP), Some(1));
        assert_eq!(elt_size(Kind::STRSXP), None);
        assert_eq!(elt_size(Kind::VECSXP), None);
    }

    #[test]
    fn encodings_map_to_r() {
        assert_eq!(Encoding::Utf8.ce(), cetype_t::CE_UTF8);
        assert_eq!(Encoding::Latin1.ce(), cetype_t::CE_LATIN1);
        assert_eq!(Encoding::Bytes.ce(), cetype_t::CE_BYTES);
        assert_eq!(Encoding::Native.ce(), cetype_t::CE_NATIVE);
    }
}
