//! Protection scopes: R objects made by Rust are protected from R's collector for exactly as
//! long as the scope that made them is borrowed.

use std::cell::Cell;
use std::ffi::CStr;
use std::marker::PhantomData;
use std::os::raw::c_char;

use libR_sys::*;

use crate::guard::{protect_raw, Caught};
use crate::sexp::{Kind, Sexp};
use crate::token::R;

/// A run of `PROTECT`s, unprotected together when the scope is dropped.
///
/// Balanced by construction: a root scope is made only by this crate's trampolines (one per
/// call from R, dropped before the call returns), and every other scope is a [`Scope::child`]
/// borrowing its parent, so scopes end in reverse order of creation, as R's protect stack
/// requires. An object a scope protects is a [`Sexp`] borrowing the scope.
pub struct Scope<'p> {
    n: Cell<i32>,
    _parent: PhantomData<&'p ()>,
    _not_send: PhantomData<*mut ()>,
}

impl Scope<'static> {
    /// The root scope of one call from R.
    ///
    /// # Safety
    /// Main thread, inside R; dropped before the call returns to R, after every other scope.
    pub(crate) unsafe fn root() -> Scope<'static> {
        Scope {
            n: Cell::new(0),
            _parent: PhantomData,
            _not_send: PhantomData,
        }
    }
}

