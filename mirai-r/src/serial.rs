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

use std::collections::HashMap;

use mirai_rapi::{Encoding, Kind, Preserved, RError, RResult, ReadFailure, Scope, Sexp, R};

use crate::payload::{append_trailer, decimal, parse_decimal, split_payload, HOOKED_MAGIC};

/// Where a config's list lives: borrowed from R for `'a`, or preserved.
enum Src<'a> {
    Borrowed(Sexp<'a>),
    Owned(Preserved),
}

/// A validated `serial_config()` list `list(class, sfunc, ufunc)` with `n` classes.
struct Hooks<'a> {
    src: Src<'a>,
    n: usize,
}

/// Checks `x` is a `serial_config()` list: the number of its classes, `None` for `NULL` or a
/// config without classes.
fn validate(x: Sexp<'_>, name: &str) -> RResult<Option<usize>> {
    if x.is_null() {
        return Ok(None);
    }
    let bad = || -> RError {
        format!("`{name}` must be NULL or a serialization config made by serial_config()").into()
    };
    if x.kind() != Kind::VECSXP || x.len() != 3 {
        return Err(bad());
    }
    let part = |k| x.list_elt(k).unwrap_or(Sexp::null());
    let (classes, sfuncs, ufuncs) = (part(0), part(1), part(2));
    if classes.is_null() {
        return Ok(None);
    }
    if classes.kind() != Kind::STRSXP {
        return Err(bad());
    }
    let n = classes.len();
    if n == 0 {
        return Ok(None);
    }
    for f in [sfuncs, ufuncs] {
        if f.kind() != Kind::VECSXP || f.len() != n || !f.list_elts().all(|g| g.is_function()) {
            return Err(bad());
        }
    }
    Ok(Some(n))
}

impl Hooks<'_> {
    /// Part `k` of the config (0 classes, 1 sfuncs, 2 ufuncs), alive while `self` is.
    fn part(&self, k: usize) -> Sexp<'_> {
        let list = match &self.src {
            Src::Borrowed(x) => *x,
            Src::Owned(p) => p.sexp(),
        };
        list.list_elt(k).unwrap_or(Sexp::null())
    }

    /// The CHARSXP of class `i`.
    fn class(&self, i: usize) -> Sexp<'_> {
        self.part(0).str_elt(i).unwrap_or(Sexp::null())
    }

    fn sfunc(&self, i: usize) -> Sexp<'_> {
        self.part(1).list_elt(i).unwrap_or(Sexp::null())
    }

    fn ufunc(&self, i: usize) -> Sexp<'_> {
        self.part(2).list_elt(i).unwrap_or(Sexp::null())
    }

    /// The first configured class that `x` inherits.
    fn match_object(&self, x: Sexp<'_>) -> Option<usize> {
        if !x.is_object() {
            return None;
        }
        (0..self.n).find(|&i| self.class(i).char_cstr().is_some_and(|c| x.inherits(c)))
    }

    /// The configured class named by the CHARSXP `name`.
    fn find_class(&self, name: Sexp<'_>) -> Option<usize> {
        let wanted = name.char_text();
        (0..self.n).find(|&i| self.class(i).char_text() == wanted)
    }
}

/// The text of a CHARSXP (`""` for anything else).
fn text(c: Option<Sexp<'_>>) -> String {
    c.and_then(|c| c.char_text()).unwrap_or_default()
}

/// What the writing hook keeps across calls.
struct OutState {
    blobs: Vec<Preserved>,
    /// Objects already given to an `sfunc` (address → their persistent name, preserved):
    /// R calls the hook at every occurrence, and an object met twice must be written once and
    /// read back as one object.
    seen: HashMap<usize, Preserved>,
    failure: Option<RError>,
}

