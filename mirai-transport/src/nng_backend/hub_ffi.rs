//! The hub's NNG socket through NNG's C API: NNG 1.5 opens polyamorous pair1 sockets only
//! with `nng_pair1_open_poly`, which the safe `nng` wrapper cannot produce.
use nng::ffi as c;
use std::num::NonZeroU32;
use std::os::raw::{c_char, c_int, c_void};

fn check(rv: c_int) -> Result<(), nng::Error> {
    match NonZeroU32::new(rv as u32) {
        None => Ok(()),
        Some(code) => Err(nng::Error::from(code)),
    }
}

fn opt(name: &'static [u8]) -> *const c_char {
    debug_assert_eq!(name.last(), Some(&0));
    name.as_ptr().cast()
}

pub(crate) fn pipe_handle(id: u32) -> c::nng_pipe {
    c::nng_pipe_s {
        _bindgen_opaque_blob: id,
    }
}

pub(crate) fn pipe_id(p: c::nng_pipe) -> u32 {
    // SAFETY: nng_pipe_id only reads the handle's id field; any handle value is accepted.
    unsafe { c::nng_pipe_id(p) as u32 }
}

/// Closes a pipe; already-closed pipes are fine.
pub(crate) fn pipe_close(id: u32) {
    // SAFETY: NNG validates the id; an unknown or closed pipe only returns an error code.
    unsafe { c::nng_pipe_close(pipe_handle(id)) };
}

/// An open NNG socket, closed on drop.
pub(crate) struct HubSocket {
    s: c::nng_socket,
}

// SAFETY: NNG sockets are thread-safe handles (an integer id looked up under NNG's locks).
unsafe impl Send for HubSocket {}
// SAFETY: as above; every call here is a thread-safe NNG entry point.
unsafe impl Sync for HubSocket {}

/// Frees an NNG message unless ownership passed to NNG.
struct Msg(*mut c::nng_msg);

impl Drop for Msg {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: we own this message (NNG did not take it) and free it once.
            unsafe { c::nng_msg_free(self.0) };
        }
    }
}

impl HubSocket {
    pub(crate) fn open_poly() -> Result<HubSocket, nng::Error> {
        let mut s = c::nng_socket::NNG_SOCKET_INITIALIZER;
        // SAFETY: `s` is a valid out-pointer for the new socket handle.
        check(unsafe { c::nng_pair1_open_poly(&mut s) })?;
        Ok(HubSocket { s })
    }

    pub(crate) fn set_size(&self, name: &'static [u8], v: usize) -> Result<(), nng::Error> {
        // SAFETY: `name` is a NUL-terminated option name.
        check(unsafe { c::nng_socket_set_size(self.s, opt(name), v) })
    }

    pub(crate) fn set_int(&self, name: &'static [u8], v: i32) -> Result<(), nng::Error> {
        // SAFETY: `name` is a NUL-terminated option name.
        check(unsafe { c::nng_socket_set_int(self.s, opt(name), v) })
    }

    pub(crate) fn get_int(&self, name: &'static [u8]) -> Result<i32, nng::Error> {
        let mut v: c_int = 0;
        // SAFETY: `name` is NUL-terminated and `v` a valid out-pointer.
        check(unsafe { c::nng_socket_get_int(self.s, opt(name), &mut v) })?;
        Ok(v)
    }

    /// Registers `cb` for every pipe event, with `arg` passed through.
    ///
    /// # Safety
    /// `arg` must stay valid, and `cb` safe to call with it from any thread, until this
    /// socket has been dropped (closing waits for running callbacks and stops new ones).
    pub(crate) unsafe fn pipe_notify(
        &self,
        cb: unsafe extern "C" fn(c::nng_pipe, c::nng_pipe_ev, *mut c_void),
        arg: *mut c_void,
    ) -> Result<(), nng::Error> {
        for ev in [
            c::NNG_PIPE_EV_ADD_PRE,
            c::NNG_PIPE_EV_ADD_POST,
            c::NNG_PIPE_EV_REM_POST,
        ] {
            // SAFETY: the caller guarantees `arg` outlives the socket.
            check(unsafe { c::nng_pipe_notify(self.s, ev, Some(cb), arg) })?;
        }
        Ok(())
    }