impl<'p> Scope<'p> {
    /// A nested scope, for objects needed only for a while (e.g. one loop iteration).
    pub fn child(&self) -> Scope<'_> {
        Scope {
            n: Cell::new(0),
            _parent: PhantomData,
            _not_send: PhantomData,
        }
    }

    /// The main-thread token.
    pub fn r(&self) -> R {
        // SAFETY: scopes only exist on the main thread, inside R (see `root`).
        unsafe { R::assume() }
    }

    /// Protects `x` for as long as this scope is borrowed.
    pub fn protect<'s>(&'s self, x: Sexp<'_>) -> Sexp<'s> {
        // SAFETY: `x` is alive now (type invariant), and stays protected until this scope
        // drops, which the returned borrow outlives never.
        unsafe { self.protect_raw(x.raw()) }
    }

    /// Protects a raw object, typically one R just returned.
    ///
    /// # Safety
    /// `x` is a valid object, not yet collected (no allocation since it was made).
    pub unsafe fn protect_raw(&self, x: SEXP) -> Sexp<'_> {
        Rf_protect(x);
        self.n.set(self.n.get() + 1);
        Sexp::from_raw(x)
    }

    /// A new vector of `kind` and length `n` (elements `NULL`, `""`, or uninitialised zeros
    /// for atomic vectors: R zero-fills nothing, callers fill them).
    fn alloc(&self, kind: Kind, n: usize) -> Sexp<'_> {
        // SAFETY: main thread; the fresh vector is protected at once. A failed allocation is
        // an R error that unwinds to the trampoline's R frame (out of memory only).
        unsafe { self.protect_raw(Rf_allocVector(kind, n as R_xlen_t)) }
    }

    /// A list of `n` `NULL`s.
    pub fn list(&self, n: usize) -> Sexp<'_> {
        self.alloc(Kind::VECSXP, n)
    }

    /// A character vector of `n` empty strings.
    pub fn strings(&self, n: usize) -> Sexp<'_> {
        self.alloc(Kind::STRSXP, n)
    }

    /// An integer vector holding `v`.
    pub fn int_vec(&self, v: &[i32]) -> Sexp<'_> {
        let x = self.alloc(Kind::INTSXP, v.len());
        // SAFETY: a fresh INTSXP of v.len() elements, written once.
        unsafe { copy_into(INTEGER(x.raw()), v) };
        x
    }

    /// A double vector holding `v`.
    pub fn real_vec(&self, v: &[f64]) -> Sexp<'_> {
        let x = self.alloc(Kind::REALSXP, v.len());
        // SAFETY: a fresh REALSXP of v.len() elements, written once.
        unsafe { copy_into(REAL(x.raw()), v) };
        x
    }

    /// A raw vector holding a copy of `bytes`.
    pub fn raw(&self, bytes: &[u8]) -> Sexp<'_> {
        let x = self.alloc(Kind::RAWSXP, bytes.len());
        // SAFETY: a fresh RAWSXP of bytes.len() bytes, written once.
        unsafe { copy_into(RAW(x.raw()), bytes) };
        x
    }

    /// An integer(1).
    pub fn int(&self, v: i32) -> Sexp<'_> {
        // SAFETY: main thread; protected at once.
        unsafe { self.protect_raw(Rf_ScalarInteger(v)) }
    }

    /// A double(1).
    pub fn real(&self, v: f64) -> Sexp<'_> {
        // SAFETY: main thread; protected at once.
        unsafe { self.protect_raw(Rf_ScalarReal(v)) }
    }

    /// A CHARSXP in UTF-8 (cut at an interior NUL, which R cannot represent).
    pub fn mk_char(&self, s: &str) -> Sexp<'_> {
        let cut = s.as_bytes().iter().position(|&b| b == 0).unwrap_or(s.len());
        let len = i32::try_from(cut).unwrap_or(i32::MAX);
        // SAFETY: `len` bytes of `s` are readable; protected at once.
        unsafe {
            self.protect_raw(Rf_mkCharLenCE(
                s.as_ptr() as *const c_char,
                len,
                cetype_t::CE_UTF8,
            ))
        }
    }

    /// A character(1) in UTF-8.
    pub fn string(&self, s: &str) -> Sexp<'_> {
        let c = self.mk_char(s);
        // SAFETY: `c` is protected; the new vector is protected at once.
        unsafe { self.protect_raw(Rf_ScalarString(c.raw())) }
    }

    /// A character vector from `items` (UTF-8); `None` items are `NA`.
    pub fn strings_from(&self, items: &[Option<&str>]) -> Sexp<'_> {
        let v = self.strings(items.len());
        for (i, s) in items.iter().enumerate() {
            let q = self.child();
            let c = match s {
                Some(s) => q.mk_char(s),
                // SAFETY: reading R's permanent NA string.
                None => unsafe { Sexp::from_raw(R_NaString) },
            };
            v.set_str_elt(i, c);
        }
        v
    }

    /// A character vector from static C strings (native encoding: ASCII class names).
    pub fn cstrings(&self, items: &[&CStr]) -> Sexp<'_> {
        let v = self.strings(items.len());
        for (i, s) in items.iter().enumerate() {
            // SAFETY: `v` is protected; the CHARSXP is stored into it at once, before any
            // other allocation.
            unsafe { SET_STRING_ELT(v.raw(), i as R_xlen_t, Rf_mkChar(s.as_ptr())) };
        }
        v
    }

    /// A call `f(args...)`.
    pub fn lang(&self, f: Sexp<'_>, args: &[Sexp<'_>]) -> Sexp<'_> {
        let q = self.child();
        let mut tail = Sexp::null();
        for a in args.iter().rev() {
            // SAFETY: `a` and `tail` are alive (protected by `q` or their owners); the new
            // cell is protected at once.
            tail = unsafe { q.protect_raw(Rf_cons(a.raw(), tail.raw())) };
        }
        // SAFETY: as above; the call is protected by `self`, and `q` is dropped after.
        let call = unsafe { self.protect_raw(Rf_lcons(f.raw(), tail.raw())) };
        drop(q);
        call
    }

    /// A named list from `(name, value)` pairs.
    pub fn named_list(&self, items: &[(&CStr, Sexp<'_>)]) -> Sexp<'_> {
        let list = self.list(items.len());
        let names = self.strings(items.len());
        for (i, (name, value)) in items.iter().enumerate() {
            list.set_list_elt(i, *value);
            // SAFETY: `names` is protected; the CHARSXP is stored at once.
            unsafe { SET_STRING_ELT(names.raw(), i as R_xlen_t, Rf_mkChar(name.as_ptr())) };
        }
        // SAFETY: reading R's permanent symbol.
        list.set_attr(unsafe { Sexp::from_raw(R_NamesSymbol) }, names);
        list
    }

    /// Evaluates `call` in `env` with R's errors and interrupts confined (see
    /// [`crate::guard`]); the value is protected by this scope.
    pub fn eval(&self, call: Sexp<'_>, env: Sexp<'_>) -> Result<Sexp<'_>, Caught> {
        let (c, e) = (call.raw(), env.raw());
        // SAFETY: the closure owns nothing and calls one R function; both objects are alive.
        let v = unsafe { protect_raw(|| Rf_eval(c, e)) }?;
        // SAFETY: `v` was just returned, nothing allocated since.
        Ok(unsafe { self.protect_raw(v) })
    }
}

impl Drop for Scope<'_> {
    fn drop(&mut self) {
        let n = self.n.get();
        if n > 0 {
            // SAFETY: exactly the PROTECTs made through this scope, on top of R's stack (scopes
            // nest, see the type docs). Jumps that reset the stack never cross a scope.
            unsafe { Rf_unprotect(n) }
        }
    }
}

/// Copies `v` into R vector data.
///
/// # Safety
/// `dst` points to `v.len()` writable elements.
unsafe fn copy_into<T: Copy>(dst: *mut T, v: &[T]) {
    if !v.is_empty() {
        std::ptr::copy_nonoverlapping(v.as_ptr(), dst, v.len());
    }
}

