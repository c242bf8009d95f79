//! One connection: the SP handshake, then a reader loop feeding the machine and a writer
//! thread draining that pipe's queue.

use std::io::{Read, Write};
use std::sync::mpsc;
use std::sync::Arc;

use super::PipeEvent;
use std::time::{Duration, Instant};

use super::stream::Stream;
use super::wire::{self, FrameReader};
use super::{PipeHandle, Shared};
use crate::error::Error;
use crate::frame::Framing;
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

/// Runs a connection of endpoint `ep` to its end on the calling thread: handshake,
/// registration with the machine, then reading until the peer, the endpoint or the socket
/// closes. Returns the error that ended it. `added` (taken) is told once the pipe is added.
pub(super) fn run(
    shared: &Arc<Shared>,
    mut stream: Stream,
    framing: Framing,
    ep: u32,
    added: &mut Option<mpsc::Sender<Result<(), Error>>>,
) -> Error {
    if let Err(e) = handshake(shared, &mut stream) {
        stream.shutdown();
        if let Some(e) = shared.lock().endpoints.get_mut(&ep) {
            e.stats.reject += 1;
        }
        return e;
    }
    let writer_stream = match stream.try_clone() {
        Ok(s) => s,
        Err(e) => return Error::Io(e),
    };
    let (tx, rx) = mpsc::channel::<(Arc<Vec<u8>>, usize)>();
    let (pipe, max) = {
        let mut g = shared.lock();
        let socket_max = g.recv_max;
        let closed = g.closed;
        let Some(e) = g.endpoints.get_mut(&ep).filter(|_| !closed) else {
            stream.shutdown();
            return Error::Closed;
        };
        if e.stop.load(std::sync::atomic::Ordering::SeqCst) {
            stream.shutdown();
            return Error::Closed;
        }
        let max = e.recv_max.unwrap_or(socket_max);
        let pipe = g.alloc_pipe_id();
        if !g.machine.add_pipe(pipe, Instant::now()) {
            // pair: the socket already has its peer.
            stream.shutdown();
            if let Some(e) = g.endpoints.get_mut(&ep) {
                e.stats.reject += 1;
            }
            return Error::IncorrectState;
        }
        if let Some(e) = g.endpoints.get_mut(&ep) {
            e.stats.connect += 1;
        }
        let handle = PipeHandle::new(tx, writer_stream.try_clone().ok(), ep, framing);
        g.pipes.insert(pipe, handle);
        let observer = g.observer.clone();
        shared.settle(g);
        if let Some(tx) = added.take() {
            let _told = tx.send(Ok(()));
        }
        if let Some(o) = observer {
            o(PipeEvent::Added(pipe));
        }
        (pipe, max)
    };
    let sh = Arc::clone(shared);
    let writer = std::thread::Builder::new()
        .name(format!("sp-write-{}", pipe.0))
        .spawn(move || write_loop(&sh, pipe, writer_stream, framing, rx));
    let end = match writer {
        Ok(_) => read_loop(shared, pipe, &mut stream, FrameReader::new(framing, max)),
        Err(e) => Error::Io(e),
    };
    stream.shutdown();
    shared.drop_pipe(pipe);
    end
}

fn read_loop(shared: &Shared, pipe: PipeId, stream: &mut Stream, mut rd: FrameReader) -> Error {
    loop {
        let mut msgs = Vec::with_capacity(1);
        // Whatever whole frames one read brought in go to the machine under one lock.
        loop {
            match rd.next(stream) {
                Ok(m) => msgs.push(m),
                Err(e) => return e,
            }
            if !rd.has_frame() {
                break;
            }
        }
        let mut g = shared.lock();
        let now = Instant::now();
        for m in msgs {
            g.machine.handle_message(pipe, m, now);
        }
        shared.settle(g);
    }
}

fn write_loop(
    shared: &Shared,
    pipe: PipeId,
    mut stream: Stream,
    framing: Framing,
    rx: mpsc::Receiver<(Arc<Vec<u8>>, usize)>,
) {
    while let Ok((first, skip)) = rx.recv() {
        // Frames queued meanwhile go out in the same vectored write. Only the first can have
        // been started inline: inline writes wait for an empty queue.
        let mut batch = vec![first];
        while let Ok((m, _)) = rx.try_recv() {
            batch.push(m);
        }
        let msgs: Vec<&[u8]> = batch.iter().map(|m| m.as_slice()).collect();
        if wire::write_frames(&mut stream, framing, &msgs, skip).is_err() {
            stream.shutdown();
            return;
        }
        let written = batch.len();
        drop(msgs);
        drop(batch);
        let mut g = shared.lock();
        g.written(pipe, written, Instant::now());
        shared.settle(g);
    }
}
