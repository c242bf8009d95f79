//! Thin safe wrappers over the Linux socket, epoll, eventfd and poll calls the backends need.
//!
//! This is the crate's FFI seam: every `unsafe` block lives here, each with its reason. The
//! wrappers take and return owned descriptors and plain slices, so the backends stay safe code.
use std::io::{self, IoSlice};
use std::mem::{size_of, MaybeUninit};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Turns a `-1`-on-error libc return value into an `io::Result`.
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn cvt_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// Milliseconds for `epoll_wait`/`poll`: `None` waits forever (-1); a positive duration below
/// one millisecond rounds up so a short wait never turns into a busy loop.
pub(crate) fn timeout_ms(t: Option<Duration>) -> libc::c_int {
    match t {
        None => -1,
        Some(d) if d.is_zero() => 0,
        Some(d) => {
            let ms = d.as_nanos().div_ceil(1_000_000);
            ms.min(libc::c_int::MAX as u128) as libc::c_int
        }
    }
}

/// An epoll instance.
pub(crate) struct Epoll {
    fd: OwnedFd,
}

/// One readiness report from [`Epoll::wait`].
#[derive(Clone, Copy)]
pub(crate) struct EpollEvent {
    pub(crate) events: u32,
    pub(crate) token: u64,
}

impl Epoll {
    pub(crate) fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes no pointers; a non-negative result is a fresh fd we own.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Epoll { fd })
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call; the kernel copies it.
        cvt(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd, &mut ev) })?;
        Ok(())
    }

    pub(crate) fn add(&self, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, events, token)
    }

    pub(crate) fn modify(&self, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, events, token)
    }

    pub(crate) fn delete(&self, fd: RawFd) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0)
    }

    /// Waits for readiness; fills `out` and returns how many entries are valid. EINTR is
    /// reported as zero events.
    pub(crate) fn wait(
        &self,
        buf: &mut Vec<libc::epoll_event>,
        out: &mut Vec<EpollEvent>,
        timeout: libc::c_int,
    ) -> io::Result<()> {
        out.clear();
        let cap = buf.capacity().max(1);
        buf.clear();
        buf.reserve(cap);
        // SAFETY: `buf` has room for `capacity()` events; the kernel writes at most that many
        // and returns their count, which we then trust as the initialized length.
        let n = unsafe {
            libc::epoll_wait(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr(),
                buf.capacity() as libc::c_int,
                timeout,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(());
            }
            return Err(e);
        }
        // SAFETY: the kernel initialized the first `n` entries.
        unsafe { buf.set_len(n as usize) };
        out.extend(buf.iter().map(|e| EpollEvent {
            events: e.events,
            token: e.u64,
        }));
        Ok(())
    }
}

/// A non-blocking eventfd used to wake a thread out of `epoll_wait`/`poll`.
pub(crate) struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    pub(crate) fn new() -> io::Result<EventFd> {
        // SAFETY: eventfd takes no pointers; a non-negative result is a fresh fd we own.
        let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
        // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(EventFd { fd })
    }

    /// Makes the fd readable (idempotent until drained).
    pub(crate) fn notify(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64. Failure can only be EAGAIN when the counter
        // is saturated, in which case the fd is readable anyway.
        unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Resets the fd to not readable.
    pub(crate) fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads at most 8 bytes into a live u64; EAGAIN (already drained) is fine.
        unsafe { libc::read(self.fd.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Waits until one of `fds` is ready (or `timeout`); returns how many are. EINTR counts as 0.
pub(crate) fn poll(fds: &mut [libc::pollfd], timeout: libc::c_int) -> io::Result<usize> {
    // SAFETY: `fds` is a valid, exclusively borrowed array of pollfd of the given length.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(n as usize)
}

/// `read(2)` into an initialized buffer.
pub(crate) fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
    cvt_size(unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) })
}

/// `read(2)` of at most `max` bytes into the spare capacity of `v`, extending its length by
/// what arrived. Reads nothing (returns Ok(0) without a syscall) if there is no spare room.
pub(crate) fn read_spare(fd: RawFd, v: &mut Vec<u8>, max: usize) -> io::Result<usize> {
    let spare: &mut [MaybeUninit<u8>] = v.spare_capacity_mut();
    let want = spare.len().min(max);
    if want == 0 {
        return Ok(0);
    }
    // SAFETY: the spare capacity is valid for writes of `want` bytes; read(2) never reads them.
    let n = cvt_size(unsafe { libc::read(fd, spare.as_mut_ptr().cast(), want) })?;
    // SAFETY: the kernel initialized exactly `n <= want` bytes past the old length.
    unsafe { v.set_len(v.len() + n) };
    Ok(n)
}

