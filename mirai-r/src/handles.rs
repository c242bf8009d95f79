//! Host and task handles: the boxes R's external pointers own, and access to them.
//!
//! A host handle is an external pointer with a finalizer. A task handle is either an external
//! pointer (chunks, `everywhere()` rounds, ephemeral tasks), or, for the common mirai made by
//! `mirai()`, *keyed* (see `crate::keyed`). The routines on them are in `crate::host` and
//! `crate::task`.

// Not yet ported to mirai_rapi's safe API: raw R calls, each under the rules its comments state.
#![allow(unsafe_code)]

use std::cell::{Cell, RefCell};
use std::ffi::CStr;
use std::os::raw::c_void;
use std::rc::Rc;

use mirai::host::trace::Span;
use mirai::{Host, HostError, Outcome, TaskHandle};
use mirai_rapi::sys::*;

use crate::keyed::keyed_box;
use crate::sexp::*;
use mirai_rapi::{quietly, RError, RResult, Scope, Sexp, Tag, R};

/// The engine of one compute profile, owned by a host handle.
pub(crate) struct HostBox {
    pub(crate) host: Host,
    /// Chunks of `mirai_map()` elements not yet seen resolved, with their element count less
    /// one, so that `mirai_host_status` counts elements, not chunks (spec §2.2: chunking must
    /// not be visible). Main thread only.
    pub(crate) chunks: RefCell<Vec<(Rc<TaskHandle>, u64)>>,
    /// The extra elements of the chunks seen resolved.
    pub(crate) chunks_done: Cell<u64>,
    /// The `mirai_map` span open while `mirai_map()` submits its elements (tracing on only),
    /// with the number of tasks submitted under it: the parent of their `mirai` spans.
    pub(crate) map_span: RefCell<Option<(Span, i64)>>,
}

impl Drop for HostBox {
    /// A collected (or, at R's exit, still set) profile is reset, so its daemons are told.
    fn drop(&mut self) {
        self.host.reset();
    }
}

impl HostBox {
    /// Moves resolved chunks to `chunks_done`; the extra elements of those still waiting in
    /// the queue and of those sent to a daemon.
    pub(crate) fn chunk_extras(&self) -> (u64, u64) {
        let mut chunks = self.chunks.borrow_mut();
        let (mut queued, mut running) = (0, 0);
        chunks.retain(|(h, extra)| {
            if h.is_resolved() {
                self.chunks_done.set(self.chunks_done.get() + extra);
                false
            } else {
                if h.attempts() == 0 {
                    queued += extra;
                } else {
                    running += extra;
                }
                true
            }
        });
        (queued, running)
    }
}

/// One submitted task, owned by a task handle.
pub(crate) struct TaskBox {
    pub(crate) handle: HandleRef,
    /// The profile's engine, for `mirai_race` (which is given only tasks).
    pub(crate) host: Host,
    /// The outcome once taken from the handle and not yet turned into an R value (boxed: it is
    /// rarely there, and every waiting task has a box).
    pub(crate) outcome: Option<Box<Outcome>>,
}

/// A task's engine handle: owned, or shared with its host's chunk book (chunks only, so that
/// ordinary tasks cost no extra allocation), with the number of the chunk's elements not
/// stopped.
pub(crate) enum HandleRef {
    Own(TaskHandle),
    Shared(Rc<TaskHandle>, usize),
}

impl std::ops::Deref for HandleRef {
    type Target = TaskHandle;

    fn deref(&self) -> &TaskHandle {
        match self {
            HandleRef::Own(h) => h,
            HandleRef::Shared(h, _) => h,
        }
    }
}

thread_local! {
    static TASK_TAG: Cell<SEXP> = const { Cell::new(std::ptr::null_mut()) };
}

pub(crate) unsafe fn tag(cell: &'static std::thread::LocalKey<Cell<SEXP>>, name: &CStr) -> SEXP {
    cell.with(|c| {
        if c.get().is_null() {
            // Symbols are never collected.
            c.set(Rf_install(name.as_ptr()));
        }
        c.get()
    })
}

/// The tag of host handles (external pointers made by `mirai_rapi`, owning a [`HostBox`]).
pub(crate) static HOST_TAG: Tag = Tag::new(c"mirai_host");

pub(crate) unsafe fn task_tag() -> SEXP {
    tag(&TASK_TAG, c"mirai_task")
}

unsafe extern "C" fn task_finalizer(x: SEXP) {
    let p = R_ExternalPtrAddr(x) as *mut TaskBox;
    if !p.is_null() {
        R_ClearExternalPtr(x);
        // SAFETY: `p` came from Box::into_raw in `new_handle` and the pointer was just
        // cleared, so this is the only release.
        quietly(|| drop(Box::from_raw(p)));
    }
}

pub(crate) unsafe fn new_handle<T>(
    value: T,
    tag: SEXP,
    fin: unsafe extern "C" fn(SEXP),
    onexit: bool,
) -> SEXP {
    let p = Box::into_raw(Box::new(value));
    let mut pr = Protector::new();
    let x = pr.protect(R_MakeExternalPtr(p as *mut c_void, tag, R_NilValue));
    R_RegisterCFinalizerEx(x, Some(fin), Rboolean::from(onexit));
    x
}

