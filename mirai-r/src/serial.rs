//! R serialization straight into and out of Rust byte buffers, with mirai's serialization
//! hooks (`serial_config()`) wired to R's persistent-reference hook.
//!
//! # Payload format
//!
//! Without hooks (`hooks = NULL`, or a config with no classes) a payload is exactly R's own
//! serialization: version 3, native binary format (`"B\n"` header), as `serialize(x, NULL,
//! xdr = FALSE)` would write it.
//!
//! With hooks, R calls the hook for every reference object (external pointer, weak reference,
//! non-namespace environment) it meets. If the object inherits one of the configured classes,
//! the first such class's `sfunc` is called; it must return a raw vector. That vector is kept
//! aside and R writes, in place of the object, the persistent name `c(<class>, "<k>")` (`k` the
//! 0-based index of the vector). The payload is then
//!
//! ```text
//! "MRH\x01" | R serialization | blob_0 .. blob_{n-1} | len_0 .. len_{n-1} (u64 LE) | n (u64 LE)
//! ```
//!
//! The 4-byte prefix cannot begin an R serialization (those start with `A`, `B` or `X` and a
//! newline), so a reader tells the two forms apart from the first bytes alone. Reading calls
//! the `ufunc` of the named class on a fresh raw vector holding blob `k`, and uses its value.
//! Class names, not positions, tie the two sides together, so host and daemon configs only
//! need to agree on the classes they both see. An object met several times is passed to its
//! `sfunc` once and read back as one object (R calls the hook at every occurrence; the bridge
//! remembers the objects it has seen).

// Not yet ported to mirai_rapi's safe API: raw R calls, each under the rules its comments state.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::os::raw::{c_int, c_void};

use mirai_rapi::sys::*;

use crate::sexp::{char_text, is_null, mk_raw, raw_slice, type_of};
use crate::sexp::{preserve, Protector};
use mirai_rapi::guard::protect_raw as protect;
use mirai_rapi::{Preserved, RError, RResult, Scope, Sexp, R};

use crate::payload::{append_trailer, decimal, parse_decimal, split_payload, HOOKED_MAGIC};

/// A validated `serial_config()` list, borrowed from R (valid while its source is protected).
pub(crate) struct Hooks {
    classes: SEXP,
    sfuncs: SEXP,
    ufuncs: SEXP,
    n: R_xlen_t,
}

impl Hooks {
    /// Reads `list(class, sfunc, ufunc)`; `None` for `NULL` or a config without classes.
    ///
    /// # Safety
    /// Main thread; `x` valid and protected for as long as the result is used.
    pub(crate) unsafe fn from_sexp(x: SEXP, name: &str) -> RResult<Option<Hooks>> {
        if is_null(x) {
            return Ok(None);
        }
        let bad = || -> RError {
            format!("`{name}` must be NULL or a serialization config made by serial_config()")
                .into()
        };
        if type_of(x) != SEXPTYPE::VECSXP || Rf_xlength(x) != 3 {
            return Err(bad());
        }
        let classes = VECTOR_ELT(x, 0);
        let sfuncs = VECTOR_ELT(x, 1);
        let ufuncs = VECTOR_ELT(x, 2);
        if is_null(classes) {
            return Ok(None);
        }
        if type_of(classes) != SEXPTYPE::STRSXP {
            return Err(bad());
        }
        let n = Rf_xlength(classes);
        if n == 0 {
            return Ok(None);
        }
        for f in [sfuncs, ufuncs] {
            if type_of(f) != SEXPTYPE::VECSXP || Rf_xlength(f) != n {
                return Err(bad());
            }
            for i in 0..n {
                if Rf_isFunction(VECTOR_ELT(f, i)) == Rboolean::FALSE {
                    return Err(bad());
                }
            }
        }
        Ok(Some(Hooks {
            classes,
            sfuncs,
            ufuncs,
            n,
        }))
    }

