//! R's own serializer and reader over Rust byte buffers, with R's persistent-reference hooks
//! as Rust closures.
//!
//! The format written is R's native binary format, version 3: what `serialize(x, NULL,
//! xdr = FALSE, version = 3)` returns. The reader takes every format R reads.
//!
//! R calls a hook for each reference object it meets (external pointer, weak reference,
//! environment other than the global, base and empty ones and namespaces). On the writing side
//! the hook returns a character vector (the object's *persistent name*, written in its place)
//! or `NULL` (serialize the object itself); on the reading side it gets the name back and
//! returns the object. R may call the hooks with errors pending in them: R code they run goes
//! through [`Scope::eval`], whose errors are confined, and they report failures through their
//! own state (R's serializer cannot be told to stop).

use std::mem::MaybeUninit;
use std::os::raw::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

use libR_sys::*;

use crate::guard::{panic_text, protect_raw, RError, RResult};
use crate::scope::Scope;
use crate::sexp::{Kind, Sexp};

/// A writing-side persistent-reference hook: the persistent name of the reference object
/// (a character vector, protected by the scope or otherwise alive), or `NULL`.
pub type OutHook<'h> = dyn for<'s> FnMut(&'s Scope<'s>, Sexp<'s>) -> Sexp<'s> + 'h;

/// A reading-side persistent-reference hook: the object of a persistent name (protected by the
/// scope or otherwise alive).
pub type InHook<'h> = dyn for<'s> FnMut(&'s Scope<'s>, Sexp<'s>) -> Sexp<'s> + 'h;

/// Why [`unserialize`] failed.
#[non_exhaustive]
pub enum ReadFailure {
    /// The bytes ended before the serialization did.
    Truncated,
    /// R's reader failed (an R error or interrupt), or a hook failure.
    Error(RError),
}

impl From<ReadFailure> for RError {
    fn from(f: ReadFailure) -> Self {
        match f {
            ReadFailure::Truncated => {
                RError::Msg("the serialized data is truncated or corrupt".to_owned())
            }
            ReadFailure::Error(e) => e,
        }
    }
}

/// What the writing stream's callbacks reach through the stream and the hook's data.
struct Out<'b, 'h, 'k> {
    buf: &'b mut Vec<u8>,
    hook: Option<&'k mut OutHook<'h>>,
    /// A panic in the hook, or a value R cannot write: the error to return.
    failure: Option<String>,
}

// Stream callbacks: called by R_Serialize on the main thread with the stream set up in
// `serialize`; they never jump and own nothing.
unsafe extern "C" fn out_char(stream: R_outpstream_t, c: c_int) {
    // SAFETY: `data` is the `Out` of the running `serialize`, borrowed by nothing else now.
    let st = &mut *((*stream).data as *mut Out<'_, '_, '_>);
    st.buf.push(c as u8);
}

unsafe extern "C" fn out_bytes(stream: R_outpstream_t, buf: *mut c_void, n: c_int) {
    // SAFETY: as in `out_char`; R passes `n` readable bytes at `buf`.
    let st = &mut *((*stream).data as *mut Out<'_, '_, '_>);
    if n > 0 {
        st.buf
            .extend_from_slice(std::slice::from_raw_parts(buf as *const u8, n as usize));
    }
}

const NOT_A_NAME: &str =
    "a persistent-reference hook returned neither NULL nor a non-empty character vector";

/// R's writing-side hook. A jump out of the user's hook (R out of memory in an allocation)
/// lands in the `protect_raw` around R_Serialize.
unsafe extern "C" fn out_hook(x: SEXP, data: SEXP) -> SEXP {
    // SAFETY: `data` is the external pointer made in `serialize`, holding its live `Out`; R
    // passes a live object, alive (in its reference table) for the whole serialization.
    let st = &mut *(R_ExternalPtrAddr(data) as *mut Out<'_, '_, '_>);
    if st.failure.is_some() {
        return R_BlankScalarString;
    }
    let Some(hook) = st.hook.as_mut() else {
        return R_NilValue;
    };
    let scope = Scope::root();
    let x = Sexp::from_raw(x);
    match catch_unwind(AssertUnwindSafe(|| {
        let v = hook(&scope, x);
        let name = v.kind() == Kind::STRSXP && !v.is_empty();
        (name || v.is_null()).then_some(v.raw())
    })) {
        // Unprotected when the scope drops; R protects it at once, allocating nothing first.
        Ok(Some(v)) => v,
        Ok(None) => {
            st.failure = Some(NOT_A_NAME.to_owned());
            R_BlankScalarString
        }
        Err(p) => {
            st.failure = Some(panic_text(&*p));
            R_BlankScalarString
        }
    }
}

/// What R passes to a hook as its data: an external pointer to the stream's state (no tag,
/// no finalizer), protected by `scope`; `NULL` without a hook.
///
/// # Safety
/// Main thread; the pointer is only used by the hooks while `st` is alive.
unsafe fn hook_data<T>(scope: &Scope<'_>, st: *mut T, hooked: bool) -> SEXP {
    if !hooked {
        return R_NilValue;
    }
    scope
        .protect_raw(R_MakeExternalPtr(st as *mut c_void, R_NilValue, R_NilValue))
        .raw()
}

/// Serializes `x` with R's serializer (native binary format, version 3), appending to `buf`;
/// `hook`, if any, is R's persistent-reference hook. R's errors and interrupts are confined and
/// returned (what was appended is then incomplete); a panic in the hook is an error too.
pub fn serialize(x: Sexp<'_>, buf: &mut Vec<u8>, hook: Option<&mut OutHook<'_>>) -> RResult<()> {
    let hooked = hook.is_some();
    let mut st = Out {
        buf,
        hook,
        failure: None,
    };
    let stp: *mut Out<'_, '_, '_> = &mut st;
    // SAFETY: main thread (a Sexp exists only there). The hook's data and the stream point to
    // `st`, which outlives R_Serialize; the callbacks above are the stream's. R_Serialize's jumps are confined by protect_raw, whose closure owns
    // nothing; the scope is dropped only after R is done with the stream.
    let r = unsafe {
        let scope = Scope::root();
        let hookdata = hook_data(&scope, stp, hooked);
        let mut stream = MaybeUninit::<R_outpstream_st>::zeroed();
        R_InitOutPStream(
            stream.as_mut_ptr(),
            stp as *mut c_void,
            R_pstream_format_t::R_pstream_binary_format,
            3,
            Some(out_char),
            Some(out_bytes),
            if hooked { Some(out_hook) } else { None },
            hookdata,
        );
        let sp = stream.as_mut_ptr();
        let xr = x.raw();
        let r = protect_raw(|| {
            R_Serialize(xr, sp);
            R_NilValue
        });
        drop(scope);
        r
    };
    if let Some(p) = st.failure.take() {
        return Err(RError::Msg(p));
    }
    r?;
    Ok(())
}

/// What the reading stream's callbacks reach.
struct In<'d, 'h, 'k> {
    data: &'d [u8],
    pos: usize,
    truncated: bool,
    hook: Option<&'k mut InHook<'h>>,
    failure: Option<String>,
}

/// Ends R's reader: the bytes ran out.
///
/// # Safety
/// Called from a stream callback (inside the `protect_raw` around R_Unserialize), from a frame
/// owning nothing.
unsafe fn truncated(st: *mut In<'_, '_, '_>) -> ! {
    (*st).truncated = true;
    Rf_error(
        c"%s".as_ptr(),
        c"the serialized data is truncated or corrupt".as_ptr(),
    )
}

unsafe extern "C" fn in_char(stream: R_inpstream_t) -> c_int {
    // SAFETY: `data` is the `In` of the running `unserialize`, borrowed by nothing else now.
    let st = (*stream).data as *mut In<'_, '_, '_>;
    let (data, pos) = ((*st).data, (*st).pos);
    match data.get(pos) {
        Some(&b) => {
            (*st).pos = pos + 1;
            c_int::from(b)
        }
        None => truncated(st),
    }
}

unsafe extern "C" fn in_bytes(stream: R_inpstream_t, buf: *mut c_void, n: c_int) {
    // SAFETY: as in `in_char`; R passes room for `n` bytes at `buf`.
    let st = (*stream).data as *mut In<'_, '_, '_>;
    let (data, pos) = ((*st).data, (*st).pos);
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    let end = pos.saturating_add(n);
    if end > data.len() {
        truncated(st);
    }
    std::ptr::copy_nonoverlapping(data.as_ptr().add(pos), buf as *mut u8, n);
    (*st).pos = end;
}

/// R's reading-side hook (the jump rules of `out_hook`).
unsafe extern "C" fn in_hook(name: SEXP, data: SEXP) -> SEXP {
    // SAFETY: `data` is the external pointer made in `unserialize`, holding its live `In`; R
    // passes the name it just read, protected.
    let st = &mut *(R_ExternalPtrAddr(data) as *mut In<'_, '_, '_>);
    if st.failure.is_some() {
        return R_NilValue;
    }
    let Some(hook) = st.hook.as_mut() else {
        return R_NilValue;
    };
    let scope = Scope::root();
    let name = Sexp::from_raw(name);
    match catch_unwind(AssertUnwindSafe(|| hook(&scope, name).raw())) {
        // As in `out_hook`: R protects the value before it allocates.
        Ok(v) => v,
        Err(p) => {
            st.failure = Some(panic_text(&*p));
            R_NilValue
        }
    }
}

/// Reads a serialization (any format R reads) with R's reader; `hook`, if any, is R's
/// persistent-reference hook. The object is protected by `s`. R's errors and interrupts are
/// confined and returned, as is a panic in the hook.
pub fn unserialize<'s>(
    s: &'s Scope<'_>,
    data: &[u8],
    hook: Option<&mut InHook<'_>>,
) -> Result<Sexp<'s>, ReadFailure> {
    let hooked = hook.is_some();
    let mut st = In {
        data,
        pos: 0,
        truncated: false,
        hook,
        failure: None,
    };
    let stp: *mut In<'_, '_, '_> = &mut st;
    // SAFETY: main thread (a scope exists). As in `serialize`: the pointer and the stream
    // point to `st`, alive for the whole R_Unserialize, whose jumps protect_raw confines; the
    // value is protected at once after it returns.
    let r = unsafe {
        let q = s.child();
        let hookdata = hook_data(&q, stp, hooked);
        let mut stream = MaybeUninit::<R_inpstream_st>::zeroed();
        R_InitInPStream(
            stream.as_mut_ptr(),
            stp as *mut c_void,
            R_pstream_format_t::R_pstream_any_format,
            Some(in_char),
            Some(in_bytes),
            if hooked { Some(in_hook) } else { None },
            hookdata,
        );
        let sp = stream.as_mut_ptr();
        let r = protect_raw(|| R_Unserialize(sp));
        // Unprotecting the hook's pointer allocates nothing: the value is still intact.
        drop(q);
        r.map(|v| s.protect_raw(v))
    };
    if let Some(p) = st.failure.take() {
        return Err(ReadFailure::Error(RError::Msg(p)));
    }
    if st.truncated {
        return Err(ReadFailure::Truncated);
    }
    r.map_err(|c| ReadFailure::Error(c.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_reads_as_an_error_message() {
        match RError::from(ReadFailure::Truncated) {
            RError::Msg(m) => assert!(m.contains("truncated")),
            _ => panic!("not a message"),
        }
        match RError::from(ReadFailure::Error(RError::Msg("x".into()))) {
            RError::Msg(m) => assert_eq!(m, "x"),
            _ => panic!("not the inner error"),
        }
    }
}