impl<'a> Sexp<'a> {
    /// Sets element `i` of a list (ignored if `self` is not a list or `i` is out of range).
    pub fn set_list_elt(self, i: usize, v: Sexp<'_>) {
        if matches!(self.kind(), Kind::VECSXP | Kind::EXPRSXP) && i < self.len() {
            // SAFETY: checked type and bounds; both objects alive; SET_VECTOR_ELT does not
            // allocate.
            unsafe { SET_VECTOR_ELT(self.raw(), i as R_xlen_t, v.raw()) };
        }
    }

    /// Sets element `i` of a character vector to CHARSXP `c` (ignored on a type mismatch or out
    /// of range).
    pub fn set_str_elt(self, i: usize, c: Sexp<'_>) {
        if self.kind() == Kind::STRSXP && c.kind() == Kind::CHARSXP && i < self.len() {
            // SAFETY: checked types and bounds; does not allocate.
            unsafe { SET_STRING_ELT(self.raw(), i as R_xlen_t, c.raw()) };
        }
    }

    /// Sets attribute `name` (a symbol) to `v`.
    pub fn set_attr(self, name: Sexp<'_>, v: Sexp<'_>) {
        // SAFETY: all three alive; setAttrib may allocate a pairlist cell, during which all
        // three stay reachable (protected by their owners).
        unsafe { Rf_setAttrib(self.raw(), name.raw(), v.raw()) };
    }

    /// Sets the class attribute.
    pub fn set_class(self, scope: &Scope<'_>, classes: &[&CStr]) {
        let q = scope.child();
        let cls = q.cstrings(classes);
        // SAFETY: reading R's permanent symbol.
        self.set_attr(unsafe { Sexp::from_raw(R_ClassSymbol) }, cls);
    }

    /// The value bound to symbol `sym` in environment `self`'s own frame (`None` if unbound or
    /// `self` is not an environment). Promises and active bindings are returned as they are.
    pub fn frame_get(self, sym: Sexp<'_>) -> Option<Sexp<'a>> {
        if self.kind() != Kind::ENVSXP {
            return None;
        }
        // SAFETY: an environment and a symbol; findVarInFrame on a plain frame only reads (an
        // active binding would be called: callers look up their own bindings only).
        let v = unsafe { Rf_findVarInFrame(self.raw(), sym.raw()) };
        // SAFETY: reading R's permanent marker.
        if v == unsafe { R_UnboundValue } {
            return None;
        }
        // SAFETY: bound in the frame, so alive while the environment is and the binding stays.
        Some(unsafe { Sexp::from_raw(v) })
    }

    /// Binds `sym` to `v` in environment `self` (ignored if `self` is not an environment).
    pub fn define(self, sym: Sexp<'_>, v: Sexp<'_>) {
        if self.kind() == Kind::ENVSXP {
            // SAFETY: alive objects; defineVar may allocate a frame cell while both stay
            // reachable. Locked environments raise an R error: callers bind only in
            // environments they made.
            unsafe { Rf_defineVar(sym.raw(), v.raw(), self.raw()) };
        }
    }
}

impl R {
    /// The symbol `name` (symbols are never collected).
    pub fn sym(self, name: &CStr) -> Sexp<'static> {
        // SAFETY: main thread (token); symbols are permanent.
        unsafe { Sexp::from_raw(Rf_install(name.as_ptr())) }
    }

    /// `TRUE` or `FALSE` (R's shared constants: nothing to protect).
    pub fn lgl(self, b: bool) -> Sexp<'static> {
        // SAFETY: main thread; Rf_ScalarLogical returns R's permanent logical constants.
        unsafe { Sexp::from_raw(Rf_ScalarLogical(i32::from(b))) }
    }

    /// The global environment.
    pub fn global_env(self) -> Sexp<'static> {
        // SAFETY: main thread; permanent object.
        unsafe { Sexp::from_raw(R_GlobalEnv) }
    }

    /// The base environment.
    pub fn base_env(self) -> Sexp<'static> {
        // SAFETY: main thread; permanent object.
        unsafe { Sexp::from_raw(R_BaseEnv) }
    }

    /// `NA_real_`.
    pub fn na_real(self) -> f64 {
        // SAFETY: main thread; a plain read of R's constant.
        unsafe { R_NaReal }
    }

    /// `NA_character_` as a CHARSXP.
    pub fn na_string(self) -> Sexp<'static> {
        // SAFETY: main thread; permanent object.
        unsafe { Sexp::from_raw(R_NaString) }
    }
}
