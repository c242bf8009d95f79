//! One connection: the SP handshake, then a reader loop feeding the machine and a writer
//! thread draining that pipe's queue.

use std::io::{Read, Write};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::stream::Stream;
use super::{PipeHandle, Shared};
use crate::error::Error;
use crate::frame::{FrameDecoder, Framing};
use crate::handshake;
use crate::sm::PipeId;

/// How long a peer may take to send its connection header.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Exchanges connection headers; refuses an incompatible peer.
fn handshake(shared: &Shared, stream: &mut Stream) -> Result<(), Error> {
    stream.write_all(&handshake::encode(shared.proto))?;
    stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
    let mut hdr = [0u8; handshake::HEADER_LEN];
    stream.read_exact(&mut hdr)?;
    stream.set_read_timeout(None)?;
    handshake::validate(shared.proto, &hdr)?;
    Ok(())
}

/// Runs a connection to its end on the calling thread: handshake, registration with the
/// machine, then reading until the peer or the socket closes. Returns the error that ended it.
pub(super) fn run(shared: &Arc<Shared>, mut stream: Stream, framing: Framing) -> Error {
    if let Err(e) = handshake(shared, &mut stream) {
        stream.shutdown();
        return e;
    }
    let writer_stream = match stream.try_clone() {
        Ok(s) => s,
        Err(e) => return Error::Io(e),
    };
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let (pipe, max) = {
        let mut g = shared.lock();
        if g.closed {
            stream.shutdown();
            return Error::Closed;
        }
        let pipe = g.alloc_pipe_id();
        if !g.machine.add_pipe(pipe, Instant::now()) {
            // pair: the socket already has its peer.
            stream.shutdown();
            return Error::IncorrectState;
        }
        let handle = PipeHandle {
            tx,
            stream: writer_stream.try_clone().ok(),
            framing,
        };
        g.pipes.insert(pipe, handle);
        g.flush();
        shared.cv.notify_all();
        (pipe, g.recv_max)
    };
    let sh = Arc::clone(shared);
    let writer = std::thread::Builder::new()
        .name(format!("sp-write-{}", pipe.0))
        .spawn(move || write_loop(&sh, pipe, writer_stream, rx));
    let end = match writer {
        Ok(_) => read_loop(shared, pipe, &mut stream, FrameDecoder::new(framing, max)),
        Err(e) => Error::Io(e),
    };
    stream.shutdown();
    shared.drop_pipe(pipe);
    end
}

fn read_loop(shared: &Shared, pipe: PipeId, stream: &mut Stream, mut dec: FrameDecoder) -> Error {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => return Error::Closed,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Error::Io(e),
        };
        let mut input = &buf[..n];
        let mut msgs = Vec::new();
        while !input.is_empty() {
            match dec.decode(&mut input) {
                Ok(Some(m)) => msgs.push(m),
                Ok(None) => {}
                Err(e) => return Error::Protocol(e),
            }
        }
        if msgs.is_empty() {
            continue;
        }
        let mut g = shared.lock();
        let now = Instant::now();
        for m in msgs {
            g.machine.handle_message(pipe, m, now);
        }
        g.flush();
        shared.cv.notify_all();
    }
}

fn write_loop(shared: &Shared, pipe: PipeId, mut stream: Stream, rx: mpsc::Receiver<Vec<u8>>) {
    while let Ok(frame) = rx.recv() {
        if stream.write_all(&frame).is_err() {
            stream.shutdown();
            return;
        }
        let mut g = shared.lock();
        g.machine.pipe_ready(pipe, Instant::now());
        g.flush();
        shared.cv.notify_all();
    }
}