pub(crate) fn new_host<'s>(s: &'s Scope, host: Host) -> Sexp<'s> {
    let hb = HostBox {
        host,
        chunks: RefCell::new(Vec::new()),
        chunks_done: Cell::new(0),
        map_span: RefCell::new(None),
    };
    // onexit: a profile still set when R quits is reset, so its daemons are told.
    s.extptr(hb, &HOST_TAG, true)
}

pub(crate) unsafe fn new_task(handle: TaskHandle, hb: &HostBox) -> SEXP {
    new_task_ref(HandleRef::Own(handle), hb)
}

pub(crate) unsafe fn new_task_ref(handle: HandleRef, hb: &HostBox) -> SEXP {
    let tb = TaskBox {
        handle,
        host: hb.host.clone(),
        outcome: None,
    };
    new_handle(tb, task_tag(), task_finalizer, false)
}

pub(crate) unsafe fn is_handle(x: SEXP, tag: SEXP) -> bool {
    type_of(x) == SEXPTYPE::EXTPTRSXP
        && R_ExternalPtrTag(x) == tag
        && !R_ExternalPtrAddr(x).is_null()
}

/// Is `x` a task handle: a task external pointer, or a mirai with a keyed task?
pub(crate) unsafe fn is_task(x: SEXP) -> bool {
    is_handle(x, task_tag()) || keyed_box(Sexp::from_raw(x)).is_some()
}

/// The engine of host handle `x`, borrowed for as long as `x`.
pub(crate) fn host_ref<'a>(r: R, x: Sexp<'a>, name: &str) -> RResult<&'a HostBox> {
    x.extptr_ref(&HOST_TAG, r)
        .ok_or_else(|| format!("`{name}` is not a valid mirai host handle").into())
}

/// [`host_ref`] on a raw SEXP.
///
/// # Safety
/// Main thread; `x` valid and alive for `'a`.
pub(crate) unsafe fn host_of<'a>(x: SEXP, name: &str) -> RResult<&'a HostBox> {
    host_ref(R::assume(), Sexp::from_raw(x), name)
}

/// The task's box. Callers keep the reference only while they call no R code that could run
/// other routines on the same task (or, for a keyed task, settle or collect its mirai).
pub(crate) unsafe fn task_of<'a>(x: SEXP, name: &str) -> RResult<&'a mut TaskBox> {
    if is_handle(x, task_tag()) {
        return Ok(&mut *(R_ExternalPtrAddr(x) as *mut TaskBox));
    }
    match keyed_box(Sexp::from_raw(x)) {
        // SAFETY: the box is owned by the table and stays put until its mirai settles or is
        // collected, neither of which happens while a routine works on the task.
        Some(b) => Ok(&mut *b.as_ptr()),
        None => Err(format!("`{name}` is not a valid mirai task handle").into()),
    }
}

/// The engine handle of a task handle (for `mirai_later`).
pub(crate) unsafe fn task_handle<'a>(x: SEXP, name: &str) -> RResult<&'a TaskHandle> {
    Ok(&task_of(x, name)?.handle)
}

/// The engine handle of task handle `x` (for `mirai_later`), borrowed for as long as `x`.
pub(crate) fn task_handle_of<'a>(x: Sexp<'a>, name: &str) -> RResult<&'a TaskHandle> {
    // SAFETY: a routine argument on the main thread; the box outlives the borrow (see
    // `task_of`), and only a shared reference is handed out.
    unsafe { task_handle(x.raw(), name) }
}

/// The value cached by `mirai_take`, if any (kept as `list(value)` in the pointer's
/// protected field, so the GC keeps it alive with the handle; keyed tasks cache nothing: their
/// mirai keeps the value and forgets the task).
pub(crate) unsafe fn cached(x: SEXP) -> Option<SEXP> {
    if type_of(x) != SEXPTYPE::EXTPTRSXP {
        return None;
    }
    let prot = R_ExternalPtrProtected(x);
    if is_null(prot) {
        None
    } else {
        Some(VECTOR_ELT(prot, 0))
    }
}

/// Whether a task handle has resolved (taken or not); false for anything else.
pub(crate) unsafe fn task_resolved(x: SEXP) -> bool {
    if cached(x).is_some() {
        return true;
    }
    match task_of(x, "task") {
        Ok(tb) => tb.outcome.is_some() || tb.handle.is_resolved(),
        Err(_) => false,
    }
}

/// [`task_resolved`] on a borrowed object.
#[inline]
pub(crate) fn task_resolved_of(x: Sexp<'_>) -> bool {
    // SAFETY: main thread (a Sexp exists only there), a live object.
    unsafe { task_resolved(x.raw()) }
}

/// The task handles in `tasks`: one handle, or the handles of a list (others skipped).
pub(crate) unsafe fn task_list(tasks: SEXP) -> Vec<(usize, SEXP)> {
    if is_task(tasks) {
        return vec![(0, tasks)];
    }
    if type_of(tasks) != SEXPTYPE::VECSXP {
        return Vec::new();
    }
    (0..Rf_xlength(tasks))
        .map(|i| (i as usize, VECTOR_ELT(tasks, i)))
        .filter(|&(_, x)| is_task(x))
        .collect()
}

pub(crate) fn host_error(e: HostError) -> RError {
    RError::Msg(e.to_string())
}