/// Gathers `bufs` into one `sendmsg(2)` with MSG_NOSIGNAL (a vanished peer is EPIPE, never
/// SIGPIPE, which matters inside R where SIGPIPE is not ignored). `nonblocking` adds
/// MSG_DONTWAIT.
pub(crate) fn send_vectored(
    fd: RawFd,
    bufs: &[IoSlice<'_>],
    nonblocking: bool,
) -> io::Result<usize> {
    let iovlen = bufs.len().min(libc::UIO_MAXIOV as usize);
    // SAFETY: an all-zero msghdr is a valid "no name, no control data" header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // IoSlice is ABI-compatible with iovec on Unix (guaranteed by std).
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = iovlen as _;
    let mut flags = libc::MSG_NOSIGNAL;
    if nonblocking {
        flags |= libc::MSG_DONTWAIT;
    }
    // SAFETY: `msg` points at `iovlen` live iovecs borrowed for the duration of the call.
    cvt_size(unsafe { libc::sendmsg(fd, &msg, flags) })
}

/// Writes what fits of `bufs` into socket `fd` now, without waiting: one `sendmsg(2)` with
/// `MSG_DONTWAIT | MSG_NOSIGNAL`. Returns the bytes written (possibly fewer than given);
/// `WouldBlock` when nothing fits. For drivers that keep blocking sockets but must not block
/// a caller (the `mirai-sp` driver writes from the sending thread when a pipe is idle).
pub fn send_now(fd: std::os::fd::BorrowedFd<'_>, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    loop {
        match send_vectored(fd.as_raw_fd(), bufs, true) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// Accepts one pending connection as a non-blocking, close-on-exec socket.
pub(crate) fn accept(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: null address pointers ask the kernel not to report the peer address.
    let s = cvt(unsafe {
        libc::accept4(
            fd,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    })?;
    // SAFETY: `s` is a fresh fd returned by accept4 and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(s) })
}

/// The credentials of the process at the other end of a connected Unix socket.
fn peer_cred(fd: RawFd) -> io::Result<libc::ucred> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: passes a pointer to a live ucred and its exact size; the kernel fills at most
    // `len` bytes.
    cvt(unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    })?;
    Ok(cred)
}

/// The user id of the process at the other end of a connected Unix socket.
pub(crate) fn peer_uid(fd: RawFd) -> io::Result<u32> {
    peer_cred(fd).map(|c| c.uid)
}

/// The process id at the other end of a connected Unix socket (as of its connect).
pub(crate) fn peer_pid(fd: RawFd) -> io::Result<i32> {
    peer_cred(fd).map(|c| c.pid)
}

/// This process's effective user id.
pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

fn setsockopt_int(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: passes a pointer to a live c_int with its exact size.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// Turns Nagle's algorithm off: small messages go out at once.
pub(crate) fn set_nodelay(fd: RawFd) -> io::Result<()> {
    setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1)
}

/// Turns TCP keepalive probes (`SO_KEEPALIVE`) on or off for socket `fd`, which std has no
/// setter for. For drivers that own std sockets (`tcp-keepalive` in `mirai-sp`).
pub fn set_keepalive(fd: std::os::fd::BorrowedFd<'_>, on: bool) -> io::Result<()> {
    setsockopt_int(
        fd.as_raw_fd(),
        libc::SOL_SOCKET,
        libc::SO_KEEPALIVE,
        libc::c_int::from(on),
    )
}

/// Whether `SO_KEEPALIVE` is on for socket `fd` (the kernel's value, for checks and reports).
pub fn keepalive(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<bool> {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are live and describe a buffer of exactly one c_int.
    cvt(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_KEEPALIVE,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    })?;
    Ok(value != 0)
}

/// `shutdown(2)` both directions; errors (already shut, not connected) are irrelevant here.
pub(crate) fn shutdown(fd: RawFd) {
    // SAFETY: no pointers; a stale or unconnected fd only yields an error we ignore.
    unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
}

/// A socket address in kernel form.
pub(crate) struct RawAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl RawAddr {
    fn family(&self) -> libc::c_int {
        self.storage.ss_family as libc::c_int
    }

    pub(crate) fn inet(addr: &SocketAddr) -> RawAddr {
        // SAFETY: all-zero is a valid sockaddr_storage.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let len = match addr {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
                unsafe {
                    std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin)
                };
                size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
                unsafe {
                    std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6)
                };
                size_of::<libc::sockaddr_in6>()
            }
        };
        RawAddr {
            storage,
            len: len as libc::socklen_t,
        }
    }

    /// A Unix socket address: a file path, or (with `abstract_name`) a name in the abstract
    /// namespace, which the kernel marks with a leading NUL byte.
    pub(crate) fn unix(bytes: &[u8], abstract_name: bool) -> io::Result<RawAddr> {
        // SAFETY: all-zero is a valid sockaddr_storage.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_un.
        let sun: &mut libc::sockaddr_un =
            unsafe { &mut *(&mut storage as *mut libc::sockaddr_storage).cast() };
        sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let start = usize::from(abstract_name);
        // Paths need room for their terminating NUL; abstract names for the leading one.
        if bytes.is_empty()
            || start + bytes.len() >= sun.sun_path.len() + usize::from(abstract_name)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "socket path empty or too long",
            ));
        }
        if !abstract_name && bytes.contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "socket path contains a NUL byte",
            ));
        }
        for (dst, &b) in sun.sun_path[start..].iter_mut().zip(bytes) {
            *dst = b as libc::c_char;
        }
        let base = std::mem::offset_of!(libc::sockaddr_un, sun_path);
        let len = if abstract_name {
            base + 1 + bytes.len()
        } else {
            base + bytes.len() + 1
        };
        Ok(RawAddr {
            storage,
            len: len as libc::socklen_t,
        })
    }
}