/// R's persistent-reference hook on the writing side: the persistent name of `x`, or `NULL`
/// to let R write it.
fn write_ref<'s>(st: &mut OutState, hooks: &Hooks<'_>, s: &'s Scope<'s>, x: Sexp<'s>) -> Sexp<'s> {
    let r = s.r();
    if st.failure.is_some() {
        // Already failed: write a cheap placeholder instead of serializing the object.
        return r.blank_string();
    }
    if let Some(name) = st.seen.get(&x.addr()) {
        return s.protect(name.sexp());
    }
    let Some(i) = hooks.match_object(x) else {
        return Sexp::null();
    };
    let call = s.lang(hooks.sfunc(i), &[x]);
    match s.eval(call, r.global_env()) {
        Ok(v) if v.kind() == Kind::RAWSXP => {
            let k = st.blobs.len();
            st.blobs.push(Preserved::new(r, v));
            let name = s.strings(2);
            name.set_str_elt(0, hooks.class(i));
            let mut digits = [0u8; 24];
            name.set_str_elt_bytes(1, decimal(k, &mut digits), Encoding::Native);
            // `x` stays alive (R's reference table holds it) for as long as the address is used.
            st.seen.insert(x.addr(), Preserved::new(r, name));
            name
        }
        Ok(_) => {
            let class = text(Some(hooks.class(i)));
            st.failure = Some(RError::Msg(format!(
                "Serialization function for `{class}` did not return a raw vector"
            )));
            r.blank_string()
        }
        Err(caught) => {
            st.failure = Some(caught.into());
            r.blank_string()
        }
    }
}

/// Makes a closure's signature the hooks' higher-ranked one.
fn hook_fn<F: for<'s> FnMut(&'s Scope<'s>, Sexp<'s>) -> Sexp<'s>>(f: F) -> F {
    f
}

/// A capacity guess for the serialization of `x`, so that large vectors are written without
/// the buffer being regrown (and copied) several times.
fn size_hint(x: Sexp<'_>, depth: u32, budget: &mut u32) -> usize {
    if *budget == 0 {
        return 0;
    }
    *budget -= 1;
    let n = match x.kind() {
        Kind::RAWSXP => x.len(),
        Kind::LGLSXP | Kind::INTSXP => 4 * x.len(),
        Kind::REALSXP => 8 * x.len(),
        Kind::CPLXSXP => 16 * x.len(),
        Kind::VECSXP if depth > 0 => {
            let mut total = 0usize;
            for e in x.list_elts() {
                if *budget == 0 {
                    break;
                }
                total = total.saturating_add(size_hint(e, depth - 1, budget));
            }
            total
        }
        _ => 0,
    };
    n.saturating_add(64)
}

/// Serializes `x` (version 3, binary) into a new buffer, applying `hooks`. Plain data takes
/// the fast path of `crate::fastser` (same bytes); other objects go through R.
fn serialize(x: Sexp<'_>, hooks: Option<&Hooks<'_>>) -> RResult<Vec<u8>> {
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

/// [`serialize`] through R's own serializer.
fn r_serialize(x: Sexp<'_>, hooks: Option<&Hooks<'_>>) -> RResult<Vec<u8>> {
    let mut budget = 64;
    let mut buf = Vec::with_capacity(size_hint(x, 3, &mut budget).saturating_add(32));
    let Some(hooks) = hooks else {
        mirai_rapi::serialize(x, &mut buf, None)?;
        return Ok(buf);
    };
    buf.extend_from_slice(&HOOKED_MAGIC);
    let mut st = OutState {
        blobs: Vec::new(),
        seen: HashMap::new(),
        failure: None,
    };
    let mut hook = hook_fn(|s, x| write_ref(&mut st, hooks, s, x));
    let r = mirai_rapi::serialize(x, &mut buf, Some(&mut hook));
    if let Some(f) = st.failure.take() {
        return Err(f);
    }
    r?;
    let blobs: Vec<&[u8]> = st
        .blobs
        .iter()
        .map(|b| b.sexp().bytes().unwrap_or(&[]))
        .collect();
    append_trailer(&mut buf, &blobs);
    Ok(buf)
}

/// What the reading hook keeps across calls.
struct InState<'a> {
    blobs: Vec<&'a [u8]>,
    /// Objects already restored, by blob index (see `OutState::seen`).
    restored: HashMap<usize, Preserved>,
    failure: Option<RError>,
}

impl InState<'_> {
    fn fail<'s>(&mut self, msg: String) -> Sexp<'s> {
        self.failure = Some(RError::Msg(msg));
        Sexp::null()
    }
}