    /// The first configured class that `x` inherits.
    unsafe fn match_object(&self, x: SEXP) -> Option<R_xlen_t> {
        if OBJECT(x) == 0 {
            return None;
        }
        (0..self.n)
            .find(|&i| Rf_inherits(x, R_CHAR(STRING_ELT(self.classes, i))) != Rboolean::FALSE)
    }

    /// The configured class named by the CHARSXP `name`.
    unsafe fn find_class(&self, name: SEXP) -> Option<R_xlen_t> {
        let wanted = char_text(name);
        (0..self.n).find(|&i| char_text(STRING_ELT(self.classes, i)) == wanted)
    }
}

struct OutState<'h> {
    buf: Vec<u8>,
    hooks: Option<&'h Hooks>,
    blobs: Vec<Preserved>,
    /// Objects already given to an `sfunc` (address → their persistent name, preserved):
    /// R calls the hook at every occurrence, and an object met twice must be written once and
    /// read back as one object.
    seen: HashMap<usize, Preserved>,
    failure: Option<RError>,
}

// Stream callbacks: called by R_Serialize, never jump, own nothing.
unsafe extern "C" fn out_char(stream: R_outpstream_t, c: c_int) {
    let st = (*stream).data as *mut OutState<'_>;
    (*st).buf.push(c as u8);
}

unsafe extern "C" fn out_bytes(stream: R_outpstream_t, buf: *mut c_void, n: c_int) {
    let st = (*stream).data as *mut OutState<'_>;
    if n > 0 {
        (*st)
            .buf
            .extend_from_slice(std::slice::from_raw_parts(buf as *const u8, n as usize));
    }
}

/// R's persistent-reference hook on the writing side. Every R call in it either cannot jump
/// or runs under `protect`, except allocations, whose only failure is R running out of memory:
/// that jump lands in the `protect` around R_Serialize, crossing this frame while it owns
/// nothing.
unsafe extern "C" fn out_hook(x: SEXP, data: SEXP) -> SEXP {
    let st = R_ExternalPtrAddr(data) as *mut OutState<'_>;
    if (*st).failure.is_some() {
        // Already failed: write a cheap placeholder instead of serializing the object.
        return R_BlankScalarString;
    }
    let Some(hooks) = (*st).hooks else {
        return R_NilValue;
    };
    if let Some(name) = (*st).seen.get(&(x as usize)) {
        return name.get();
    }
    let Some(i) = hooks.match_object(x) else {
        return R_NilValue;
    };
    let call = Rf_protect(Rf_lang2(VECTOR_ELT(hooks.sfuncs, i), x));
    let r = protect(|| Rf_eval(call, R_GlobalEnv));
    Rf_unprotect(1);
    match r {
        Ok(v) if type_of(v) == SEXPTYPE::RAWSXP => {
            Rf_protect(v);
            let k = (*st).blobs.len();
            (*st).blobs.push(preserve(v));
            Rf_unprotect(1);
            let name = Rf_protect(Rf_allocVector(SEXPTYPE::STRSXP, 2));
            SET_STRING_ELT(name, 0, STRING_ELT(hooks.classes, i));
            let mut digits = [0u8; 24];
            let d = decimal(k, &mut digits);
            SET_STRING_ELT(
                name,
                1,
                Rf_mkCharLen(d.as_ptr() as *const _, d.len() as c_int),
            );
            // `x` stays alive (R's reference table holds it) for as long as the address is used.
            (*st).seen.insert(x as usize, preserve(name));
            Rf_unprotect(1);
            name
        }
        Ok(_) => {
            let class = char_text(STRING_ELT(hooks.classes, i));
            (*st).failure = Some(RError::Msg(format!(
                "Serialization function for `{class}` did not return a raw vector"
            )));
            R_BlankScalarString
        }
        Err(caught) => {
            (*st).failure = Some(caught.into());
            R_BlankScalarString
        }
    }
}