/// Creates a non-blocking listening stream socket bound to `addr`. `before_listen` runs
/// between bind and listen (for example to chmod a socket file while nobody can connect yet).
pub(crate) fn listen_socket(
    addr: &RawAddr,
    before_listen: impl FnOnce() -> io::Result<()>,
) -> io::Result<OwnedFd> {
    let family = addr.family();
    // SAFETY: no pointers; a non-negative result is a fresh fd.
    let raw = cvt(unsafe {
        libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    })?;
    // SAFETY: `raw` is a fresh fd owned by nobody else; OwnedFd closes it on every error path.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    if family == libc::AF_INET || family == libc::AF_INET6 {
        // Lets a restarted host rebind its port while old connections sit in TIME_WAIT.
        setsockopt_int(raw, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    }
    // SAFETY: `addr.storage` holds a valid address of `addr.len` bytes.
    cvt(unsafe {
        libc::bind(
            raw,
            (&addr.storage as *const libc::sockaddr_storage).cast(),
            addr.len,
        )
    })?;
    before_listen()?;
    // The kernel caps the backlog at net.core.somaxconn; ask for plenty so that many daemons
    // dialing at once are not refused.
    // SAFETY: no pointers.
    cvt(unsafe { libc::listen(raw, 4096) })?;
    Ok(fd)
}

/// The local port of a bound inet socket.
pub(crate) fn local_port(fd: RawFd) -> io::Result<u16> {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `storage` and `len` are live and describe a buffer of `len` bytes.
    cvt(unsafe {
        libc::getsockname(
            fd,
            (&mut storage as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    })?;
    match storage.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the kernel reported an AF_INET address, so the storage holds a sockaddr_in.
            let sin: &libc::sockaddr_in =
                unsafe { &*(&storage as *const libc::sockaddr_storage).cast() };
            Ok(u16::from_be(sin.sin_port))
        }
        libc::AF_INET6 => {
            // SAFETY: the kernel reported an AF_INET6 address, so it holds a sockaddr_in6.
            let sin6: &libc::sockaddr_in6 =
                unsafe { &*(&storage as *const libc::sockaddr_storage).cast() };
            Ok(u16::from_be(sin6.sin6_port))
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not an inet socket",
        )),
    }
}

mod watch;
pub use watch::{terminate_self, HangupWatch, WatchEnd};
