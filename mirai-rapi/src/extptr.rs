//! External pointers owning a Rust value: made with a finalizer that drops the value, and read
//! back only as the type they were made with.

use std::any::TypeId;
use std::ffi::CStr;
use std::os::raw::c_void;
use std::sync::atomic::{AtomicPtr, Ordering};

use libR_sys::*;

use crate::guard::quietly;
use crate::scope::Scope;
use crate::sexp::{Kind, Sexp};
use crate::token::R;

/// The tag symbol of a kind of external pointer, looked up once.
pub struct Tag {
    name: &'static CStr,
    sym: AtomicPtr<SEXPREC>,
}

impl Tag {
    /// A tag named `name`.
    pub const fn new(name: &'static CStr) -> Tag {
        Tag {
            name,
            sym: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// The tag's symbol.
    pub fn sym(&self, r: R) -> Sexp<'static> {
        let s = self.sym.load(Ordering::Relaxed);
        if !s.is_null() {
            // SAFETY: a symbol stored below: permanent.
            return unsafe { Sexp::from_raw(s) };
        }
        let s = r.sym(self.name);
        self.sym.store(s.raw(), Ordering::Relaxed);
        s
    }
}

/// What the pointer's address points to: the value, with its type for checked reads
/// (`repr(C)`: the type is at offset 0 whatever `T` is).
#[repr(C)]
struct Boxed<T> {
    type_id: TypeId,
    value: T,
}

extern "C" fn finalize<T: 'static>(x: SEXP) {
    // SAFETY: R calls finalizers on its main thread with the external pointer registered in
    // `Scope::extptr`, whose address is a Box<Boxed<T>> or null once cleared.
    unsafe {
        let p = R_ExternalPtrAddr(x) as *mut Boxed<T>;
        if !p.is_null() {
            R_ClearExternalPtr(x);
            // Cleared first, so this is the only release.
            quietly(|| drop(Box::from_raw(p)));
        }
    }
}

impl<'p> Scope<'p> {
    /// A new external pointer tagged `tag` owning `value`, dropped by a finalizer when R
    /// collects the pointer (and, if `onexit`, when R exits).
    pub fn extptr<T: 'static>(&self, value: T, tag: &Tag, onexit: bool) -> Sexp<'_> {
        let sym = tag.sym(self.r());
        let p = Box::into_raw(Box::new(Boxed {
            type_id: TypeId::of::<T>(),
            value,
        }));
        // SAFETY: main thread; the pointer is protected at once, then given its finalizer,
        // which owns the box from here on (an allocation failure in between leaks it, no
        // worse).
        unsafe {
            let x = self.protect_raw(R_MakeExternalPtr(p as *mut c_void, sym.raw(), R_NilValue));
            R_RegisterCFinalizerEx(x.raw(), Some(finalize::<T>), Rboolean::from(onexit));
            x
        }
    }
}

impl<'a> Sexp<'a> {
    /// The value owned by external pointer `self` if it has tag `tag`, was made for a `T` and
    /// has not been finalized. Shared access only: mutable state in `T` uses `Cell`/`RefCell`.
    pub fn extptr_ref<T: 'static>(self, tag: &Tag, r: R) -> Option<&'a T> {
        if self.kind() != Kind::EXTPTRSXP {
            return None;
        }
        // SAFETY: an external pointer; reads of its fields.
        let (t, p) = unsafe {
            (
                R_ExternalPtrTag(self.raw()),
                R_ExternalPtrAddr(self.raw()) as *const Boxed<T>,
            )
        };
        if t != tag.sym(r).raw() || p.is_null() {
            return None;
        }
        // SAFETY: pointers with this tag are made by `Scope::extptr` and hold a Boxed<_>,
        // whose TypeId is at offset 0 (repr(C)).
        let id = unsafe { *(p as *const TypeId) };
        if id != TypeId::of::<T>() {
            return None;
        }
        // SAFETY: it is a live Boxed<T> (type checked, not finalized: `self` is alive), owned
        // by the pointer and only ever shared.
        Some(unsafe { &(*p).value })
    }

    /// The protected field of an external pointer (`NULL` for anything else).
    pub fn extptr_protected(self) -> Sexp<'a> {
        if self.kind() != Kind::EXTPTRSXP {
            return Sexp::null();
        }
        // SAFETY: an external pointer; its protected field lives with it.
        unsafe { Sexp::from_raw(R_ExternalPtrProtected(self.raw())) }
    }

    /// Sets the protected field of an external pointer (ignored for anything else).
    pub fn set_extptr_protected(self, v: Sexp<'_>) {
        if self.kind() == Kind::EXTPTRSXP {
            // SAFETY: an external pointer and a live value; does not allocate.
            unsafe { R_SetExternalPtrProtected(self.raw(), v.raw()) };
        }
    }
}
