//! Reads of what R's serialization format records of an object: its header (type, general
//! purpose bits, object bit, attributes), pairlist cells, the data of atomic vectors as bytes,
//! and R's special objects. For code that walks objects as R's serializer does.

use libR_sys::*;

use crate::ffi::LEVELS;
use crate::sexp::{Kind, Sexp};
use crate::token::R;

/// What every object's header says, read at once.
#[derive(Clone, Copy)]
pub struct Header<'a> {
    /// `TYPEOF(x)`.
    pub kind: Kind,
    /// The general-purpose bits (`LEVELS(x)`).
    pub levels: i32,
    /// `OBJECT(x)`: has a class attribute.
    pub is_object: bool,
    /// An ALTREP object (its data may not exist until R computes it).
    pub is_altrep: bool,
    /// The attributes as stored: a pairlist, or `NULL` (for a CHARSXP, R's cache chain).
    pub attrib: Sexp<'a>,
}

impl<'a> Sexp<'a> {
    /// The object's [`Header`].
    #[inline]
    pub fn header(self) -> Header<'a> {
        // SAFETY: a valid object (type invariant); these are reads of its header, and its
        // attribute pairlist lives while the object does.
        unsafe {
            Header {
                kind: TYPEOF(self.raw()),
                levels: LEVELS(self.raw()),
                is_object: OBJECT(self.raw()) != 0,
                is_altrep: ALTREP(self.raw()) != 0,
                attrib: Sexp::from_raw(ATTRIB(self.raw())),
            }
        }
    }

    /// Which of R's special objects `self` is, if any.
    #[inline]
    pub fn special(self) -> Option<Special> {
        let x = self.raw();
        // SAFETY: reads of R's permanent objects (a Sexp exists only on the main thread).
        unsafe {
            if x == R_NilValue {
                Some(Special::Null)
            } else if x == R_EmptyEnv {
                Some(Special::EmptyEnv)
            } else if x == R_BaseEnv {
                Some(Special::BaseEnv)
            } else if x == R_GlobalEnv {
                Some(Special::GlobalEnv)
            } else if x == R_UnboundValue {
                Some(Special::UnboundValue)
            } else if x == R_MissingArg {
                Some(Special::MissingArg)
            } else if x == R_BaseNamespace {
                Some(Special::BaseNamespace)
            } else {
                None
            }
        }
    }

    /// The general-purpose bits of the header (`LEVELS(x)`; for a CHARSXP its encoding and
    /// cache flags).
    #[inline]
    pub fn levels(self) -> i32 {
        // SAFETY: a valid object; a read of its header.
        unsafe { LEVELS(self.raw()) }
    }

    /// True for a pairlist cell or call (`LISTSXP`, `LANGSXP`, `DOTSXP`).
    #[inline]
    fn is_cell(self) -> bool {
        matches!(self.kind(), Kind::LISTSXP | Kind::LANGSXP | Kind::DOTSXP)
    }

    /// The three fields of a pairlist cell or call, `(tag, car, cdr)`, or `None` for anything
    /// else.
    #[inline]
    pub fn cell(self) -> Option<(Sexp<'a>, Sexp<'a>, Sexp<'a>)> {
        if !self.is_cell() {
            return None;
        }
        // SAFETY: a cell (checked); its fields live while it does.
        unsafe {
            Some((
                Sexp::from_raw(TAG(self.raw())),
                Sexp::from_raw(CAR(self.raw())),
                Sexp::from_raw(CDR(self.raw())),
            ))
        }
    }

    /// The print name (a CHARSXP) of a symbol, or `None` for anything else.
    #[inline]
    pub fn printname(self) -> Option<Sexp<'a>> {
        if self.kind() != Kind::SYMSXP {
            return None;
        }
        // SAFETY: a symbol (checked); its name is as permanent as it is.
        Some(unsafe { Sexp::from_raw(PRINTNAME(self.raw())) })
    }

    /// The text of a CHARSXP as stored, NUL-terminated (as R keeps it), or `None` for anything
    /// else.
    #[inline]
    pub fn char_cstr(self) -> Option<&'a std::ffi::CStr> {
        if self.kind() != Kind::CHARSXP {
            return None;
        }
        // SAFETY: a CHARSXP holds LENGTH bytes and a NUL at R_CHAR, immutable, alive with it.
        Some(unsafe { std::ffi::CStr::from_ptr(R_CHAR(self.raw())) })
    }

    /// The data of a logical, integer, double, complex or raw vector, as bytes in memory order;
    /// `None` for anything else, ALTREP vectors included (whose data R may have to compute).
    #[inline]
    pub fn data_bytes(self) -> Option<&'a [u8]> {
        let size = match self.kind() {
            Kind::LGLSXP | Kind::INTSXP => 4,
            Kind::REALSXP => 8,
            Kind::CPLXSXP => 16,
            Kind::RAWSXP => 1,
            _ => return None,
        };
        // SAFETY: a valid object; a read of its header.
        if unsafe { ALTREP(self.raw()) } != 0 {
            return None;
        }
        let n = self.len() * size;
        if n == 0 {
            return Some(&[]);
        }
        // SAFETY: a non-ALTREP atomic vector (checked) holds len * size initialised bytes at
        // DATAPTR, which lives with it; DATAPTR does not allocate for such vectors.
        Some(unsafe { std::slice::from_raw_parts(DATAPTR(self.raw()) as *const u8, n) })
    }

    /// The elements of a list or expression vector (nothing for anything else).
    #[inline]
    pub fn list_elts(self) -> impl Iterator<Item = Sexp<'a>> {
        let n = if matches!(self.kind(), Kind::VECSXP | Kind::EXPRSXP) {
            self.len()
        } else {
            0
        };
        // SAFETY: a list (checked) and i in bounds; elements live while the list does.
        (0..n).map(move |i| unsafe { Sexp::from_raw(VECTOR_ELT(self.raw(), i as R_xlen_t)) })
    }

    /// The elements (CHARSXPs) of a character vector (nothing for anything else).
    #[inline]
    pub fn str_elts(self) -> impl Iterator<Item = Sexp<'a>> {
        let n = if self.kind() == Kind::STRSXP {
            self.len()
        } else {
            0
        };
        // SAFETY: a character vector (checked) and i in bounds; elements live with it.
        (0..n).map(move |i| unsafe { Sexp::from_raw(STRING_ELT(self.raw(), i as R_xlen_t)) })
    }
}

