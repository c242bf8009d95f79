//! The main-thread token.

use std::marker::PhantomData;

/// Proof that the code holding it runs on R's main thread, inside a call from R.
///
/// R's API may only be used from its main thread. Only this crate makes tokens, in the
/// trampolines R calls (routines, finalizers, event-loop and `later` callbacks); a token is
/// `Copy` but neither `Send` nor `Sync`, so it cannot reach another thread. Every API that
/// calls R without being handed an R object takes one (an object, a [`crate::Sexp`], is itself
/// `!Send` and only ever obtained on the main thread).
#[derive(Clone, Copy)]
pub struct R {
    _not_send: PhantomData<*mut ()>,
}

impl R {
    /// A token, asserted rather than proven.
    ///
    /// # Safety
    /// The caller runs on R's main thread, inside R (a routine, callback or finalizer).
    pub unsafe fn assume() -> R {
        R {
            _not_send: PhantomData,
        }
    }
}
