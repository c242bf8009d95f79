//! The handle ABI shared by the R packages built on this layer: *Aios* (asynchronous operations)
//! and *condition variables* made by one package and used by another.
//!
//! Why: `nanonext`'s functions (`unresolved()`, `call_aio()`, `stop_aio()`, `race_aio()`, ...)
//! must understand `mirai`'s objects, and `mirai`'s engine must signal `nanonext`'s condition
//! variables from its own threads. Each package is a separate shared object with its own copy
//! of this crate, so what crosses is C: an external pointer whose address points to a
//! `#[repr(C)]` header holding a pointer to a versioned table of `extern "C"` functions. The
//! package that made the handle owns the functions; the other only calls them.
//!
//! - An Aio handle is an external pointer tagged [`AIO_TAG`] whose address points to an
//!   [`AioHeader`]. [`Scope::aio_handle`] makes one for a `'static` header (the handle's state
//!   is found through its protected field: mirai's keyed tasks), [`Scope::aio_box`] for a value
//!   it owns. [`Sexp::aio`] reads any package's handle as a [`ForeignAio`].
//! - A condition variable is an external pointer tagged [`CV_TAG`] owning an `Arc<T>` of a
//!   [`SharedCv`] type ([`Scope::cv_extptr`]). [`Sexp::foreign_cv`] takes a counted reference
//!   that any thread may signal ([`ForeignCv`]).
//!
//! What it is not: the semantics of Aios (values, sentinels, classes) stay in the R packages.

use std::any::TypeId;
use std::ffi::c_int;
use std::os::raw::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use libR_sys::*;

use crate::extptr::Tag;
use crate::guard::quietly;
use crate::scope::Scope;
use crate::sexp::{Kind, Sexp};
use crate::token::R;

/// The version of both tables; a handle with another version is not read.
pub const ABI_VERSION: u32 = 1;

/// The tag of every Aio handle, whichever package made it.
pub static AIO_TAG: Tag = Tag::new(c"nanonextAio");

/// The tag of every condition variable, whichever package made it.
pub static CV_TAG: Tag = Tag::new(c"nanonextCv");

/// The functions of one kind of Aio handle. Each takes the handle (the external pointer) and
/// runs on R's main thread; none may raise an R error or call R code that could.
#[repr(C)]
pub struct AioVtable {
    /// [`ABI_VERSION`].
    pub abi: u32,
    /// 1 while the operation is in flight (its completion not yet recorded), else 0.
    pub pending: unsafe extern "C" fn(handle: SEXP) -> c_int,
    /// Waits up to `ms` milliseconds (negative: no limit) for completion; 1 if complete. Does
    /// not check for interrupts: callers wait in slices.
    pub wait: unsafe extern "C" fn(handle: SEXP, ms: c_int) -> c_int,
    /// Cancels a pending operation: it completes with error 20 (operation canceled). No effect
    /// once complete.
    pub stop: unsafe extern "C" fn(handle: SEXP),
}

/// What an Aio handle's address points to (first, whatever follows).
#[repr(C)]
pub struct AioHeader {
    vtable: &'static AioVtable,
}

impl AioHeader {
    /// A header for handles of kind `vtable`.
    pub const fn new(vtable: &'static AioVtable) -> AioHeader {
        AioHeader { vtable }
    }
}

