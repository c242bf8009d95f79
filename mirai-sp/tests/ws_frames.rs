//! Our ws listener against a hand-written RFC 6455 client: the upgrade, masked binary
//! messages in fragments, ping/pong, the close echo, and the frames it must refuse.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use mirai_sp::{Protocol, Socket};

const WAIT: Duration = Duration::from_secs(5);

/// Upgrades a raw connection to our pair0 listener at `url` (`ws://127.0.0.1:port/path`).
fn upgrade(url: &str) -> TcpStream {
    let rest = url.strip_prefix("ws://").unwrap();
    let (hp, path) = rest.split_at(rest.find('/').unwrap());
    let mut c = TcpStream::connect(hp).unwrap();
    c.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: {hp}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: pair.sp.nanomsg.org\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        c.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
    assert!(head.contains("Sec-WebSocket-Protocol: pair.sp.nanomsg.org"));
    c
}

/// A client frame (masked unless `mask` is `None`).
fn frame(fin: bool, op: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut f = vec![if fin { 0x80 | op } else { op }];
    let m = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => f.push(m | n as u8),
        n if n <= 0xFFFF => {
            f.push(m | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(m | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(k) => {
            f.extend_from_slice(&k);
            f.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i & 3]));
        }
        None => f.extend_from_slice(payload),
    }
    f
}

/// Reads one server frame: (fin, opcode, payload); the server must not mask.
fn read_frame(c: &mut TcpStream) -> (bool, u8, Vec<u8>) {
    let mut h = [0u8; 2];
    c.read_exact(&mut h).unwrap();
    assert_eq!(h[1] & 0x80, 0, "the listener masked a frame");
    let len = match h[1] & 0x7F {
        126 => {
            let mut b = [0u8; 2];
            c.read_exact(&mut b).unwrap();
            u64::from(u16::from_be_bytes(b))
        }
        127 => {
            let mut b = [0u8; 8];
            c.read_exact(&mut b).unwrap();
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    };
    let mut p = vec![0u8; len as usize];
    c.read_exact(&mut p).unwrap();
    (h[0] & 0x80 != 0, h[0] & 0x0F, p)
}

fn listener() -> (Socket, String) {
    let s = Socket::new(Protocol::Pair0).unwrap();
    let url = s.listen("ws://127.0.0.1:0/f").unwrap();
    (s, url)
}

#[test]
fn fragments_pings_and_close() {
    let (s, url) = listener();
    let mut c = upgrade(&url);
    s.wait_pipes(1, WAIT).unwrap();
    // One message in three fragments, a ping in between.
    let k = [1, 2, 3, 4];
    c.write_all(&frame(false, 0x2, b"hel", Some(k))).unwrap();
    c.write_all(&frame(true, 0x9, b"are you there", Some(k)))
        .unwrap();
    c.write_all(&frame(false, 0x0, b"lo ", Some(k))).unwrap();
    c.write_all(&frame(true, 0x0, b"world", Some(k))).unwrap();
    assert_eq!(read_frame(&mut c), (true, 0xA, b"are you there".to_vec()));
    assert_eq!(s.recv(Some(WAIT)).unwrap(), b"hello world");
    // Our messages: one binary message, 64 KiB fragments, unmasked.
    s.send(b"short", Some(WAIT)).unwrap();
    assert_eq!(read_frame(&mut c), (true, 0x2, b"short".to_vec()));
    let big: Vec<u8> = (0..150_000u32).map(|i| i as u8).collect();
    s.send(&big, Some(WAIT)).unwrap();
    let mut got = Vec::new();
    let mut ops = Vec::new();
    loop {
        let (fin, op, p) = read_frame(&mut c);
        assert!(p.len() <= 64 * 1024);
        ops.push(op);
        got.extend_from_slice(&p);
        if fin {
            break;
        }
    }
    assert_eq!(ops, [0x2, 0x0, 0x0]);
    assert_eq!(got, big);
    // Close: echoed with the status code, then the pipe goes.
    c.write_all(&frame(true, 0x8, &1000u16.to_be_bytes(), Some(k)))
        .unwrap();
    assert_eq!(
        read_frame(&mut c),
        (true, 0x8, 1000u16.to_be_bytes().to_vec())
    );
    let deadline = std::time::Instant::now() + WAIT;
    while !s.pipes().is_empty() {
        assert!(std::time::Instant::now() < deadline, "pipe still up");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn unmasked_and_text_frames_drop_the_connection() {
    let (s, url) = listener();
    for bad in [
        frame(true, 0x2, b"unmasked", None),
        frame(true, 0x1, b"text", Some([9, 9, 9, 9])),
        frame(true, 0x0, b"no message to continue", Some([9, 9, 9, 9])),
    ] {
        let mut c = upgrade(&url);
        s.wait_pipes(1, WAIT).unwrap();
        c.write_all(&bad).unwrap();
        // The listener hangs up: EOF (or a reset), and nothing was delivered.
        let mut rest = Vec::new();
        let _ = c.read_to_end(&mut rest);
        assert!(rest.is_empty());
        assert_eq!(
            s.recv(Some(Duration::from_millis(50))).unwrap_err().code(),
            5
        );
    }
}

#[test]
fn upgrade_refusals() {
    let (_s, url) = listener();
    let hp = url
        .strip_prefix("ws://")
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    for (req, status) in [
        (
            "GET /other HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Protocol: pair.sp.nanomsg.org\r\n\r\n",
            "404",
        ),
        (
            "GET /f HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Protocol: rep.sp.nanomsg.org\r\n\r\n",
            "400",
        ),
        ("GET /f HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
    ] {
        let mut c = TcpStream::connect(&hp).unwrap();
        c.set_read_timeout(Some(WAIT)).unwrap();
        c.write_all(req.as_bytes()).unwrap();
        let mut resp = String::new();
        let _ = c.read_to_string(&mut resp);
        assert!(resp.starts_with(&format!("HTTP/1.1 {status}")), "{resp}");
    }
}
