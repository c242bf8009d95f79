//! `inproc://name`: a process-wide registry of listening names. A dial makes a connected
//! `UnixStream::pair()` and hands one end to the listener, so the rest of the driver (SP
//! header, tcp framing, threads) works unchanged; both ends are ours, so any faithful framing
//! will do.

use std::collections::HashMap;
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::error::Error;

fn registry() -> MutexGuard<'static, HashMap<String, Sender<UnixStream>>> {
    static REG: OnceLock<Mutex<HashMap<String, Sender<UnixStream>>>> = OnceLock::new();
    REG.get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Claims `name`; the receiver yields one stream per dial. `AddressInUse` if taken.
pub(super) fn bind(name: &str) -> Result<Receiver<UnixStream>, Error> {
    let mut reg = registry();
    if reg.contains_key(name) {
        return Err(Error::AddressInUse);
    }
    let (tx, rx) = mpsc::channel();
    reg.insert(name.to_string(), tx);
    Ok(rx)
}

/// Connects to the listener at `name` (`ConnectionRefused` if none).
pub(super) fn connect(name: &str) -> Result<UnixStream, Error> {
    let reg = registry();
    let tx = reg.get(name).ok_or(Error::ConnectionRefused)?;
    let (ours, theirs) = UnixStream::pair()?;
    tx.send(theirs).map_err(|_| Error::ConnectionRefused)?;
    Ok(ours)
}

/// Frees `name`: its listener's receiver then reports disconnection, ending its accept loop.
pub(super) fn release(name: &str) {
    registry().remove(name);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn names_are_exclusive_and_freed() {
        let rx = bind("inproc-unit-a").unwrap();
        assert_eq!(bind("inproc-unit-a").unwrap_err().code(), 10);
        let mut a = connect("inproc-unit-a").unwrap();
        let mut b = rx.recv().unwrap();
        a.write_all(b"hi").unwrap();
        let mut got = [0u8; 2];
        b.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hi");
        release("inproc-unit-a");
        assert!(rx.recv().is_err());
        assert_eq!(connect("inproc-unit-a").unwrap_err().code(), 6);
        drop(bind("inproc-unit-a").unwrap());
        release("inproc-unit-a");
    }
}
