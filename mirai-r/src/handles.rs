//! Host and task handles and the routines on them.
//!
//! A host handle is an external pointer with a finalizer. A task handle is either an external
//! pointer (chunks, `everywhere()` rounds, ephemeral tasks), or, for the common mirai made by
//! `mirai()`, *keyed*: the task lives in a table keyed by the mirai environment's address
//! (R's collector never moves objects), and the handle R passes around is the mirai itself. A
//! keyed mirai thus costs R no external pointer and no `.aio` binding, only the weak reference
//! whose finalizer drops its table entry (the bridge's largest share of the memory of an
//! unresolved mirai; see bench/NOTES.md). Only the mirai itself reaches its task: nothing R
//! code can change (such as its attributes) names the entry.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::CStr;
use std::os::raw::c_void;
use std::rc::Rc;

use libR_sys::*;
use mirai::host::launch::Command;
use mirai::host::trace::Span;
use mirai::host::RepairPolicy;
use mirai::sched::Mode;
use mirai::transport::{Backend, Options as TransportOptions};
use mirai::{Host, HostConfig, HostError, Outcome, SubmitOptions, TaskHandle};

use crate::guard::{entry, interrupt_pending, quietly, Protector, RError, RResult};
use crate::serial::{serialize, to_raw_vector, unserialize, Hooks};
use crate::sexp::*;
use crate::wait::{Deadline, SLICE};

/// The engine of one compute profile, owned by a host handle.
struct HostBox {
    host: Host,
    /// Chunks of `mirai_map()` elements not yet seen resolved, with their element count less
    /// one, so that `mirai_host_status` counts elements, not chunks (spec §2.2: chunking must
    /// not be visible). Main thread only.
    chunks: RefCell<Vec<(Rc<TaskHandle>, u64)>>,
    /// The extra elements of the chunks seen resolved.
    chunks_done: Cell<u64>,
    /// The `mirai_map` span open while `mirai_map()` submits its elements (tracing on only),
    /// with the number of tasks submitted under it: the parent of their `mirai` spans.
    map_span: RefCell<Option<(Span, i64)>>,
}

