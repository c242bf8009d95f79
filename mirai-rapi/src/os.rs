//! The few operating-system calls the R bridges need beside R's API: raising a signal in the
//! own process (R's interrupt from another thread, a daemon's exit on disconnect) and the
//! host's IPv4 interface addresses.

use std::net::Ipv4Addr;

/// `SIGINT` (POSIX: 2).
pub const SIGINT: i32 = libc::SIGINT;

/// `SIGTERM` (POSIX: 15).
pub const SIGTERM: i32 = libc::SIGTERM;

/// Sends signal `sig` to the own process (any thread may call this). `SIGINT` reaches R's
/// handler, which sets R's interrupt-pending flag. Whether it was sent (false for an invalid
/// signal number).
pub fn raise_signal(sig: i32) -> bool {
    // SAFETY: kill(2) with the own process id has no memory effects; an invalid number is
    // refused with EINVAL.
    unsafe { libc::kill(libc::getpid(), sig) == 0 }
}

/// The IPv4 addresses of the host's interfaces, with the interface names, in the system's
/// order (loopback included: callers filter). `None` when the system call fails.
pub fn ipv4_interfaces() -> Option<Vec<(String, Ipv4Addr)>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return None;
    }
    let mut out = Vec::new();
    let mut p = head;
    while !p.is_null() {
        // SAFETY: `p` is a node of the list getifaddrs returned, alive until freeifaddrs;
        // `ifa_addr` (may be null) points to a sockaddr whose family says its real type, and
        // `ifa_name` is a NUL-terminated string.
        unsafe {
            let ifa = &*p;
            if !ifa.ifa_addr.is_null() && i32::from((*ifa.ifa_addr).sa_family) == libc::AF_INET {
                let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                let name = std::ffi::CStr::from_ptr(ifa.ifa_name)
                    .to_string_lossy()
                    .into_owned();
                out.push((name, ip));
            }
            p = ifa.ifa_next;
        }
    }
    // SAFETY: the head getifaddrs returned, freed once; no node is used after.
    unsafe { libc::freeifaddrs(head) };
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interfaces_include_loopback() {
        let v = ipv4_interfaces().expect("getifaddrs");
        assert!(v.iter().any(|(_, ip)| ip.is_loopback()));
    }

    #[test]
    fn invalid_signal_is_refused() {
        assert!(!raise_signal(-1));
        assert!(raise_signal(0));
    }
}
