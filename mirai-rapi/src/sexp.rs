//! Borrowed R objects and safe reads of them.

use std::ffi::CStr;
use std::marker::PhantomData;

use libR_sys::*;

/// An R object known to stay alive for `'a`: a routine argument (alive for the call), an
/// object protected by a [`crate::Scope`] (alive while the scope is borrowed), a preserved
/// object, or one of R's permanent objects (`'static`: `NULL`, symbols).
///
/// Reads are safe: a `Sexp` only exists on R's main thread (it is `!Send`), and is valid for
/// its lifetime. An object reached *through* another (a list element, an attribute, a binding)
/// is given the lifetime of its container: it stays alive while the container does, as long as
/// the container is not modified meanwhile (the bridge never replaces an element it still reads).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub struct Sexp<'a> {
    ptr: SEXP,
    _life: PhantomData<&'a ()>,
    _not_send: PhantomData<*mut ()>,
}

/// R's `SEXPTYPE`, re-exported for matching on [`Sexp::kind`].
pub use libR_sys::SEXPTYPE as Kind;

impl<'a> Sexp<'a> {
    /// Wraps a raw object.
    ///
    /// # Safety
    /// `x` is a valid object that stays alive for `'a`; main thread only.
    pub unsafe fn from_raw(x: SEXP) -> Sexp<'a> {
        Sexp {
            ptr: x,
            _life: PhantomData,
            _not_send: PhantomData,
        }
    }

    /// The raw pointer (for code not ported to the safe API, and as a table key: R never
    /// moves objects).
    pub fn raw(self) -> SEXP {
        self.ptr
    }

    /// The object's address, for identity tables (R never moves objects).
    pub fn addr(self) -> usize {
        self.ptr as usize
    }

    /// `NULL`.
    pub fn null() -> Sexp<'static> {
        // SAFETY: R_NilValue is permanent; reading the global happens on the main thread
        // because a Sexp is only used there.
        unsafe { Sexp::from_raw(R_NilValue) }
    }

    /// `TYPEOF(x)`.
    pub fn kind(self) -> Kind {
        // SAFETY: valid object (type invariant).
        unsafe { TYPEOF(self.ptr) }
    }

    /// True for `NULL`.
    pub fn is_null(self) -> bool {
        self.kind() == Kind::NILSXP
    }

    /// `xlength(x)`.
    pub fn len(self) -> usize {
        // SAFETY: valid object; Rf_xlength accepts every type and never allocates.
        unsafe { Rf_xlength(self.ptr) as usize }
    }

    /// True if `len()` is 0.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// `OBJECT(x)`: has a class attribute.
    pub fn is_object(self) -> bool {
        // SAFETY: valid object.
        unsafe { OBJECT(self.ptr) != 0 }
    }

    /// `inherits(x, what)` for one class name (no dispatch, no allocation).
    pub fn inherits(self, what: &CStr) -> bool {
        // SAFETY: valid object and NUL-terminated class name; Rf_inherits only reads.
        unsafe { Rf_inherits(self.ptr, what.as_ptr()) != Rboolean::FALSE }
    }

    /// A closure, builtin or special.
    pub fn is_function(self) -> bool {
        // SAFETY: valid object; a read.
        unsafe { Rf_isFunction(self.ptr) != Rboolean::FALSE }
    }

    /// The `i`-th element of a character vector (a CHARSXP), or `None` if `x` is not one or
    /// `i` is out of range.
    pub fn str_elt(self, i: usize) -> Option<Sexp<'a>> {
        if self.kind() != Kind::STRSXP || i >= self.len() {
            return None;
        }
        // SAFETY: checked type and bounds; the element lives while its vector does.
        Some(unsafe { Sexp::from_raw(STRING_ELT(self.ptr, i as R_xlen_t)) })
    }

    /// The `i`-th element of a list or expression vector, or `None` if `x` is neither or `i` is
    /// out of range.
    pub fn list_elt(self, i: usize) -> Option<Sexp<'a>> {
        if !matches!(self.kind(), Kind::VECSXP | Kind::EXPRSXP) || i >= self.len() {
            return None;
        }
        // SAFETY: checked type and bounds; the element lives while its list does.
        Some(unsafe { Sexp::from_raw(VECTOR_ELT(self.ptr, i as R_xlen_t)) })
    }

    /// True for `NA_character_` (a CHARSXP).
    pub fn is_na_string(self) -> bool {
        // SAFETY: reading R's permanent NA string.
        self.ptr == unsafe { R_NaString }
    }

    /// The UTF-8 text of a CHARSXP (lossy for invalid bytes), or `None` for anything else.
    pub fn char_text(self) -> Option<String> {
        if self.kind() != Kind::CHARSXP {
            return None;
        }
        // SAFETY: a CHARSXP; Rf_translateCharUTF8 returns a NUL-terminated string that lives
        // at least until the next allocation (we copy it at once). Translation never jumps for
        // valid encodings; invalid bytes are escaped by R.
        Some(unsafe {
            CStr::from_ptr(Rf_translateCharUTF8(self.ptr))
                .to_string_lossy()
                .into_owned()
        })
    }

    /// The bytes of a CHARSXP as stored (no translation), or `None` for anything else.
    pub fn char_bytes(self) -> Option<&'a [u8]> {
        if self.kind() != Kind::CHARSXP {
            return None;
        }
        // SAFETY: a CHARSXP holds LENGTH bytes at R_CHAR, immutable, alive with the object.
        Some(unsafe { std::slice::from_raw_parts(R_CHAR(self.ptr) as *const u8, self.len()) })
    }

    /// The data of an integer vector.
    pub fn ints(self) -> Option<&'a [i32]> {
        if self.kind() != Kind::INTSXP {
            return None;
        }
        // SAFETY: checked type; the data lives with the vector.
        Some(unsafe { slice(INTEGER(self.ptr), self.len()) })
    }

    /// The data of a logical vector (`NA` is `i32::MIN`).
    pub fn lgls(self) -> Option<&'a [i32]> {
        if self.kind() != Kind::LGLSXP {
            return None;
        }
        // SAFETY: checked type; the data lives with the vector.
        Some(unsafe { slice(LOGICAL(self.ptr), self.len()) })
    }

    /// The data of a double vector.
    pub fn reals(self) -> Option<&'a [f64]> {
        if self.kind() != Kind::REALSXP {
            return None;
        }
        // SAFETY: checked type; the data lives with the vector.
        Some(unsafe { slice(REAL(self.ptr), self.len()) })
    }

    /// The bytes of a raw vector.
    pub fn bytes(self) -> Option<&'a [u8]> {
        if self.kind() != Kind::RAWSXP {
            return None;
        }
        // SAFETY: checked type; the data lives with the vector.
        Some(unsafe { slice(RAW(self.ptr), self.len()) })
    }

    /// Attribute `name` (a symbol) of a vector or environment, `NULL` if absent. Not for
    /// pairlists, whose `names` R builds on the fly.
    pub fn attr(self, name: Sexp<'_>) -> Sexp<'a> {
        debug_assert!(!matches!(self.kind(), Kind::LISTSXP | Kind::LANGSXP));
        // SAFETY: valid objects; for non-pairlists getAttrib returns the stored attribute
        // (or the compact row names, never asked for here), alive with `self`.
        unsafe { Sexp::from_raw(Rf_getAttrib(self.ptr, name.ptr)) }
    }

    /// The `names` of a vector when they are a character vector.
    pub fn names(self) -> Option<Sexp<'a>> {
        // SAFETY: reading R's permanent symbol.
        let n = self.attr(unsafe { Sexp::from_raw(R_NamesSymbol) });
        (n.kind() == Kind::STRSXP).then_some(n)
    }

    /// The element of list `x` named `name` (the first), or `None`.
    pub fn get(self, name: &str) -> Option<Sexp<'a>> {
        if self.kind() != Kind::VECSXP {
            return None;
        }
        let names = self.names()?;
        (0..self.len().min(names.len()))
            .find(|&i| {
                names
                    .str_elt(i)
                    .and_then(|c| c.char_text())
                    .is_some_and(|t| t == name)
            })
            .and_then(|i| self.list_elt(i))
    }

    /// The name of element `i` (`""` when unnamed).
    pub fn name_at(self, i: usize) -> String {
        self.names()
            .and_then(|n| n.str_elt(i))
            .and_then(|c| c.char_text())
            .unwrap_or_default()
    }

    /// The message of a condition object (its `message` element), or a description of it.
    pub fn condition_message(self) -> String {
        match self.get("message") {
            Some(m) if m.kind() == Kind::STRSXP && !m.is_empty() => {
                m.str_elt(0).and_then(|c| c.char_text()).unwrap_or_default()
            }
            _ => "an R condition without a message".to_owned(),
        }
    }
}

/// A slice over R vector data (empty vectors may have a dangling data pointer).
///
/// # Safety
/// `p` points to `n` initialized elements that live for `'a`.
unsafe fn slice<'a, T>(p: *mut T, n: usize) -> &'a [T] {
    if n == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(p, n)
    }
}
