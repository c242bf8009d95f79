//! The HTTP/1.1 upgrade of a WebSocket connection as NNG's `ws` transport does it: the
//! request, the response, `Sec-WebSocket-Accept` (SHA-1 and base64, small and tested here
//! rather than two more dependencies). The error texts never quote the peer's bytes.
use super::{MAX_HANDSHAKE, SP_PROTOCOL};

/// SHA-1 (FIPS 180-4), only for `Sec-WebSocket-Accept`.
pub(in crate::native) fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (i, x) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

/// Standard base64 with padding.
pub(in crate::native) fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`.
pub(in crate::native) fn accept_key(key: &str) -> String {
    let mut v = key.as_bytes().to_vec();
    v.extend_from_slice(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64(&sha1(&v))
}

/// 16 unpredictable bytes, base64: a `Sec-WebSocket-Key`.
pub(in crate::native) fn new_key() -> String {
    let a = random_u64().to_le_bytes();
    let b = random_u64().to_le_bytes();
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&a);
    k[8..].copy_from_slice(&b);
    base64(&k)
}

/// A random 64-bit value from std's randomly keyed SipHash (no extra dependency): good enough
/// for masks and keys, whose purpose is to defeat cache poisoning by proxies, not secrecy.
pub(in crate::native) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

/// The client's upgrade request for `path` on `host_port`.
pub(in crate::native) fn client_request(host_port: &str, path: &str, key: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: {SP_PROTOCOL}\r\n\r\n"
    )
}

/// End of the HTTP head in `buf` (just past the blank line), if it is all there; errs when
/// the head exceeds [`MAX_HANDSHAKE`].
fn head_end(buf: &[u8]) -> Result<Option<usize>, String> {
    match buf.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) if i + 4 <= MAX_HANDSHAKE => Ok(Some(i + 4)),
        Some(_) => Err(too_long()),
        None if buf.len() >= MAX_HANDSHAKE => Err(too_long()),
        None => Ok(None),
    }
}

fn too_long() -> String {
    format!("WebSocket upgrade headers exceed {MAX_HANDSHAKE} bytes")
}

/// The value of header `name` (case-insensitive) among `lines`.
fn header<'a>(lines: &[&'a str], name: &str) -> Option<&'a str> {
    lines.iter().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn has_token(value: Option<&str>, token: &str) -> bool {
    value.is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// An upgrade request parsed by the listener.
#[derive(Debug, PartialEq, Eq)]
pub(in crate::native) struct Upgrade {
    /// Bytes of the request (the rest of the buffer is frames).
    pub(in crate::native) consumed: usize,
    /// The 101 response to send.
    pub(in crate::native) response: String,
}

/// Parses a client's upgrade request for `path`. `Ok(None)`: incomplete. The error texts
/// name the problem, never quote the peer's bytes.
pub(in crate::native) fn parse_request(buf: &[u8], path: &str) -> Result<Option<Upgrade>, String> {
    let Some(end) = head_end(buf)? else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..end - 4])
        .map_err(|_| "the WebSocket upgrade request is not text".to_string())?;
    let lines: Vec<&str> = head.split("\r\n").collect();
    let mut first = lines[0].split(' ');
    let (method, target, version) = (first.next(), first.next(), first.next());
    if method != Some("GET") || !version.is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Err("not an HTTP/1.1 GET request: not a WebSocket client".into());
    }
    if target != Some(path) {
        return Err(format!(
            "the WebSocket upgrade asks for another path than {path}"
        ));
    }
    if !has_token(header(&lines, "Upgrade"), "websocket")
        || !has_token(header(&lines, "Connection"), "upgrade")
    {
        return Err("the request is not a WebSocket upgrade (Upgrade/Connection headers)".into());
    }
    if header(&lines, "Sec-WebSocket-Version") != Some("13") {
        return Err("missing or unsupported Sec-WebSocket-Version (13 is required)".into());
    }
    let key = header(&lines, "Sec-WebSocket-Key")
        .filter(|k| k.len() == 24 && k.ends_with("=="))
        .ok_or_else(|| "missing or malformed Sec-WebSocket-Key".to_string())?;
    if let Some(p) = header(&lines, "Sec-WebSocket-Protocol") {
        if !has_token(Some(p), SP_PROTOCOL) {
            return Err(format!(
                "the client offers other SP protocols than {SP_PROTOCOL}"
            ));
        }
    }
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: {SP_PROTOCOL}\r\n\r\n",
        accept_key(key)
    );
    Ok(Some(Upgrade {
        consumed: end,
        response,
    }))
}

/// Checks the listener's response to an upgrade sent with `key`: `Ok(Some(len))` is the
/// response's length (what follows it is frames), `Ok(None)` incomplete.
pub(in crate::native) fn parse_response(buf: &[u8], key: &str) -> Result<Option<usize>, String> {
    let Some(end) = head_end(buf)? else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..end - 4])
        .map_err(|_| "the WebSocket upgrade response is not text".to_string())?;
    let lines: Vec<&str> = head.split("\r\n").collect();
    let status = lines[0].split(' ').nth(1).unwrap_or("");
    if status != "101" {
        return Err(format!(
            "the listener refused the WebSocket upgrade (HTTP status {})",
            if status.len() == 3 && status.bytes().all(|b| b.is_ascii_digit()) {
                status
            } else {
                "malformed"
            }
        ));
    }
    if header(&lines, "Sec-WebSocket-Accept") != Some(accept_key(key).as_str()) {
        return Err("the listener's Sec-WebSocket-Accept does not match the key sent".into());
    }
    if let Some(p) = header(&lines, "Sec-WebSocket-Protocol") {
        if !p.eq_ignore_ascii_case(SP_PROTOCOL) {
            return Err(format!("the listener does not speak {SP_PROTOCOL}"));
        }
    }
    Ok(Some(end))
}