/// A kind of Aio handle, implemented in safe code; [`AioVtable::of`] makes its table.
pub trait AioOps: 'static {
    /// Whether the operation of `handle` is still in flight.
    fn pending(handle: Sexp<'_>, r: R) -> bool;
    /// Waits up to `ms` ms (negative: no limit) for completion; whether it is complete.
    fn wait(handle: Sexp<'_>, r: R, ms: i32) -> bool;
    /// Cancels the operation (completes it with error 20) if pending.
    fn stop(handle: Sexp<'_>, r: R);
}

unsafe extern "C" fn pending_of<T: AioOps>(h: SEXP) -> c_int {
    // SAFETY: called by another package's code on R's main thread with a live handle (the
    // ABI's contract).
    let (h, r) = unsafe { (Sexp::from_raw(h), R::assume()) };
    catch_unwind(AssertUnwindSafe(|| T::pending(h, r) as c_int)).unwrap_or(0)
}

unsafe extern "C" fn wait_of<T: AioOps>(h: SEXP, ms: c_int) -> c_int {
    // SAFETY: as in `pending_of`.
    let (h, r) = unsafe { (Sexp::from_raw(h), R::assume()) };
    catch_unwind(AssertUnwindSafe(|| T::wait(h, r, ms) as c_int)).unwrap_or(1)
}

unsafe extern "C" fn stop_of<T: AioOps>(h: SEXP) {
    // SAFETY: as in `pending_of`.
    let (h, r) = unsafe { (Sexp::from_raw(h), R::assume()) };
    quietly(|| T::stop(h, r));
}

impl AioVtable {
    /// The table of kind `T`, for a `static`.
    pub const fn of<T: AioOps>() -> AioVtable {
        AioVtable {
            abi: ABI_VERSION,
            pending: pending_of::<T>,
            wait: wait_of::<T>,
            stop: stop_of::<T>,
        }
    }
}

/// An Aio handle of any package, read through its table.
#[derive(Clone, Copy)]
pub struct ForeignAio<'a> {
    handle: Sexp<'a>,
    vtable: &'static AioVtable,
}

impl<'a> ForeignAio<'a> {
    /// The handle (the external pointer).
    pub fn handle(self) -> Sexp<'a> {
        self.handle
    }

    /// Whether the handle is of the kind `vtable` (this package's own).
    pub fn is_kind(self, vtable: &'static AioVtable) -> bool {
        std::ptr::eq(self.vtable, vtable)
    }

    /// Whether the operation is in flight.
    pub fn pending(self, _r: R) -> bool {
        // SAFETY: main thread (token); a live handle of a current-version table.
        unsafe { (self.vtable.pending)(self.handle.raw()) != 0 }
    }

    /// Waits up to `ms` ms (negative: no limit); whether the operation is complete.
    pub fn wait(self, _r: R, ms: i32) -> bool {
        // SAFETY: as in `pending`.
        unsafe { (self.vtable.wait)(self.handle.raw(), ms) != 0 }
    }

    /// Cancels the operation if it is in flight.
    pub fn stop(self, _r: R) {
        // SAFETY: as in `pending`.
        unsafe { (self.vtable.stop)(self.handle.raw()) }
    }
}

#[repr(C)]
struct AioBox<T> {
    header: AioHeader,
    type_id: TypeId,
    value: T,
}

extern "C" fn finalize_aio<T: 'static>(x: SEXP) {
    // SAFETY: R calls finalizers on its main thread with the pointer registered in
    // `Scope::aio_box`, whose address is a Box<AioBox<T>> or null once cleared.
    unsafe {
        let p = R_ExternalPtrAddr(x) as *mut AioBox<T>;
        if !p.is_null() {
            R_ClearExternalPtr(x);
            quietly(|| drop(Box::from_raw(p)));
        }
    }
}

impl<'p> Scope<'p> {
    /// A new Aio handle for a `'static` header, with `prot` as its protected field (where the
    /// kind's functions find the handle's state). No finalizer.
    pub fn aio_handle(&self, header: &'static AioHeader, prot: Sexp<'_>) -> Sexp<'_> {
        let tag = AIO_TAG.sym(self.r());
        let addr = header as *const AioHeader as *mut c_void;
        // SAFETY: main thread; protected at once. R never writes through the address.
        unsafe { self.protect_raw(R_MakeExternalPtr(addr, tag.raw(), prot.raw())) }
    }

    /// A new Aio handle of kind `vtable` owning `value`, dropped by a finalizer when R
    /// collects the handle. Read back with [`Sexp::aio_value`] and the same `vtable`.
    pub fn aio_box<T: 'static>(&self, vtable: &'static AioVtable, value: T) -> Sexp<'_> {
        let tag = AIO_TAG.sym(self.r());
        let p = Box::into_raw(Box::new(AioBox {
            header: AioHeader { vtable },
            type_id: TypeId::of::<T>(),
            value,
        }));
        // SAFETY: main thread; protected at once, then given its finalizer, which owns the
        // box from here on.
        unsafe {
            let x = self.protect_raw(R_MakeExternalPtr(p as *mut c_void, tag.raw(), R_NilValue));
            R_RegisterCFinalizerEx(x.raw(), Some(finalize_aio::<T>), Rboolean::FALSE);
            x
        }
    }
}

