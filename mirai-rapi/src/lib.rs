//! A small safe layer over R's C API, for the R bridges of the mirai engine (the `mirai` R
//! package's `mirai-r`, and others built the same way).
//!
//! What it is for: writing `.Call` routines in safe Rust.
//! - [`Sexp`]: an R object borrowed for a lifetime in which it is known to be alive; reads
//!   (type, length, elements, attributes, bindings) are safe methods.
//! - [`Scope`]: protection from R's collector, balanced by construction: each call from R gets
//!   a root scope, nested scopes borrow their parent, and what a scope makes or protects
//!   borrows the scope. [`Preserved`] keeps an object across calls (R's precious list).
//! - [`R`]: the main-thread token; only this crate's trampolines make one.
//! - [`args`]: typed extraction of arguments, with fixed error texts.
//! - [`RError`] / [`RResult`]: errors are raised to R only at the outer level, after every
//!   Rust value of the routine is dropped; R code is evaluated with its errors and interrupts
//!   confined ([`Scope::eval`]). See [`guard`].
//! - [`routines!`] and [`register`]: each routine's `extern "C"` wrapper and registration entry,
//!   with its arity taken from the function's signature.
//! - [`Tag`] and [`Scope::extptr`]: external pointers owning a Rust value, read back by type.
//! - [`Later`]: the `later` package's C interface.
//! - [`with_event_watch`]: R's event loop (an input handler, `R_PolledEvents`) for one call.
//! - [`WeakTable`]: tables keyed by R objects, whose entries go when their key is collected.
//! - [`serialize()`] / [`unserialize()`]: R's serializer over byte buffers, with persistent-reference
//!   hooks as closures; [`node`] and [`build`]: objects read and built field by field, as
//!   R's serialization format records them.
//! - [`Scope::eval_traced`]: evaluation with a handler at the point of an error; [`frame`]:
//!   environments' locks and bindings.
//! - [`abi`]: Aio handles and condition variables shared between packages.
//! - [`objects`]: environments as objects (no enclosure, closures, active bindings), R's RNG.
//! - [`os`]: signals to the own process and the host's IPv4 interfaces.
//! - [`statics`]: objects kept for the session (namespaces, [`Preserved::leak`], immutable
//!   constants) and [`R::with_scope`] for code handed only the token.
//! - [`package_init!`]: the package's exported init function.
//!
//! What it is not: it knows nothing of mirai (no R-level semantics, classes or error values of
//! the package), and it does not try to cover R's API; [`sys`] is the raw layer for code not
//! yet written against the safe API (every use of it is `unsafe`).
//!
//! Soundness rests on two rules the types cannot express fully: an object reached through
//! another (a list element, an attribute, a binding) is valid while its container is and is not
//! modified; and a value returned by a routine is handed to R with no R allocation after its
//! scope ends (the trampolines do this).

pub mod abi;
pub mod args;
pub mod build;
pub mod env;
pub mod events;
pub mod extptr;
pub mod ffi;
pub mod frame;
pub mod guard;
pub mod later;
pub mod markers;
pub mod node;
pub mod objects;
pub mod os;
pub mod routine;
pub mod scope;
pub mod serialize;
pub mod sexp;
pub mod statics;
pub mod token;
pub mod traced;
pub mod vectors;
pub mod weak;

pub use abi::{AioHeader, AioOps, AioVtable, ForeignAio, ForeignCv, SharedCv};
pub use build::Encoding;
pub use env::Binding;
pub use events::{clear_interrupt, request_interrupt, with_event_watch, EventWatch};
pub use extptr::Tag;
pub use frame::BindingFlags;
pub use guard::{interrupt_pending, quietly, Caught, Preserved, RError, RResult};
pub use later::{eprint, Later, LaterJob};
pub use node::{Header, Special};
pub use routine::{register, CallMethod, Dll, Routine};
pub use scope::Scope;
pub use serialize::{serialize, unserialize, InHook, OutHook, ReadFailure};
pub use sexp::{Kind, Sexp};
pub use token::R;
pub use traced::{error_buffer, OnError};
pub use weak::{Watch, WeakMap, WeakTable};

/// R's C API as bound by `libR-sys`, plus the declarations it lacks ([`ffi`]): the raw layer.
pub mod sys {
    pub use crate::ffi::*;
    pub use libR_sys::*;
}