    /// Starts a listener at `url`; for ipc, with the socket file's permissions set first.
    /// Returns the bound TCP port when `want_port`.
    pub(crate) fn listen(
        &self,
        url: &str,
        ipc_mode: Option<i32>,
        want_port: bool,
    ) -> Result<Option<u16>, nng::Error> {
        let curl = std::ffi::CString::new(url).map_err(|_| nng::Error::AddressInvalid)?;
        let mut l = c::nng_listener::NNG_LISTENER_INITIALIZER;
        // SAFETY: `curl` is NUL-terminated, `l` a valid out-pointer.
        check(unsafe { c::nng_listener_create(&mut l, self.s, curl.as_ptr()) })?;
        let started = (|| {
            if let Some(mode) = ipc_mode {
                // SAFETY: `l` is the listener just created; the name is NUL-terminated.
                check(unsafe {
                    c::nng_listener_set_int(l, opt(c::NNG_OPT_IPC_PERMISSIONS), mode)
                })?;
            }
            // SAFETY: `l` is a valid, not yet started listener.
            check(unsafe { c::nng_listener_start(l, 0) })?;
            if !want_port {
                return Ok(None);
            }
            let mut port: c_int = 0;
            // SAFETY: `l` is started; `port` is a valid out-pointer.
            check(unsafe {
                c::nng_listener_get_int(l, opt(c::NNG_OPT_TCP_BOUND_PORT), &mut port)
            })?;
            Ok(Some(port as u16))
        })();
        if started.is_err() {
            // SAFETY: `l` was created above and is closed once.
            unsafe { c::nng_listener_close(l) };
        }
        started
    }

    /// Takes one message if one is queued: `(pipe id, body)`.
    pub(crate) fn try_recv(&self) -> Result<Option<(u32, Vec<u8>)>, nng::Error> {
        let mut m: *mut c::nng_msg = std::ptr::null_mut();
        // SAFETY: `m` is a valid out-pointer; on success NNG hands us the message.
        let rv = unsafe { c::nng_recvmsg(self.s, &mut m, c::NNG_FLAG_NONBLOCK as c_int) };
        if rv == c::NNG_EAGAIN as c_int {
            return Ok(None);
        }
        check(rv)?;
        let msg = Msg(m);
        // SAFETY: `msg.0` is a live message we own; its body is `len` readable bytes.
        let (pipe, body) = unsafe {
            let len = c::nng_msg_len(msg.0);
            let ptr = c::nng_msg_body(msg.0) as *const u8;
            let body = if len == 0 {
                Vec::new()
            } else {
                std::slice::from_raw_parts(ptr, len).to_vec()
            };
            (pipe_id(c::nng_msg_get_pipe(msg.0)), body)
        };
        Ok(Some((pipe, body)))
    }

    /// Sends `data` to the pipe `pipe` (blocking only on NNG's own hand-off).
    /// Sends the concatenation of `parts` to `pipe`, copied into one NNG message.
    pub(crate) fn send_to(&self, pipe: u32, parts: &[&[u8]]) -> Result<(), nng::Error> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let mut m: *mut c::nng_msg = std::ptr::null_mut();
        // SAFETY: `m` is a valid out-pointer for a new message of `len` bytes.
        check(unsafe { c::nng_msg_alloc(&mut m, len) })?;
        let mut msg = Msg(m);
        // SAFETY: the new message's body has exactly `len` writable bytes, and the parts
        // add up to `len`: each copy stays inside it.
        unsafe {
            let body = c::nng_msg_body(msg.0) as *mut u8;
            let mut at = 0;
            for part in parts.iter().filter(|p| !p.is_empty()) {
                std::ptr::copy_nonoverlapping(part.as_ptr(), body.add(at), part.len());
                at += part.len();
            }
            c::nng_msg_set_pipe(msg.0, pipe_handle(pipe));
        }
        // SAFETY: `msg.0` is ours; on success NNG takes ownership, so we forget it.
        check(unsafe { c::nng_sendmsg(self.s, msg.0, 0) })?;
        msg.0 = std::ptr::null_mut();
        Ok(())
    }
}

impl Drop for HubSocket {
    fn drop(&mut self) {
        // SAFETY: closes our socket once; NNG waits for pipe callbacks to finish.
        unsafe { c::nng_close(self.s) };
    }
}