impl<'a> Sexp<'a> {
    /// `self` as an Aio handle of any package, if it is one (tagged, live, current version).
    pub fn aio(self, r: R) -> Option<ForeignAio<'a>> {
        if self.kind() != Kind::EXTPTRSXP {
            return None;
        }
        // SAFETY: an external pointer; reads of its fields.
        let (t, p) = unsafe {
            (
                R_ExternalPtrTag(self.raw()),
                R_ExternalPtrAddr(self.raw()) as *const AioHeader,
            )
        };
        if t != AIO_TAG.sym(r).raw() || p.is_null() {
            return None;
        }
        // SAFETY: pointers with this tag point to an AioHeader (the ABI), alive with the
        // handle; the version is read before anything else.
        let vtable = unsafe { (*p).vtable };
        (vtable.abi == ABI_VERSION).then_some(ForeignAio {
            handle: self,
            vtable,
        })
    }

    /// The value owned by an Aio handle made by [`Scope::aio_box`] with `vtable`.
    pub fn aio_value<T: 'static>(self, vtable: &'static AioVtable, r: R) -> Option<&'a T> {
        let a = self.aio(r)?;
        if !a.is_kind(vtable) {
            return None;
        }
        // SAFETY: handles of a table of this package (a `static`, so its address is unique to
        // this shared object) are made by `aio_box` here, so the address is an AioBox whose
        // type id is known whatever its value; live while `self` is; shared access only.
        unsafe {
            let p = R_ExternalPtrAddr(self.raw()) as *const AioBox<()>;
            if (*p).type_id != TypeId::of::<T>() {
                return None;
            }
            Some(&(*(p as *const AioBox<T>)).value)
        }
    }
}

/// A condition variable another package's threads may signal.
pub trait SharedCv: Send + Sync + 'static {
    /// Adds one to the value and wakes every waiter.
    fn signal(&self);
}

/// The functions of one kind of condition variable.
#[repr(C)]
struct CvVtable {
    abi: u32,
    /// A counted reference to the cv of the box `boxed` (an `Arc` raw pointer).
    retain: unsafe extern "C" fn(boxed: *const c_void) -> *const c_void,
    /// Signals the cv behind a counted reference; any thread.
    signal: unsafe extern "C" fn(arc: *const c_void),
    /// Drops a counted reference; any thread.
    release: unsafe extern "C" fn(arc: *const c_void),
}

/// One per shared object: marks the cv boxes this copy of the crate made, within which
/// `TypeId`s are reliable.
static OWNER: u8 = 0;

#[repr(C)]
struct CvBox<T> {
    vtable: &'static CvVtable,
    owner: *const u8,
    type_id: TypeId,
    cv: Arc<T>,
}

unsafe extern "C" fn cv_retain<T: SharedCv>(boxed: *const c_void) -> *const c_void {
    // SAFETY: `boxed` is a live CvBox<T> (the table is only reached through one).
    let cv = unsafe { &(*(boxed as *const CvBox<T>)).cv };
    Arc::into_raw(Arc::clone(cv)) as *const c_void
}

unsafe extern "C" fn cv_signal<T: SharedCv>(arc: *const c_void) {
    // SAFETY: a reference counted by `cv_retain`, not yet released.
    let cv = unsafe { &*(arc as *const T) };
    quietly(|| cv.signal());
}

unsafe extern "C" fn cv_release<T: SharedCv>(arc: *const c_void) {
    // SAFETY: a reference counted by `cv_retain`, released once (ForeignCv's drop).
    quietly(|| drop(unsafe { Arc::from_raw(arc as *const T) }));
}

/// Tables per cv type, one `static` each (generic statics do not exist, so a trait carries it).
trait CvKind: SharedCv + Sized {
    const VTABLE: &'static CvVtable = &CvVtable {
        abi: ABI_VERSION,
        retain: cv_retain::<Self>,
        signal: cv_signal::<Self>,
        release: cv_release::<Self>,
    };
}

impl<T: SharedCv> CvKind for T {}