impl HostBox {
    /// Moves resolved chunks to `chunks_done`; the extra elements of those still waiting in
    /// the queue and of those sent to a daemon.
    fn chunk_extras(&self) -> (u64, u64) {
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
struct TaskBox {
    handle: HandleRef,
    /// The profile's engine, for `mirai_race` (which is given only tasks).
    host: Host,
    /// The outcome once taken from the handle and not yet turned into an R value (boxed: it is
    /// rarely there, and every waiting task has a box).
    outcome: Option<Box<Outcome>>,
    /// For a keyed task: the weak reference on its mirai whose finalizer drops the task if
    /// the mirai is collected unsettled (`R_NilValue` otherwise). Alive while this entry
    /// exists: R keeps a weak reference until its finalizer has run, and the finalizer removes
    /// the entry.
    weak: SEXP,
}

/// A task's engine handle: owned, or shared with its host's chunk book (chunks only, so that
/// ordinary tasks cost no extra allocation), with the number of the chunk's elements not
/// stopped.
enum HandleRef {
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
    static HOST_TAG: Cell<SEXP> = const { Cell::new(std::ptr::null_mut()) };
    static TASK_TAG: Cell<SEXP> = const { Cell::new(std::ptr::null_mut()) };
    /// Keyed tasks by their mirai's address (main thread only). Boxed so that a `&mut TaskBox`
    /// handed out by `task_of` stays valid while the table grows. The table is borrowed only
    /// for a lookup, an insertion or a removal, and never while R code can run, so a finalizer
    /// (which R runs only from inside its API) always finds it free. An entry goes when its
    /// mirai settles or is collected, so an address is never reused while in the table.
    static KEYED: RefCell<HashMap<usize, Box<TaskBox>>> = RefCell::new(HashMap::new());
}

unsafe fn tag(cell: &'static std::thread::LocalKey<Cell<SEXP>>, name: &CStr) -> SEXP {
    cell.with(|c| {
        if c.get().is_null() {
            // Symbols are never collected.
            c.set(Rf_install(name.as_ptr()));
        }
        c.get()
    })
}

unsafe fn host_tag() -> SEXP {
    tag(&HOST_TAG, c"mirai_host")
}

unsafe fn task_tag() -> SEXP {
    tag(&TASK_TAG, c"mirai_task")
}

unsafe extern "C" fn host_finalizer(x: SEXP) {
    let p = R_ExternalPtrAddr(x) as *mut HostBox;
    if !p.is_null() {
        R_ClearExternalPtr(x);
        // SAFETY: `p` came from Box::into_raw in `new_host` and the pointer was just cleared,
        // so this is the only release.
        quietly(|| {
            let b = Box::from_raw(p);
            b.host.reset();
        });
    }
}

unsafe extern "C" fn task_finalizer(x: SEXP) {
    let p = R_ExternalPtrAddr(x) as *mut TaskBox;
    if !p.is_null() {
        R_ClearExternalPtr(x);
        // SAFETY: as in host_finalizer.
        quietly(|| drop(Box::from_raw(p)));
    }
}

unsafe fn new_handle<T>(
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

unsafe fn new_host(host: Host) -> SEXP {
    // onexit: a profile still set when R quits is reset, so its daemons are told.
    let hb = HostBox {
        host,
        chunks: RefCell::new(Vec::new()),
        chunks_done: Cell::new(0),
        map_span: RefCell::new(None),
    };
    new_handle(hb, host_tag(), host_finalizer, true)
}

unsafe fn new_task(handle: TaskHandle, hb: &HostBox) -> SEXP {
    new_task_ref(HandleRef::Own(handle), hb)
}

unsafe fn new_task_ref(handle: HandleRef, hb: &HostBox) -> SEXP {
    let tb = TaskBox {
        handle,
        host: hb.host.clone(),
        outcome: None,
        weak: R_NilValue,
    };
    new_handle(tb, task_tag(), task_finalizer, false)
}

unsafe fn is_handle(x: SEXP, tag: SEXP) -> bool {
    type_of(x) == SEXPTYPE::EXTPTRSXP
        && R_ExternalPtrTag(x) == tag
        && !R_ExternalPtrAddr(x).is_null()
}

/// Is `x` a task handle: a task external pointer, or a mirai with a keyed task?
pub(crate) unsafe fn is_task(x: SEXP) -> bool {
    is_handle(x, task_tag()) || keyed_box(x).is_some()
}

/// The table key of `x` if it could be a keyed handle: an environment's address.
unsafe fn key_of(x: SEXP) -> Option<usize> {
    (type_of(x) == SEXPTYPE::ENVSXP).then_some(x as usize)
}

/// The box of the keyed task of `x`, if `x` is a mirai with one.
unsafe fn keyed_box(x: SEXP) -> Option<*mut TaskBox> {
    let key = key_of(x)?;
    KEYED.with(|t| {
        t.borrow_mut()
            .get_mut(&key)
            .map(|b| &mut **b as *mut TaskBox)
    })
}

/// Submits `data` to `host` as the keyed task of mirai `m`, whose weak reference (from
/// [`watch_keyed`]) is `weak` (see the module docs).
///
/// # Safety
/// Main thread, valid SEXPs; `m` a new mirai without a task.
pub(crate) unsafe fn submit_keyed(
    host: SEXP,
    data: SEXP,
    timeout: SEXP,
    hooks: SEXP,
    m: SEXP,
    weak: SEXP,
) -> RResult<()> {
    let hb = host_of(host, "host")?;
    let handle = submit_handle(hb, data, timeout, hooks)?;
    let tb = TaskBox {
        handle: HandleRef::Own(handle),
        host: hb.host.clone(),
        outcome: None,
        weak,
    };
    KEYED.with(|t| t.borrow_mut().insert(m as usize, Box::new(tb)));
    Ok(())
}

/// Drops the keyed task of mirai `m` once `m` has settled. Its weak reference's finalizer does it,
/// run now: that also frees the weak reference, so that the mirai's environment, when it dies,
/// is not kept for one more collection to be finalized (which made every mirai cost ~2 us
/// more at the next collection; bench/NOTES.md).
///
/// # Safety
/// Main thread.
pub(crate) unsafe fn release_keyed(m: SEXP) {
    let weak = KEYED.with(|t| t.borrow().get(&(m as usize)).map(|b| b.weak));
    if let Some(w) = weak {
        R_RunWeakRefFinalizer(w);
    }
}

/// Drops the keyed task under `key` (its mirai settled, or was collected). The box is dropped
/// after the table is released.
fn forget_keyed(key: usize) {
    let gone = KEYED.with(|t| t.borrow_mut().remove(&key));
    drop(gone);
}

/// Finalizer of a keyed mirai (run by R when the mirai is collected, or by `release_keyed`
/// when it settles): drops its task.
unsafe extern "C" fn keyed_finalizer(m: SEXP) {
    quietly(|| forget_keyed(m as usize));
}

/// Registers the finalizer of keyed mirai `m` (before its task is submitted, so that a failed
/// registration leaves no task behind): the weak reference, for [`submit_keyed`].
///
/// # Safety
/// Main thread; `m` a mirai environment.
pub(crate) unsafe fn watch_keyed(m: SEXP) -> SEXP {
    R_MakeWeakRefC(m, R_NilValue, Some(keyed_finalizer), Rboolean::FALSE)
}

/// The handle of mirai `m`'s keyed task, if it has one: `m` itself.
///
/// # Safety
/// Main thread, valid SEXPs.
pub(crate) unsafe fn keyed_handle(m: SEXP) -> Option<SEXP> {
    keyed_box(m).map(|_| m)
}

/// Is `x` a keyed handle (a mirai with a keyed task) rather than an external pointer?
pub(crate) unsafe fn is_keyed(x: SEXP) -> bool {
    keyed_box(x).is_some()
}

unsafe fn host_of<'a>(x: SEXP, name: &str) -> RResult<&'a HostBox> {
    if !is_handle(x, host_tag()) {
        return Err(format!("`{name}` is not a valid mirai host handle").into());
    }
    Ok(&*(R_ExternalPtrAddr(x) as *const HostBox))
}

/// The task's box. Callers keep the reference only while they call no R code that could run
/// other routines on the same task (or, for a keyed task, settle or collect its mirai).
unsafe fn task_of<'a>(x: SEXP, name: &str) -> RResult<&'a mut TaskBox> {
    if is_handle(x, task_tag()) {
        return Ok(&mut *(R_ExternalPtrAddr(x) as *mut TaskBox));
    }
    match keyed_box(x) {
        // SAFETY: the box is owned by the table and stays put until its mirai settles or is
        // collected, neither of which happens while a routine works on the task.
        Some(b) => Ok(&mut *b),
        None => Err(format!("`{name}` is not a valid mirai task handle").into()),
    }
}

/// The engine handle of a task handle (for `mirai_later`).
pub(crate) unsafe fn task_handle<'a>(x: SEXP, name: &str) -> RResult<&'a TaskHandle> {
    Ok(&task_of(x, name)?.handle)
}

/// The value cached by `mirai_take`, if any (kept as `list(value)` in the pointer's
/// protected field, so the GC keeps it alive with the handle; keyed tasks cache nothing: their
/// mirai keeps the value and forgets the task).
unsafe fn cached(x: SEXP) -> Option<SEXP> {
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

/// The task handles in `tasks`: one handle, or the handles of a list (others skipped).
unsafe fn task_list(tasks: SEXP) -> Vec<(usize, SEXP)> {
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

fn host_error(e: HostError) -> RError {
    RError::Msg(e.to_string())
}

/// Transport settings; `MIRAI_TRANSPORT=nng` selects the NNG backend (benchmarks, interop).
fn transport_options() -> TransportOptions {
    let mut o = TransportOptions::default();
    if std::env::var("MIRAI_TRANSPORT").is_ok_and(|v| v.eq_ignore_ascii_case("nng")) {
        o.backend = Backend::Nng;
    }
    o
}

pub(crate) fn daemon_transport_options() -> TransportOptions {
    transport_options()
}

// ---- host routines ----------------------------------------------------------------------

/// `.Call` routine (docs/r-bridge.md): starts a host (compute profile engine) listening at `url`.
///
/// # Safety
/// Called by R through `.Call` on its main thread, with valid SEXP arguments.
#[no_mangle]
pub unsafe extern "C" fn mirai_host_start(
    url: SEXP,
    dispatcher: SEXP,
    memory: SEXP,
    stream: SEXP,
    serial: SEXP,
    opts: SEXP,
) -> SEXP {
    // SAFETY (all routines): called by R through .Call on the main thread with valid SEXPs.
    entry(|| unsafe {
        // TLS credentials travel as an attribute of `url` (routines have a fixed arity).
        let tls = Rf_getAttrib(url, Rf_install(c"tls".as_ptr()));
        let tls = if is_null(tls) {
            None
        } else {
            Some(crate::tls::server_config(tls)?)
        };
        host_start(url, dispatcher, memory, stream, serial, opts, tls)
    })
}

/// The largest `retry` count a profile takes: far beyond any use, and small enough that a
/// typo such as `1e9` is an error rather than a task re-run forever.
const MAX_RETRY: f64 = 1000.0;

/// Applies the profile options `opts` of `mirai_host_start`: `NULL`, or a named list of any of
/// `compute` (chr1, the profile's name, for tracing), `retry` (how many times a task whose
/// daemon is lost is sent again) and `repair` (relaunch crashed daemons the host started).
unsafe fn profile_options(opts: SEXP, config: &mut HostConfig) -> RResult<()> {
    if is_null(opts) {
        return Ok(());
    }
    if type_of(opts) != SEXPTYPE::VECSXP {
        return Err("`opts` must be a named list".into());
    }
    let names = Rf_getAttrib(opts, R_NamesSymbol);
    for i in 0..Rf_xlength(opts) {
        let name = if type_of(names) == SEXPTYPE::STRSXP {
            char_text(STRING_ELT(names, i))
        } else {
            String::new()
        };
        let v = VECTOR_ELT(opts, i);
        match name.as_str() {
            "compute" => config.compute = arg_string(v, "compute")?,
            "retry" => {
                let n = arg_num(v, "retry").map_err(|_| "`retry` must be a single whole number")?;
                if !(0.0..=MAX_RETRY).contains(&n) || n.fract() != 0.0 {
                    return Err(
                        format!("`retry` must be a whole number from 0 to {MAX_RETRY}").into(),
                    );
                }
                config.retries = n as u32;
            }
            "repair" => {
                let on = arg_lgl(v, "repair")?.ok_or("`repair` must be TRUE or FALSE")?;
                config.repair = on.then(RepairPolicy::default);
            }
            other => return Err(format!("unknown profile option '{other}'").into()),
        }
    }
    Ok(())
}

unsafe fn host_start(
    url: SEXP,
    dispatcher: SEXP,
    memory: SEXP,
    stream: SEXP,
    serial: SEXP,
    opts: SEXP,
    tls: Option<mirai::transport::TlsConfig>,
) -> RResult<SEXP> {
    {
        let url = arg_string(url, "url")?;
        let dispatcher =
            arg_lgl(dispatcher, "dispatcher")?.ok_or("`dispatcher` must be TRUE or FALSE")?;
        let memory = if is_null(memory) {
            None
        } else {
            memory_budget(arg_num(memory, "memory")?)
        };
        let mut config = HostConfig::new(url.clone());
        config.mode = if dispatcher {
            Mode::Dispatcher
        } else {
            Mode::Direct
        };
        config.memory_limit = memory;
        config.stream = arg_stream(stream, "stream")?;
        config.serial = arg_raw(serial, "serial")?.to_vec();
        config.transport = transport_options();
        config.transport.tls = tls;
        profile_options(opts, &mut config)?;
        // Diagnostics and side-by-side benchmarks: MIRAI_PIPELINE=off sends each daemon one
        // task at a time, as mirai does; a number sets the threshold in milliseconds
        // (pipelining is described in docs/architecture.md).
        if let Ok(v) = std::env::var("MIRAI_PIPELINE") {
            match v.to_ascii_lowercase().as_str() {
                "off" | "0" | "false" => config.pipeline = None,
                ms => {
                    if let Some(d) = ms.parse::<f64>().ok().filter(|x| x.is_finite() && *x > 0.0) {
                        config.pipeline = Some(std::time::Duration::from_secs_f64(d / 1000.0));
                    }
                }
            }
        }
        let host = Host::start(config).map_err(|e| {
            let msg = e.to_string();
            if msg.contains(&url) {
                msg
            } else {
                format!("cannot start a host at '{url}': {msg}")
            }
        })?;
        Ok(new_host(host))
    }
}

/// `.Call` routine (docs/r-bridge.md): the URL daemons dial.
///
/// # Safety
/// Called by R through `.Call` on its main thread, with valid SEXP arguments.
#[no_mangle]
pub unsafe extern "C" fn mirai_host_url(host: SEXP) -> SEXP {
    entry(|| unsafe { Ok(mk_string(host_of(host, "host")?.host.url())) })
}

/// `.Call` routine (docs/r-bridge.md): resets a host (optionally telling daemons to exit first).
///
/// # Safety
/// Called by R through `.Call` on its main thread, with valid SEXP arguments.
#[no_mangle]
pub unsafe extern "C" fn mirai_host_reset(host: SEXP, exit: SEXP) -> SEXP {
    entry(|| unsafe {
        let hb = host_of(host, "host")?;
        if arg_lgl(exit, "exit")?.unwrap_or(false) {
            hb.host.exit_daemons();
        }
        hb.host.reset();
        Ok(R_NilValue)
    })
}

fn saturating_i32(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// `.Call` routine (docs/r-bridge.md): counters and memory of a host.
///
/// # Safety
/// Called by R through `.Call` on its main thread, with valid SEXP arguments.
#[no_mangle]
pub unsafe extern "C" fn mirai_host_status(host: SEXP) -> SEXP {
    entry(|| unsafe {
        let hb = host_of(host, "host")?;
        let mut st = hb.host.status();
        // Chunks count as their elements (the engine counts each chunk once).
        let (queued, running) = hb.chunk_extras();
        st.counters.awaiting += queued;
        st.counters.executing += running;
        st.counters.completed += hb.chunks_done.get();
        let mut p = Protector::new();
        let url = p.protect(mk_string(&st.url));
        let c = &st.counters;
        let counters = p.protect(Rf_allocVector(SEXPTYPE::INTSXP, 5));
        let cv = std::slice::from_raw_parts_mut(INTEGER(counters), 5);
        for (dst, v) in cv.iter_mut().zip([
            c.connections,
            c.cumulative,
            c.awaiting,
            c.executing,
            c.completed,
        ]) {
            *dst = saturating_i32(v);
        }
        let memory = p.protect(Rf_allocVector(SEXPTYPE::REALSXP, 3));
        let mv = std::slice::from_raw_parts_mut(REAL(memory), 3);
        mv[0] = st.memory.used as f64;
        mv[1] = st.memory.peak as f64;
        mv[2] = st.memory.limit.map_or(R_NaReal, |l| l as f64);
        Ok(named_list(&[
            (c"url", url),
            (c"counters", counters),
            (c"memory", memory),
        ]))
    })
}

/// `.Call` routine (docs/r-bridge.md): waits, interruptibly, until `n` daemons completed the handshake.
///
/// # Safety
/// Called by R through `.Call` on its main thread, with valid SEXP arguments.
#[no_mangle]
pub unsafe extern "C" fn mirai_host_wait_connections(host: SEXP, n: SEXP, timeout: SEXP) -> SEXP {
    entry(|| unsafe {
        let hb = host_of(host, "host")?;
        let n = arg_num(n, "n")?;
        if n.is_nan() || n < 0.0 {
            return Err("`n` must be a non-negative number".into());
        }
        let dl = Deadline::after(wait_timeout(arg_num(timeout, "timeout")?));
        loop {
            if hb.host.wait_connections(n as u64, dl.slice(SLICE)) {
                return Ok(lgl(true));
            }
            if dl.expired() {
                return Ok(lgl(false));
            }
            if interrupt_pending() {
                return Err(RError::Interrupt);
            }
        }
    })
}

/// `.Call` routine (docs/r-bridge.md): starts one daemon process.
///
/// # Safety
/// Called by R through `.Call` on its main thread, with valid SEXP arguments.
#[no_mangle]
pub unsafe extern "C" fn mirai_host_launch(host: SEXP, program: SEXP, args: SEXP) -> SEXP {
    entry(|| unsafe {
        let hb = host_of(host, "host")?;
        let mut command = Command::new(arg_string(program, "program")?);
        command.args = arg_strings(args, "args")?;
        hb.host.launch(&command, 1).map_err(host_error)?;
        Ok(R_NilValue)
    })
}

/// `.Call` routine (docs/r-bridge.md): whether a task would be admitted under the memory budget now.
///
/// # Safety
/// Called by R through `.Call` on its main thread, with valid SEXP arguments.
#[no_mangle]
pub unsafe extern "C" fn mirai_host_admit(host: SEXP) -> SEXP {
    entry(|| unsafe { Ok(lgl(host_of(host, "host")?.host.admit())) })
}

/// `.Call` routine (docs/r-bridge.md): waits, interruptibly, until a task would be admitted.
///
/// # Safety
/// Called by R through `.Call` on its main thread, with valid SEXP arguments.
#[no_mangle]
pub unsafe extern "C" fn mirai_host_wait_admit(host: SEXP, timeout: SEXP) -> SEXP {
    entry(|| unsafe {
        let hb = host_of(host, "host")?;
        let dl = Deadline::after(wait_timeout(arg_num(timeout, "timeout")?));
        loop {
            if hb.host.wait_admit(dl.slice(SLICE)) {
                return Ok(lgl(true));
            }
            if dl.expired() {
                return Ok(lgl(false));
            }
            if interrupt_pending() {
                return Err(RError::Interrupt);
            }
        }
    })
}

/// `.Call` routine (docs/r-bridge.md): sends an exit instruction to every connected daemon.
///
/// # Safety
/// Called by R through `.Call` on its main thread, with valid SEXP arguments.
#[no_mangle]
pub unsafe extern "C" fn mirai_host_exit_daemons(host: SEXP) -> SEXP {
    entry(|| unsafe {
        host_of(host, "host")?.host.exit_daemons();
        Ok(R_NilValue)
    })
}

// ---- task routines ----------------------------------------------------------------------

/// `.Call` routine (docs/r-bridge.md): serializes `data` and submits it as a task.
///
/// # Safety
/// Called by R through `.Call` on its main thread, with valid SEXP arguments.
#[no_mangle]
pub unsafe extern "C" fn mirai_submit(host: SEXP, data: SEXP, timeout: SEXP, hooks: SEXP) -> SEXP {
    entry(|| unsafe { submit(host, data, timeout, hooks) })
}

/// Serializes `data` and submits it to `host`: the new task handle (unprotected).
///
/// # Safety
/// Main thread, valid SEXPs.
pub(crate) unsafe fn submit(host: SEXP, data: SEXP, timeout: SEXP, hooks: SEXP) -> RResult<SEXP> {
    let hb = host_of(host, "host")?;
    Ok(new_task(submit_handle(hb, data, timeout, hooks)?, hb))
}

unsafe fn submit_handle(
    hb: &HostBox,
    data: SEXP,
    timeout: SEXP,
    hooks: SEXP,
) -> RResult<TaskHandle> {
    let hooks = Hooks::from_sexp(hooks, "hooks")?;
    let timeout = if is_null(timeout) {
        None
    } else {
        limit_ms(arg_num(timeout, "timeout")?, "timeout")?
    };
    let payload = serialize(data, hooks.as_ref())?;
    let mut parent = None;
    if let Some((span, tasks)) = hb.map_span.borrow_mut().as_mut() {
        parent = span.context();
        *tasks += 1;
    }
    hb.host
        .submit(
            payload,
            SubmitOptions::new()
                .with_timeout(timeout)
                .with_parent(parent),
        )
        .map_err(host_error)
}

/// `.Call` routine (docs/r-bridge.md): opens (`open` TRUE) or ends the `mirai_map` span under
/// which the tasks submitted meanwhile are traced. Nothing happens when tracing is off.
///
/// # Safety
/// Called by R through `.Call` on its main thread, with valid SEXP arguments.
#[no_mangle]
pub unsafe extern "C" fn mirai_host_map_span(host: SEXP, open: SEXP) -> SEXP {
    entry(|| unsafe {
        let hb = host_of(host, "host")?;
        let open = arg_lgl(open, "open")?.unwrap_or(false);
        let mut slot = hb.map_span.borrow_mut();
        if let Some((mut span, tasks)) = slot.take() {
            span.set_attribute("mirai.tasks", tasks);
        }
        if open && hb.host.tracing() {
            *slot = Some((hb.host.map_span(None), 0));
        }
        Ok(R_NilValue)
    })
}

/// How many times the task of handle `x` has been sent to a daemon (more than once only when
/// it was retried after losing its daemon; 0 while queued).
///
/// # Safety
/// Main thread; `x` a task handle.
pub(crate) unsafe fn task_attempts(x: SEXP) -> RResult<u32> {
    Ok(task_of(x, "task")?.handle.attempts())
}

/// The largest `everywhere()` round `mirai_everywhere` builds.
const MAX_EVERYWHERE: u32 = 100_000;

/// `.Call` routine (docs/r-bridge.md): submits an `everywhere()` round.
///
/// # Safety
/// Called by R through `.Call` on its main thread, with valid SEXP arguments.
#[no_mangle]
pub unsafe extern "C" fn mirai_everywhere(host: SEXP, data: SEXP, min: SEXP, hooks: SEXP) -> SEXP {
    entry(|| unsafe {
        let hb = host_of(host, "host")?;
        let hooks = Hooks::from_sexp(hooks, "hooks")?;
        let min = arg_num(min, "min")?;
        if min.is_nan() || min < 0.0 {
            return Err("`min` must be a non-negative number".into());
        }
        // Each of the `min` tasks is built up front: a runaway value must be an error, not an
        // allocation failure that aborts R.
        if min > MAX_EVERYWHERE as f64 {
            return Err(
                format!("`min` must be at most {MAX_EVERYWHERE} (one task per daemon)").into(),
            );
        }
        let payload = serialize(data, hooks.as_ref())?;
        let handles = hb
            .host
            .everywhere(payload, min as usize)
            .map_err(host_error)?;
        let mut p = Protector::new();
        let out = p.protect(Rf_allocVector(SEXPTYPE::VECSXP, handles.len() as R_xlen_t));
        for (i, h) in handles.into_iter().enumerate() {
            SET_VECTOR_ELT(out, i as R_xlen_t, new_task(h, hb));
        }
        Ok(out)
    })
}

/// `.Call` routine (docs/r-bridge.md): whether a task has resolved (never waits, never consumes).
///
/// # Safety
/// Called by R through `.Call` on its main thread, with valid SEXP arguments.
#[no_mangle]
pub unsafe extern "C" fn mirai_resolved(task: SEXP) -> SEXP {
    entry(|| unsafe {
        task_of(task, "task")?;
        Ok(lgl(task_resolved(task)))
    })
}

/// `.Call` routine (docs/r-bridge.md): the value of a resolved task (cached), or `sentinel`.
///
/// # Safety
/// Called by R through `.Call` on its main thread, with valid SEXP arguments.
#[no_mangle]
pub unsafe extern "C" fn mirai_take(task: SEXP, hooks: SEXP, sentinel: SEXP) -> SEXP {
    entry(|| unsafe { take(task, hooks, sentinel) })
}

/// The value of a resolved task (cached in the handle), or `sentinel` (see `mirai_take`).
///
/// # Safety
/// Main thread, valid SEXPs.
pub(crate) unsafe fn take(task: SEXP, hooks: SEXP, sentinel: SEXP) -> RResult<SEXP> {
    let tb = task_of(task, "task")?;
    if let Some(v) = cached(task) {
        return Ok(v);
    }
    let outcome = match tb
        .outcome
        .take()
        .map(|b| *b)
        .or_else(|| tb.handle.try_take())
    {
        Some(o) => o,
        None => return Ok(sentinel),
    };
    let hooks = match Hooks::from_sexp(hooks, "hooks") {
        Ok(h) => h,
        Err(e) => {
            task_of(task, "task")?.outcome = Some(Box::new(outcome));
            return Err(e);
        }
    };
    // No reference into the box is held while R code (hooks) runs.
    let value = match &outcome {
        Outcome::Error(code) => Ok(error_value(code.code())),
        Outcome::Value { payload, .. } => unserialize(payload, hooks.as_ref()),
    };
    let value = match value {
        Ok(v) => v,
        Err(e) => {
            // Keep the outcome so that a later call can try again.
            task_of(task, "task")?.outcome = Some(Box::new(outcome));
            return Err(e);
        }
    };
    drop(outcome);
    if type_of(task) != SEXPTYPE::EXTPTRSXP {
        return Ok(value);
    }
    let mut p = Protector::new();
    p.protect(value);
    let cell = p.protect(Rf_allocVector(SEXPTYPE::VECSXP, 1));
    SET_VECTOR_ELT(cell, 0, value);
    R_SetExternalPtrProtected(task, cell);
    Ok(value)
}

/// Waits, interruptibly, until task handle `x` resolves or the deadline passes: true if
/// resolved. `x` must be a task handle.
///
/// # Safety
/// Main thread, valid SEXPs.
pub(crate) unsafe fn wait_task(x: SEXP, dl: &Deadline) -> RResult<bool> {
    while !task_resolved(x) {
        let got = task_of(x, "tasks")?.handle.wait(Some(dl.slice(SLICE)));
        if let Some(o) = got {
            task_of(x, "tasks")?.outcome = Some(Box::new(o));
            break;
        }
        if dl.expired() {
            return Ok(false);
        }
        if interrupt_pending() {
            return Err(RError::Interrupt);
        }
    }
    Ok(true)
}

/// Submits a chunk of `n` `mirai_map()` elements (see `crate::chunk`): the task handle.
///
/// # Safety
/// Main thread, valid SEXPs.
pub(crate) unsafe fn submit_chunk(host: SEXP, data: SEXP, hooks: SEXP, n: usize) -> RResult<SEXP> {
    let hb = host_of(host, "host")?;
    let shared = Rc::new(submit_handle(hb, data, R_NilValue, hooks)?);
    let mut p = Protector::new();
    let task = p.protect(new_task_ref(HandleRef::Shared(Rc::clone(&shared), n), hb));
    let mut chunks = hb.chunks.borrow_mut();
    if chunks.len() >= 256 && chunks.len().is_power_of_two() {
        drop(chunks);
        hb.chunk_extras();
        chunks = hb.chunks.borrow_mut();
    }
    chunks.push((shared, n.saturating_sub(1) as u64));
    Ok(task)
}

/// One element of chunk task `task` was stopped: the number of elements still live.
///
/// # Safety
/// Main thread, valid SEXPs.
pub(crate) unsafe fn release_one(task: SEXP) -> RResult<usize> {
    match &mut task_of(task, "task")?.handle {
        HandleRef::Shared(_, live) => {
            *live = live.saturating_sub(1);
            Ok(*live)
        }
        HandleRef::Own(_) => Ok(0),
    }
}

/// Whether the profile of task handle `task` has a dispatcher.
///
/// # Safety
/// Main thread, valid SEXPs.
pub(crate) unsafe fn task_dispatcher(task: SEXP) -> RResult<bool> {
    Ok(task_of(task, "task")?.host.mode() == Mode::Dispatcher)
}

/// Cancels the task of handle `task` on its own host: the task resolves at once with 20
/// unless already resolved. True if the profile has a dispatcher and it still held the task.
///
/// # Safety
/// Main thread, valid SEXPs.
pub(crate) unsafe fn cancel_task(task: SEXP) -> RResult<bool> {
    let tb = task_of(task, "task")?;
    let held = tb.host.cancel(&tb.handle);
    Ok(tb.host.mode() == Mode::Dispatcher && held)
}

/// `.Call` routine (docs/r-bridge.md): how many keyed tasks the bridge holds (mirai neither
/// settled nor collected): for tests and for diagnosing leaks.
///
/// # Safety
/// Called by R through `.Call` on its main thread.
#[no_mangle]
pub unsafe extern "C" fn mirai_keyed_tasks() -> SEXP {
    entry(|| unsafe {
        let n = KEYED.with(|t| t.borrow().len());
        Ok(Rf_ScalarReal(n as f64))
    })
}

/// `.Call` routine (docs/r-bridge.md): waits, interruptibly, until all tasks resolved or the timeout.
///
/// # Safety
/// Called by R through `.Call` on its main thread, with valid SEXP arguments.
#[no_mangle]
pub unsafe extern "C" fn mirai_wait(tasks: SEXP, timeout: SEXP) -> SEXP {
    entry(|| unsafe {
        let dl = Deadline::after(wait_timeout(arg_num(timeout, "timeout")?));
        for (_, x) in task_list(tasks) {
            if !wait_task(x, &dl)? {
                return Ok(lgl(false));
            }
        }
        Ok(lgl(true))
    })
}

/// `.Call` routine (docs/r-bridge.md): waits, interruptibly, for the first resolved task; its 1-based index.
///
/// # Safety
/// Called by R through `.Call` on its main thread, with valid SEXP arguments.
#[no_mangle]
pub unsafe extern "C" fn mirai_race(tasks: SEXP, timeout: SEXP) -> SEXP {
    entry(|| unsafe {
        let dl = Deadline::after(wait_timeout(arg_num(timeout, "timeout")?));
        let list = task_list(tasks);
        let Some(&(_, first)) = list.first() else {
            return Ok(Rf_ScalarInteger(0));
        };
        // Wait on the profile of the first task; others are noticed at each rescan (every
        // slice, well within the 400 ms the spec asks for).
        let host = task_of(first, "tasks")?.host.clone();
        loop {
            let seen = host.completions();
            if let Some(&(i, _)) = list.iter().find(|&&(_, x)| task_resolved(x)) {
                return Ok(Rf_ScalarInteger(i as i32 + 1));
            }
            if dl.expired() {
                return Ok(Rf_ScalarInteger(0));
            }
            host.wait_completion(seen, dl.slice(SLICE));
            if interrupt_pending() {
                return Err(RError::Interrupt);
            }
        }
    })
}

/// `.Call` routine (docs/r-bridge.md): cancels a task.
///
/// # Safety
/// Called by R through `.Call` on its main thread, with valid SEXP arguments.
#[no_mangle]
pub unsafe extern "C" fn mirai_cancel(host: SEXP, task: SEXP) -> SEXP {
    entry(|| unsafe {
        let hb = host_of(host, "host")?;
        let tb = task_of(task, "task")?;
        Ok(lgl(hb.host.cancel(&tb.handle)))
    })
}

/// `.Call` routine (docs/r-bridge.md): serializes `x` with hooks.
///
/// # Safety
/// Called by R through `.Call` on its main thread, with valid SEXP arguments.
#[no_mangle]
pub unsafe extern "C" fn mirai_serialize(x: SEXP, hooks: SEXP) -> SEXP {
    entry(|| unsafe {
        let hooks = Hooks::from_sexp(hooks, "hooks")?;
        let bytes = serialize(x, hooks.as_ref())?;
        to_raw_vector(&bytes)
    })
}

/// `.Call` routine (docs/r-bridge.md): unserializes a raw vector with hooks.
///
/// # Safety
/// Called by R through `.Call` on its main thread, with valid SEXP arguments.
#[no_mangle]
pub unsafe extern "C" fn mirai_unserialize(raw: SEXP, hooks: SEXP) -> SEXP {
    entry(|| unsafe {
        if type_of(raw) != SEXPTYPE::RAWSXP {
            return Err("`raw` must be a raw vector".into());
        }
        let hooks = Hooks::from_sexp(hooks, "hooks")?;
        unserialize(raw_slice(raw), hooks.as_ref())
    })
}