/// R's persistent-reference hook on the reading side: the object of persistent name `name`.
fn read_ref<'s>(
    st: &mut InState<'_>,
    hooks: Option<&Hooks<'_>>,
    s: &'s Scope<'s>,
    name: Sexp<'s>,
) -> Sexp<'s> {
    if st.failure.is_some() {
        return Sexp::null();
    }
    if name.kind() != Kind::STRSXP || name.len() != 2 {
        return st.fail("malformed reference in serialized data".to_owned());
    }
    let Some(hooks) = hooks else {
        let class = text(name.str_elt(0));
        return st.fail(format!(
            "serialized data holds a `{class}` object but no serialization hooks are configured"
        ));
    };
    let Some(i) = name.str_elt(0).and_then(|c| hooks.find_class(c)) else {
        let class = text(name.str_elt(0));
        return st.fail(format!(
            "no unserialization function is configured for class `{class}`"
        ));
    };
    let Some((k, blob)) =
        parse_decimal(&text(name.str_elt(1))).and_then(|k| Some((k, *st.blobs.get(k)?)))
    else {
        return st.fail("malformed reference in serialized data".to_owned());
    };
    if let Some(v) = st.restored.get(&k) {
        return s.protect(v.sexp());
    }
    let raw = s.raw(blob);
    let call = s.lang(hooks.ufunc(i), &[raw]);
    match s.eval(call, s.r().global_env()) {
        Ok(v) => {
            st.restored.insert(k, Preserved::new(s.r(), v));
            v
        }
        Err(caught) => {
            st.failure = Some(caught.into());
            Sexp::null()
        }
    }
}

/// Unserializes a payload (any R serialization format, with or without hook blobs), the value
/// protected by `s`.
fn unserialize<'s>(s: &'s Scope, bytes: &[u8], hooks: Option<&Hooks<'_>>) -> RResult<Sexp<'s>> {
    let split = split_payload(bytes)?;
    if split.blobs.is_empty() {
        if let Some(v) = crate::fastser::read(s, split.main) {
            return Ok(v);
        }
    }
    let mut st = InState {
        blobs: split.blobs,
        restored: HashMap::new(),
        failure: None,
    };
    let mut hook = hook_fn(|q, name| read_ref(&mut st, hooks, q, name));
    let r = mirai_rapi::unserialize(s, split.main, Some(&mut hook));
    if let Some(f) = st.failure.take() {
        return Err(f);
    }
    r.map_err(|f| match f {
        ReadFailure::Truncated => {
            RError::Msg("mirai: the serialized data is truncated or corrupt".to_owned())
        }
        other => other.into(),
    })
}

/// `serial_config()` hooks read from an R object alive for `'a` (or owned, see
/// [`OwnedHooks`]), validated.
pub(crate) struct HooksOf<'a>(Option<Hooks<'a>>);

impl<'a> HooksOf<'a> {
    /// Reads and validates `x` (`NULL`: no hooks).
    pub(crate) fn new(x: Sexp<'a>, name: &str) -> RResult<HooksOf<'a>> {
        let n = validate(x, name)?;
        Ok(HooksOf(n.map(|n| Hooks {
            src: Src::Borrowed(x),
            n,
        })))
    }

    /// No hooks.
    pub(crate) fn none() -> HooksOf<'a> {
        HooksOf(None)
    }

    fn get(&self) -> Option<&Hooks<'a>> {
        self.0.as_ref()
    }
}

/// `serial_config()` hooks owning the object they were read from (preserved), for hooks that
/// outlive a routine call (a daemon's, from its `init()`).
pub(crate) struct OwnedHooks {
    hooks: HooksOf<'static>,
}

impl OwnedHooks {
    /// Reads and validates `x` and preserves it.
    pub(crate) fn new(r: R, x: Sexp<'_>, name: &str) -> RResult<OwnedHooks> {
        let n = validate(x, name)?;
        let hooks = n.map(|n| Hooks {
            src: Src::Owned(Preserved::new(r, x)),
            n,
        });
        Ok(OwnedHooks {
            hooks: HooksOf(hooks),
        })
    }

    /// The hooks.
    pub(crate) fn get(&self) -> &HooksOf<'_> {
        &self.hooks
    }
}

/// [`serialize`] of a borrowed object.
pub(crate) fn serialize_of(x: Sexp<'_>, hooks: &HooksOf<'_>) -> RResult<Vec<u8>> {
    serialize(x, hooks.get())
}

/// [`unserialize`], the value protected by `s`.
pub(crate) fn unserialize_in<'s>(
    s: &'s Scope,
    bytes: &[u8],
    hooks: &HooksOf<'_>,
) -> RResult<Sexp<'s>> {
    unserialize(s, bytes, hooks.get())
}

/// A raw vector holding `bytes`, protected by `s` (R's allocation failure, for a large buffer,
/// is an error returned).
pub(crate) fn to_raw_in<'s>(s: &'s Scope, bytes: &[u8]) -> RResult<Sexp<'s>> {
    Ok(s.try_raw(bytes)?)
}
