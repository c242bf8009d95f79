//! The HTTP/1.1 upgrade of a WebSocket connection as NNG's `ws` transport does it (observed
//! with libnng 1.5.2): the dialer asks for `Sec-WebSocket-Protocol: <peer>.sp.nanomsg.org`,
//! naming the protocol it wants to reach; the listener accepts only its own protocol's name
//! and echoes it, answering 404 for another path and 400 for a missing or other protocol;
//! NNG's dialer reports the first as 6 (refused) and the second as 13 (protocol error).
//! No SP header follows: the protocols are settled here. Errors never quote peer bytes.

use std::io::{self, BufRead, Write};

use base64::Engine as _;

use crate::error::{Error, WireError};
use crate::protocol::Protocol;

/// Bound on an upgrade request or response head.
const MAX_HEAD: usize = 8 * 1024;
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The subprotocol name of `p`.
pub(super) fn sp_name(p: Protocol) -> String {
    format!("{}.sp.nanomsg.org", p.name())
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`.
pub(super) fn accept_key(key: &str) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(key.as_bytes());
    ctx.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(ctx.finish())
}

/// `n` unpredictable bytes (keys and masks).
pub(super) fn random<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom as _;
    let mut b = [0u8; N];
    // getrandom failing leaves zeros: masks only defeat proxy cache poisoning.
    let _filled = ring::rand::SystemRandom::new().fill(&mut b);
    b
}

fn ws_err(msg: &str) -> Error {
    Error::Protocol(WireError::WebSocket(msg.to_string()))
}

/// Reads an HTTP head through its blank line (bounded by [`MAX_HEAD`]).
pub(super) fn read_head(r: &mut impl BufRead) -> Result<String, Error> {
    let mut head = Vec::new();
    loop {
        let before = head.len();
        let n = io::Read::take(&mut *r, (MAX_HEAD - before) as u64).read_until(b'\n', &mut head)?;
        if n == 0 {
            return Err(if before == 0 {
                Error::Closed
            } else {
                ws_err("connection closed during the upgrade")
            });
        }
        if head.ends_with(b"\r\n\r\n") || head.ends_with(b"\n\n") {
            break;
        }
        if head.len() >= MAX_HEAD {
            return Err(ws_err("upgrade headers too long"));
        }
    }
    String::from_utf8(head).map_err(|_| ws_err("upgrade head is not text"))
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn has_token(v: Option<&str>, token: &str) -> bool {
    v.is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// The dialer's upgrade on `io`: asks `path` on `host_port` for `peer`'s subprotocol.
pub(super) fn client<S: BufRead + Write>(
    io: &mut S,
    host_port: &str,
    path: &str,
    peer: Protocol,
) -> Result<(), Error> {
    let key = base64::engine::general_purpose::STANDARD.encode(random::<16>());
    let proto = sp_name(peer);
    write!(
        io,
        "GET {path} HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: {proto}\r\n\r\n"
    )?;
    io.flush()?;
    let head = read_head(io).map_err(|e| match e {
        Error::Closed => Error::ConnectionRefused,
        e => e,
    })?;
    let status = head.split(' ').nth(1).unwrap_or("");
    match status {
        "101" => {}
        // As NNG's dialer: no such path is "refused", any other refusal (400: the listener
        // speaks another protocol) a protocol error.
        "404" => return Err(Error::ConnectionRefused),
        _ => return Err(ws_err("the listener refused the upgrade")),
    }
    if header(&head, "Sec-WebSocket-Accept") != Some(accept_key(&key).as_str()) {
        return Err(ws_err("the listener's Sec-WebSocket-Accept does not match"));
    }
    if !header(&head, "Sec-WebSocket-Protocol").is_some_and(|p| p.eq_ignore_ascii_case(&proto)) {
        return Err(ws_err(
            "the listener does not speak the expected SP protocol",
        ));
    }
    Ok(())
}

/// Checks a dialer's upgrade request for `path` and protocol `ours`: `Ok(response)` to send,
/// or `Err((status, why))`.
pub(super) fn check_request(
    head: &str,
    path: &str,
    ours: Protocol,
) -> Result<String, (u16, &'static str)> {
    let mut first = head.lines().next().unwrap_or("").split(' ');
    let (method, target, version) = (first.next(), first.next(), first.next());
    if method != Some("GET") || !version.is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Err((400, "not an HTTP/1.1 GET request"));
    }
    let target = target.map(|t| t.split('?').next().unwrap_or(t));
    if target != Some(path) {
        return Err((404, "the upgrade asks for another path"));
    }
    if !has_token(header(head, "Upgrade"), "websocket")
        || !has_token(header(head, "Connection"), "upgrade")
        || header(head, "Sec-WebSocket-Version") != Some("13")
    {
        return Err((400, "not a WebSocket version 13 upgrade"));
    }
    let key = header(head, "Sec-WebSocket-Key")
        .filter(|k| !k.is_empty())
        .ok_or((400, "no Sec-WebSocket-Key"))?;
    let proto = sp_name(ours);
    if !has_token(header(head, "Sec-WebSocket-Protocol"), &proto) {
        return Err((400, "the dialer asks for another SP protocol"));
    }
    Ok(format!(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: {proto}\r\n\r\n",
        accept_key(key)
    ))
}

/// An HTTP refusal with `status`.
pub(super) fn refusal(status: u16) -> String {
    let reason = if status == 404 {
        "Not Found"
    } else {
        "Bad Request"
    };
    format!("HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
}

/// Maps a refused request to the error the listener's connection ends with.
pub(super) fn refused(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_rfc6455() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn requests_are_checked_like_nng() {
        let req = |path: &str, proto: &str| {
            format!(
                "GET {path} HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
                 Sec-WebSocket-Protocol: {proto}\r\n\r\n"
            )
        };
        let ok = check_request(&req("/x", "rep.sp.nanomsg.org"), "/x", Protocol::Rep0).unwrap();
        assert!(ok.starts_with("HTTP/1.1 101"));
        assert!(ok.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        assert!(ok.contains("Sec-WebSocket-Protocol: rep.sp.nanomsg.org"));
        let code = |r: Result<String, (u16, &str)>| r.unwrap_err().0;
        assert_eq!(
            code(check_request(
                &req("/y", "rep.sp.nanomsg.org"),
                "/x",
                Protocol::Rep0
            )),
            404
        );
        assert_eq!(
            code(check_request(
                &req("/x", "req.sp.nanomsg.org"),
                "/x",
                Protocol::Rep0
            )),
            400
        );
    }

    #[test]
    fn heads_are_bounded() {
        let long = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        assert!(read_head(&mut long.as_bytes()).is_err());
        let h = read_head(&mut &b"HTTP/1.1 101 S\r\n\r\nrest"[..]).unwrap();
        assert_eq!(h, "HTTP/1.1 101 S\r\n\r\n");
    }
}
