//! Native backend. (Filled in by the transport implementation.)
use crate::{Error, Event, Options, PeerId, Url};
use std::time::Duration;

pub(crate) struct NativeListener;
impl NativeListener {
    pub(crate) fn bind(_url: &Url, _opts: &Options) -> Result<Self, Error> { unimplemented!() }
    pub(crate) fn url(&self) -> &str { unimplemented!() }
    pub(crate) fn poll(&self, _ev: &mut Vec<Event>, _t: Option<Duration>) -> Result<(), Error> { unimplemented!() }
    pub(crate) fn send(&self, _p: PeerId, _m: &[u8]) -> Result<(), Error> { unimplemented!() }
    pub(crate) fn disconnect(&self, _p: PeerId) { unimplemented!() }
    pub(crate) fn wake(&self) { unimplemented!() }
}
pub(crate) struct NativeConnection;
impl NativeConnection {
    pub(crate) fn dial(_url: &Url, _opts: &Options) -> Result<Self, Error> { unimplemented!() }
    pub(crate) fn send(&self, _m: &[u8]) -> Result<(), Error> { unimplemented!() }
    pub(crate) fn recv(&self, _t: Option<Duration>) -> Result<Option<Vec<u8>>, Error> { unimplemented!() }
    pub(crate) fn raw_fd(&self) -> std::os::fd::RawFd { unimplemented!() }
    pub(crate) fn close(&self) { unimplemented!() }
}