/// A capacity guess for the serialization of `x`, so that large vectors are written without
/// the buffer being regrown (and copied) several times.
unsafe fn size_hint(x: SEXP, depth: u32, budget: &mut u32) -> usize {
    if *budget == 0 {
        return 0;
    }
    *budget -= 1;
    let n = match type_of(x) {
        SEXPTYPE::RAWSXP => Rf_xlength(x) as usize,
        SEXPTYPE::LGLSXP | SEXPTYPE::INTSXP => 4 * Rf_xlength(x) as usize,
        SEXPTYPE::REALSXP => 8 * Rf_xlength(x) as usize,
        SEXPTYPE::CPLXSXP => 16 * Rf_xlength(x) as usize,
        SEXPTYPE::VECSXP if depth > 0 => {
            let mut total = 0usize;
            for i in 0..Rf_xlength(x) {
                if *budget == 0 {
                    break;
                }
                total = total.saturating_add(size_hint(VECTOR_ELT(x, i), depth - 1, budget));
            }
            total
        }
        _ => 0,
    };
    n.saturating_add(64)
}

/// Serializes `x` (version 3, binary) into a new buffer, applying `hooks`. Plain data takes
/// the fast path of `crate::fastser` (same bytes); other objects go through R.
///
/// # Safety
/// Main thread; `x` protected.
pub(crate) unsafe fn serialize(x: SEXP, hooks: Option<&Hooks>) -> RResult<Vec<u8>> {
    let mut budget = 64;
    let mut buf = Vec::with_capacity(size_hint(x, 3, &mut budget).saturating_add(64));
    if hooks.is_some() {
        // The fast path meets no reference object, so no hook would have been called: the
        // payload is the plain serialization with an empty trailer.
        buf.extend_from_slice(&HOOKED_MAGIC);
    }
    if crate::fastser::write(x, &mut buf) {
        if hooks.is_some() {
            append_trailer(&mut buf, &[]);
        }
        return Ok(buf);
    }
    r_serialize(x, hooks)
}

/// [`serialize`] through R's own serializer, without hooks (the fast path learns R's header
/// from it).
///
/// # Safety
/// Main thread; `x` protected.
pub(crate) unsafe fn r_serialize_plain(x: SEXP) -> RResult<Vec<u8>> {
    r_serialize(x, None)
}

/// [`serialize`] through R's own serializer.
unsafe fn r_serialize(x: SEXP, hooks: Option<&Hooks>) -> RResult<Vec<u8>> {
    let mut budget = 64;
    let mut st = OutState {
        buf: Vec::with_capacity(size_hint(x, 3, &mut budget).saturating_add(32)),
        hooks,
        blobs: Vec::new(),
        seen: HashMap::new(),
        failure: None,
    };
    if hooks.is_some() {
        st.buf.extend_from_slice(&HOOKED_MAGIC);
    }
    let stp: *mut OutState<'_> = &mut st;
    let mut p = Protector::new();
    let hookdata = if hooks.is_some() {
        p.protect(R_MakeExternalPtr(
            stp as *mut c_void,
            R_NilValue,
            R_NilValue,
        ))
    } else {
        R_NilValue
    };
    let mut stream = MaybeUninit::<R_outpstream_st>::zeroed();
    R_InitOutPStream(
        stream.as_mut_ptr(),
        stp as *mut c_void,
        R_pstream_format_t::R_pstream_binary_format,
        3,
        Some(out_char),
        Some(out_bytes),
        if hooks.is_some() {
            Some(out_hook)
        } else {
            None
        },
        hookdata,
    );
    let sp = stream.as_mut_ptr();
    let r = protect(|| {
        R_Serialize(x, sp);
        R_NilValue
    });
    drop(p);
    // R is done with the stream and `stp`; use `st` directly from here on.
    if let Some(f) = st.failure.take() {
        return Err(f);
    }
    r?;
    if hooks.is_some() {
        let blobs: Vec<&[u8]> = st.blobs.iter().map(|b| raw_slice(b.get())).collect();
        append_trailer(&mut st.buf, &blobs);
    }
    Ok(st.buf)
}

struct InState<'a, 'h> {
    data: &'a [u8],
    pos: usize,
    blobs: Vec<&'a [u8]>,
    /// Objects already restored, by blob index (see `OutState::seen`).
    restored: HashMap<usize, Preserved>,
    hooks: Option<&'h Hooks>,
    failure: Option<RError>,
}

