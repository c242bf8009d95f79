//! Host and task handles: the boxes R's external pointers own, and access to them.
//!
//! A host handle is an external pointer with a finalizer. A task handle is either an external
//! pointer (chunks, `everywhere()` rounds, ephemeral tasks), or, for the common mirai made by
//! `mirai()`, *keyed* (see `crate::keyed`). The routines on them are in `crate::host` and
//! `crate::task`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use mirai::host::trace::Span;
use mirai::{Host, HostError, Outcome, TaskHandle};

use crate::keyed::keyed_box;
use mirai_rapi::{Kind, RError, RResult, Scope, Sexp, Tag, R};

/// The engine of one compute profile, owned by a host handle.
pub(crate) struct HostBox {
    pub(crate) host: Host,
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

/// One submitted task, owned by a task handle (an external pointer, or the keyed table).
pub(crate) struct TaskBox {
    pub(crate) handle: HandleRef,
    /// The profile's engine, for `mirai_race` (which is given only tasks).
    pub(crate) host: Host,
    /// The outcome once taken from the handle and not yet turned into an R value (boxed: it is
    /// rarely there, and every waiting task has a box).
    outcome: Cell<Option<Box<Outcome>>>,
}

impl TaskBox {
    /// A box for `handle` on `host`'s engine, without an outcome yet.
    pub(crate) fn new(handle: HandleRef, host: Host) -> TaskBox {
        TaskBox {
            handle,
            host,
            outcome: Cell::new(None),
        }
    }

    /// Keeps an outcome taken from the handle.
    pub(crate) fn set_outcome(&self, o: Outcome) {
        self.outcome.set(Some(Box::new(o)));
    }

    /// The kept outcome, or the handle's if it has resolved.
    pub(crate) fn take_outcome(&self) -> Option<Outcome> {
        self.outcome
            .take()
            .map(|b| *b)
            .or_else(|| self.handle.try_take())
    }

    /// Whether the task has resolved (its outcome taken from the handle or not).
    pub(crate) fn is_resolved(&self) -> bool {
        let o = self.outcome.take();
        let kept = o.is_some();
        self.outcome.set(o);
        kept || self.handle.is_resolved()
    }
}

/// A task's engine handle, owned. (Each element of a chunked `mirai_map()` has its own
/// handle too: `crate::chunk`.)
pub(crate) enum HandleRef {
    Own(TaskHandle),
}

impl std::ops::Deref for HandleRef {
    type Target = TaskHandle;

    fn deref(&self) -> &TaskHandle {
        match self {
            HandleRef::Own(h) => h,
        }
    }
}

/// A task's box as reached from its handle: borrowed from an external pointer, or shared with
/// the keyed table (so that it outlives its entry if the mirai settles meanwhile).
pub(crate) enum TaskRef<'a> {
    Ptr(&'a TaskBox),
    Keyed(Rc<TaskBox>),
}

impl std::ops::Deref for TaskRef<'_> {
    type Target = TaskBox;

    fn deref(&self) -> &TaskBox {
        match self {
            TaskRef::Ptr(b) => b,
            TaskRef::Keyed(b) => b,
        }
    }
}

/// The tag of host handles (external pointers owning a [`HostBox`]).
pub(crate) static HOST_TAG: Tag = Tag::new(c"mirai_host");

/// The tag of task handles (external pointers owning a [`TaskBox`]).
pub(crate) static TASK_TAG: Tag = Tag::new(c"mirai_task");

pub(crate) fn new_host<'s>(s: &'s Scope, host: Host) -> Sexp<'s> {
    let hb = HostBox {
        host,
        map_span: RefCell::new(None),
    };
    // onexit: a profile still set when R quits is reset, so its daemons are told.
    s.extptr(hb, &HOST_TAG, true)
}

/// A new task handle (an external pointer) for `handle`, protected by `s`.
pub(crate) fn new_task<'s>(s: &'s Scope, handle: TaskHandle, hb: &HostBox) -> Sexp<'s> {
    new_task_ref(s, HandleRef::Own(handle), hb)
}

/// [`new_task`] for a handle that may be shared.
pub(crate) fn new_task_ref<'s>(s: &'s Scope, handle: HandleRef, hb: &HostBox) -> Sexp<'s> {
    s.extptr(TaskBox::new(handle, hb.host.clone()), &TASK_TAG, false)
}

/// Is `x` a task handle: a task external pointer, or a mirai with a keyed task?
pub(crate) fn is_task_ref(r: R, x: Sexp<'_>) -> bool {
    x.extptr_ref::<TaskBox>(&TASK_TAG, r).is_some() || keyed_box(x).is_some()
}

/// The engine of host handle `x`, borrowed for as long as `x`.
pub(crate) fn host_ref<'a>(r: R, x: Sexp<'a>, name: &str) -> RResult<&'a HostBox> {
    x.extptr_ref(&HOST_TAG, r)
        .ok_or_else(|| format!("`{name}` is not a valid mirai host handle").into())
}

/// The task's box.
pub(crate) fn task_ref<'a>(r: R, x: Sexp<'a>, name: &str) -> RResult<TaskRef<'a>> {
    if let Some(b) = x.extptr_ref::<TaskBox>(&TASK_TAG, r) {
        return Ok(TaskRef::Ptr(b));
    }
    match keyed_box(x) {
        Some(b) => Ok(TaskRef::Keyed(b)),
        None => Err(format!("`{name}` is not a valid mirai task handle").into()),
    }
}

/// The engine handle of task handle `x` (for `mirai_later`): its task's box.
pub(crate) fn task_handle_of<'a>(r: R, x: Sexp<'a>, name: &str) -> RResult<TaskRef<'a>> {
    task_ref(r, x, name)
}

/// The value cached by `mirai_take`, if any (kept as `list(value)` in the pointer's
/// protected field, so the GC keeps it alive with the handle; keyed tasks cache nothing: their
/// mirai keeps the value and forgets the task).
pub(crate) fn cached_of(x: Sexp<'_>) -> Option<Sexp<'_>> {
    if x.kind() != Kind::EXTPTRSXP {
        return None;
    }
    x.extptr_protected().list_elt(0)
}

/// Whether a task handle has resolved (taken or not); false for anything else.
pub(crate) fn task_resolved_of(r: R, x: Sexp<'_>) -> bool {
    if cached_of(x).is_some() {
        return true;
    }
    match task_ref(r, x, "task") {
        Ok(tb) => tb.is_resolved(),
        Err(_) => false,
    }
}

/// The task handles in `tasks`: one handle, or the handles of a list (others skipped).
pub(crate) fn task_list_of(r: R, tasks: Sexp<'_>) -> Vec<(usize, Sexp<'_>)> {
    if is_task_ref(r, tasks) {
        return vec![(0, tasks)];
    }
    if tasks.kind() != Kind::VECSXP {
        return Vec::new();
    }
    (0..tasks.len())
        .filter_map(|i| tasks.list_elt(i).map(|x| (i, x)))
        .filter(|&(_, x)| is_task_ref(r, x))
        .collect()
}

pub(crate) fn host_error(e: HostError) -> RError {
    RError::Msg(e.to_string())
}