extern "C" fn finalize_cv<T: 'static>(x: SEXP) {
    // SAFETY: R calls finalizers on its main thread with the pointer registered in
    // `Scope::cv_extptr`, whose address is a Box<CvBox<T>> or null once cleared.
    unsafe {
        let p = R_ExternalPtrAddr(x) as *mut CvBox<T>;
        if !p.is_null() {
            R_ClearExternalPtr(x);
            quietly(|| drop(Box::from_raw(p)));
        }
    }
}

impl<'p> Scope<'p> {
    /// A new condition variable handle (tag [`CV_TAG`]) sharing `cv`.
    pub fn cv_extptr<T: SharedCv>(&self, cv: Arc<T>) -> Sexp<'_> {
        let tag = CV_TAG.sym(self.r());
        let p = Box::into_raw(Box::new(CvBox {
            vtable: <T as CvKind>::VTABLE,
            owner: &OWNER,
            type_id: TypeId::of::<T>(),
            cv,
        }));
        // SAFETY: main thread; protected at once, then given its finalizer, which owns the
        // box (one count of the Arc) from here on.
        unsafe {
            let x = self.protect_raw(R_MakeExternalPtr(p as *mut c_void, tag.raw(), R_NilValue));
            R_RegisterCFinalizerEx(x.raw(), Some(finalize_cv::<T>), Rboolean::FALSE);
            x
        }
    }
}

/// The live box of a cv handle of any package, with its table.
fn cv_box(x: Sexp<'_>, r: R) -> Option<(*const c_void, &'static CvVtable)> {
    if x.kind() != Kind::EXTPTRSXP {
        return None;
    }
    // SAFETY: an external pointer; reads of its fields.
    let (t, p) = unsafe { (R_ExternalPtrTag(x.raw()), R_ExternalPtrAddr(x.raw())) };
    if t != CV_TAG.sym(r).raw() || p.is_null() {
        return None;
    }
    // SAFETY: pointers with this tag point to a CvBox, whose table comes first (repr(C)).
    let vtable = unsafe { *(p as *const &'static CvVtable) };
    (vtable.abi == ABI_VERSION).then_some((p as *const c_void, vtable))
}

impl<'a> Sexp<'a> {
    /// This package's cv of type `T` behind handle `self`.
    pub fn cv_ref<T: SharedCv>(self, r: R) -> Option<&'a Arc<T>> {
        let (p, _) = cv_box(self, r)?;
        // SAFETY: a live CvBox (repr(C)): its leading fields are read as those of any CvBox;
        // the owner and type id then make it this crate's CvBox<T>.
        unsafe {
            let b = p as *const CvBox<()>;
            if !std::ptr::eq((*b).owner, &OWNER) || (*b).type_id != TypeId::of::<T>() {
                return None;
            }
            Some(&(*(p as *const CvBox<T>)).cv)
        }
    }

    /// A counted reference to the cv behind handle `self`, whichever package made it.
    pub fn foreign_cv(self, r: R) -> Option<ForeignCv> {
        let (p, vtable) = cv_box(self, r)?;
        // SAFETY: a live box of this table.
        let arc = unsafe { (vtable.retain)(p) };
        Some(ForeignCv { arc, vtable })
    }
}

/// A counted reference to a condition variable of any package: signalled from any thread,
/// released on drop. The package that made it stays loaded while its dependants are.
pub struct ForeignCv {
    arc: *const c_void,
    vtable: &'static CvVtable,
}

// SAFETY: the reference is an `Arc` of a `Send + Sync` type (`SharedCv`), used only through
// its table's thread-safe functions.
unsafe impl Send for ForeignCv {}
// SAFETY: as above; `signal` takes `&self` and the target is `Sync`.
unsafe impl Sync for ForeignCv {}

impl ForeignCv {
    /// Adds one to the cv's value and wakes its waiters.
    pub fn signal(&self) {
        // SAFETY: a counted reference not yet released.
        unsafe { (self.vtable.signal)(self.arc) }
    }
}

impl Drop for ForeignCv {
    fn drop(&mut self) {
        // SAFETY: released once, here.
        unsafe { (self.vtable.release)(self.arc) }
    }
}

impl std::fmt::Debug for ForeignCv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ForeignCv")
    }
}