unsafe fn truncated() -> ! {
    // Jumps to the `protect` around R_Unserialize, across R's reader and this callback's
    // frame, which own nothing.
    Rf_error(
        c"%s".as_ptr(),
        c"mirai: the serialized data is truncated or corrupt".as_ptr(),
    )
}

unsafe extern "C" fn in_char(stream: R_inpstream_t) -> c_int {
    let st = &mut *((*stream).data as *mut InState<'_, '_>);
    let pos = st.pos;
    match st.data.get(pos) {
        Some(&b) => {
            st.pos = pos + 1;
            c_int::from(b)
        }
        None => truncated(),
    }
}

unsafe extern "C" fn in_bytes(stream: R_inpstream_t, buf: *mut c_void, n: c_int) {
    let st = &mut *((*stream).data as *mut InState<'_, '_>);
    let pos = st.pos;
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    let end = pos.saturating_add(n);
    if end > st.data.len() {
        truncated();
    }
    std::ptr::copy_nonoverlapping(st.data.as_ptr().add(pos), buf as *mut u8, n);
    st.pos = end;
}

unsafe fn fail_in(st: *mut InState<'_, '_>, msg: String) -> SEXP {
    (*st).failure = Some(RError::Msg(msg));
    R_NilValue
}

/// R's persistent-reference hook on the reading side (same jump rules as `out_hook`).
unsafe extern "C" fn in_hook(name: SEXP, data: SEXP) -> SEXP {
    let st = R_ExternalPtrAddr(data) as *mut InState<'_, '_>;
    if (*st).failure.is_some() {
        return R_NilValue;
    }
    if type_of(name) != SEXPTYPE::STRSXP || Rf_xlength(name) != 2 {
        return fail_in(st, "malformed reference in serialized data".to_owned());
    }
    let Some(hooks) = (*st).hooks else {
        let class = char_text(STRING_ELT(name, 0));
        return fail_in(
            st,
            format!("serialized data holds a `{class}` object but no serialization hooks are configured"),
        );
    };
    let Some(i) = hooks.find_class(STRING_ELT(name, 0)) else {
        let class = char_text(STRING_ELT(name, 0));
        return fail_in(
            st,
            format!("no unserialization function is configured for class `{class}`"),
        );
    };
    let blobs = &(*st).blobs;
    let Some((k, blob)) =
        parse_decimal(&char_text(STRING_ELT(name, 1))).and_then(|k| Some((k, *blobs.get(k)?)))
    else {
        return fail_in(st, "malformed reference in serialized data".to_owned());
    };
    if let Some(v) = (*st).restored.get(&k) {
        return v.get();
    }
    let raw = Rf_protect(mk_raw(blob));
    let call = Rf_protect(Rf_lang2(VECTOR_ELT(hooks.ufuncs, i), raw));
    let r = protect(|| Rf_eval(call, R_GlobalEnv));
    Rf_unprotect(2);
    match r {
        Ok(v) => {
            Rf_protect(v);
            (*st).restored.insert(k, preserve(v));
            Rf_unprotect(1);
            v
        }
        Err(caught) => {
            (*st).failure = Some(caught.into());
            R_NilValue
        }
    }
}

/// Unserializes a payload (any R serialization format, with or without hook blobs).
/// The result is unprotected.
///
/// # Safety
/// Main thread.
pub(crate) unsafe fn unserialize(bytes: &[u8], hooks: Option<&Hooks>) -> RResult<SEXP> {
    let split = split_payload(bytes)?;
    if split.blobs.is_empty() {
        if let Some(v) = crate::fastser::read(split.main) {
            return Ok(v);
        }
    }
    let mut st = InState {
        data: split.main,
        pos: 0,
        blobs: split.blobs,
        restored: HashMap::new(),
        hooks,
        failure: None,
    };
    let stp: *mut InState<'_, '_> = &mut st;
    let mut p = Protector::new();
    let hookdata = p.protect(R_MakeExternalPtr(
        stp as *mut c_void,
        R_NilValue,
        R_NilValue,
    ));
    let mut stream = MaybeUninit::<R_inpstream_st>::zeroed();
    R_InitInPStream(
        stream.as_mut_ptr(),
        stp as *mut c_void,
        R_pstream_format_t::R_pstream_any_format,
        Some(in_char),
        Some(in_bytes),
        Some(in_hook),
        hookdata,
    );
    let sp = stream.as_mut_ptr();
    let r = protect(|| R_Unserialize(sp));
    drop(p);
    if let Some(f) = st.failure.take() {
        return Err(f);
    }
    Ok(r?)
}