/// R's special objects, which its serializer writes as markers rather than as objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Special {
    /// `NULL`.
    Null,
    /// The empty environment.
    EmptyEnv,
    /// The base environment.
    BaseEnv,
    /// The global environment.
    GlobalEnv,
    /// R's marker of an unbound variable.
    UnboundValue,
    /// R's marker of a missing argument (the empty symbol).
    MissingArg,
    /// The base namespace.
    BaseNamespace,
}

impl Special {
    /// Every special object.
    pub const ALL: [Special; 7] = [
        Special::Null,
        Special::EmptyEnv,
        Special::BaseEnv,
        Special::GlobalEnv,
        Special::UnboundValue,
        Special::MissingArg,
        Special::BaseNamespace,
    ];
}

impl R {
    /// The special object `which` (permanent).
    #[inline]
    pub fn special(self, which: Special) -> Sexp<'static> {
        // SAFETY: main thread (token); reads of R's permanent objects.
        unsafe {
            Sexp::from_raw(match which {
                Special::Null => R_NilValue,
                Special::EmptyEnv => R_EmptyEnv,
                Special::BaseEnv => R_BaseEnv,
                Special::GlobalEnv => R_GlobalEnv,
                Special::UnboundValue => R_UnboundValue,
                Special::MissingArg => R_MissingArg,
                Special::BaseNamespace => R_BaseNamespace,
            })
        }
    }

    /// `""` as a character(1) (R's shared constant: nothing to protect).
    pub fn blank_string(self) -> Sexp<'static> {
        // SAFETY: main thread (token); a permanent object.
        unsafe { Sexp::from_raw(R_BlankScalarString) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_special_is_listed_once() {
        for (i, a) in Special::ALL.iter().enumerate() {
            assert!(Special::ALL[i + 1..].iter().all(|b| b != a), "{a:?} twice");
        }
    }
}
