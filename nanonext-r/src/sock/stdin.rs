//! `read_stdin()` (spec §4): a pull socket fed, line by line, by a thread reading standard
//! input. The feeding end is a push socket over a private ipc path (the reserved
//! `inproc://` name upstream uses needs the in-process transport).

use std::io::BufRead;
use std::time::Duration;

use mirai_rapi::{RError, RResult, Scope, Sexp};
use mirai_sp::Protocol;

use super::sock_arg;

/// `.Call(nano_read_stdin, socket)`: feeds the pull `socket` from stdin; `socket`.
pub(crate) fn nano_read_stdin<'a>(s: &'a Scope, socket: Sexp<'a>) -> RResult<Sexp<'a>> {
    let so = sock_arg(socket, s)?;
    let path = std::env::temp_dir().join(format!(
        "nanonext-stdin-{}-{}.sock",
        std::process::id(),
        so.id
    ));
    let url = format!("ipc://{}", path.display());
    let io = |e: mirai_sp::Error| RError::Msg(mirai_proto::ErrorCode::from(e.code()).to_string());
    so.sock.listen(&url).map_err(io)?;
    let push = mirai_sp::Socket::new(Protocol::Push0).map_err(io)?;
    push.dial(&url).map_err(io)?;
    std::thread::Builder::new()
        .name("nanonext-stdin".into())
        .spawn(move || {
            let stdin = std::io::stdin();
            let mut line = Vec::new();
            let mut lock = stdin.lock();
            loop {
                line.clear();
                match lock.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        line.push(0);
                        if push.send(&line, None).is_err() {
                            break;
                        }
                    }
                }
            }
            // Let the last message leave before the connection closes.
            std::thread::sleep(Duration::from_millis(50));
            drop(push);
        })
        .map_err(|e| RError::Msg(e.to_string()))?;
    Ok(socket)
}