/// `serial_config()` hooks read from an R object alive for `'a` (see [`Hooks::from_sexp`]).
pub(crate) struct HooksOf<'a>(Option<Hooks>, PhantomData<Sexp<'a>>);

impl<'a> HooksOf<'a> {
    /// Reads and validates `x` (`NULL`: no hooks).
    pub(crate) fn new(x: Sexp<'a>, name: &str) -> RResult<HooksOf<'a>> {
        // SAFETY: main thread (a Sexp exists only there); `x` is alive for `'a`, as long as
        // the result.
        let h = unsafe { Hooks::from_sexp(x.raw(), name) }?;
        Ok(HooksOf(h, PhantomData))
    }

    /// No hooks.
    pub(crate) fn none() -> HooksOf<'a> {
        HooksOf(None, PhantomData)
    }

    /// The hooks, if any.
    pub(crate) fn get(&self) -> Option<&Hooks> {
        self.0.as_ref()
    }
}

/// `serial_config()` hooks owning the object they were read from (preserved), for hooks that
/// outlive a routine call (a daemon's, from its `init()`).
pub(crate) struct OwnedHooks {
    /// Borrows from `_value` (declared first, so dropped first).
    hooks: HooksOf<'static>,
    _value: Preserved,
}

impl OwnedHooks {
    /// Reads and validates `x` and preserves it.
    pub(crate) fn new(r: R, x: Sexp<'_>, name: &str) -> RResult<OwnedHooks> {
        let value = Preserved::new(r, x);
        // SAFETY: main thread (token); the object stays alive while `value`, stored alongside,
        // is, and the hooks are only handed out borrowed from `self`.
        let hooks = unsafe { Hooks::from_sexp(value.get(), name) }?;
        Ok(OwnedHooks {
            hooks: HooksOf(hooks, PhantomData),
            _value: value,
        })
    }

    /// The hooks.
    pub(crate) fn get(&self) -> &HooksOf<'_> {
        &self.hooks
    }
}

/// [`serialize`] of a borrowed object.
pub(crate) fn serialize_of(x: Sexp<'_>, hooks: &HooksOf<'_>) -> RResult<Vec<u8>> {
    // SAFETY: main thread, a live object; the hooks' objects are alive (HooksOf's lifetime).
    unsafe { serialize(x.raw(), hooks.get()) }
}

/// [`unserialize`], the value protected by `s`.
pub(crate) fn unserialize_in<'s>(
    s: &'s Scope,
    bytes: &[u8],
    hooks: &HooksOf<'_>,
) -> RResult<Sexp<'s>> {
    // SAFETY: main thread (a scope exists only there); the hooks' objects are alive; the
    // value is protected at once.
    unsafe { Ok(s.protect_raw(unserialize(bytes, hooks.get())?)) }
}

/// [`to_raw_vector`], protected by `s`.
pub(crate) fn to_raw_in<'s>(s: &'s Scope, bytes: &[u8]) -> RResult<Sexp<'s>> {
    // SAFETY: main thread; the vector is protected at once.
    unsafe { Ok(s.protect_raw(to_raw_vector(bytes)?)) }
}

/// `mk_raw` under `protect`, for buffers large enough that R might fail to allocate them.
///
/// # Safety
/// Main thread. The result is unprotected.
pub(crate) unsafe fn to_raw_vector(bytes: &[u8]) -> RResult<SEXP> {
    Ok(protect(|| mk_raw(bytes))?)
}
