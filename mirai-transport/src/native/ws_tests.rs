//! Unit tests of the WebSocket codec and handshake.
use super::*;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn request(extra: &str) -> String {
    format!(
        "GET /p HTTP/1.1\r\nHost: h:1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// A client (masked) message frame or frames, as the dialer sends them.
fn client_wire(msg: &[u8]) -> Vec<u8> {
    let mut wire = Vec::new();
    let mut buf = Vec::new();
    for_each_client_frame::<()>(&[msg], &mut buf, |f| {
        wire.extend_from_slice(f);
        Ok(())
    })
    .unwrap();
    wire
}

fn server_wire(parts: &[&[u8]]) -> Vec<u8> {
    with_server_message(parts, |iov, total| {
        let v: Vec<u8> = iov.iter().flat_map(|s| s.iter().copied()).collect();
        assert_eq!(v.len(), total);
        v
    })
}

fn decode(server: bool, wire: &[u8], step: usize) -> Vec<WsEvent> {
    let mut d = WsDecoder::new(server, None);
    let mut out = Vec::new();
    for piece in wire.chunks(step) {
        d.feed(piece, 1 << 24, |e| out.push(e)).unwrap();
    }
    assert!(!d.mid_message());
    out
}

#[test]
fn sha1_and_accept_key_match_rfc_6455() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    let hex: String = sha1(b"abc").iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_eq!(new_key().len(), 24);
    assert_eq!(accept_key(KEY), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

#[test]
fn request_parses_and_answers_with_the_accept_key() {
    let text = request("Sec-WebSocket-Protocol: pair1.sp.nanomsg.org\r\n");
    let mut buf = text.clone().into_bytes();
    buf.extend_from_slice(b"frames");
    let up = parse_request(&buf, "/p").unwrap().unwrap();
    assert_eq!(up.consumed, text.len());
    assert!(up.response.starts_with("HTTP/1.1 101"));
    assert!(up
        .response
        .contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    assert!(up.response.contains(SP_PROTOCOL));
    // The response passes the dialer's check; incomplete input is not an error.
    assert_eq!(
        parse_response(up.response.as_bytes(), KEY).unwrap(),
        Some(up.response.len())
    );
    assert_eq!(parse_request(&buf[..20], "/p").unwrap(), None);
    assert_eq!(
        parse_response(&up.response.as_bytes()[..30], KEY).unwrap(),
        None
    );
    // Client requests built here parse.
    let ours = client_request("h:1", "/p", KEY);
    assert!(parse_request(ours.as_bytes(), "/p").unwrap().is_some());
}

#[test]
fn bad_requests_are_refused_with_a_reason() {
    let err = |t: &str| parse_request(t.as_bytes(), "/p").unwrap_err();
    assert!(err(&request("").replace("GET", "POST")).contains("GET"));
    assert!(err(&request("").replace("/p", "/q")).contains("path"));
    assert!(err(&request("").replace("Upgrade: websocket\r\n", "")).contains("Upgrade"));
    assert!(err(&request("").replace("Sec-WebSocket-Key", "X-Key")).contains("Key"));
    assert!(err(&request("").replace(KEY, "short")).contains("Key"));
    assert!(err(&request("").replace("Version: 13", "Version: 8")).contains("Version"));
    assert!(err(&request("Sec-WebSocket-Protocol: rep.sp.nanomsg.org\r\n")).contains("SP"));
    assert!(err("garbage\r\n\r\n").contains("GET"));
    let huge = format!(
        "GET /p HTTP/1.1\r\nX: {}\r\n\r\n",
        "a".repeat(MAX_HANDSHAKE)
    );
    assert!(err(&huge).contains("exceed"));
    assert!(parse_request(&vec![b'a'; MAX_HANDSHAKE], "/p")
        .unwrap_err()
        .contains("exceed"));
    assert!(
        parse_request(&[0xff, 0xfe, b'\r', b'\n', b'\r', b'\n'], "/p")
            .unwrap_err()
            .contains("not text")
    );
    // Responses: wrong status, wrong key.
    let r = "HTTP/1.1 404 Not Found\r\n\r\n";
    assert!(parse_response(r.as_bytes(), KEY)
        .unwrap_err()
        .contains("404"));
    let r = format!(
        "HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        accept_key("x")
    );
    assert!(parse_response(r.as_bytes(), KEY)
        .unwrap_err()
        .contains("Accept"));
}

#[test]
fn headers_use_minimal_lengths_at_every_boundary() {
    for (len, n) in [
        (0, 2),
        (125, 2),
        (126, 4),
        (65535, 4),
        (65536, 10),
        (1 << 40, 10),
    ] {
        let (h, got) = frame_header(true, OP_BINARY, len, None);
        assert_eq!(got, n, "len {len}");
        assert_eq!(h[0], 0x82);
        let (_, masked) = frame_header(false, OP_CONT, len, Some([1, 2, 3, 4]));
        assert_eq!(masked, n + 4);
    }
}

#[test]
fn messages_round_trip_at_every_length_boundary_and_split() {
    for len in [
        0usize, 1, 121, 122, 125, 126, 65531, 65532, 65535, 65536, 200_000,
    ] {
        let msg: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let wire = client_wire(&msg);
        assert_eq!(
            decode(true, &wire, wire.len().max(1)),
            vec![WsEvent::Message(msg.clone())],
            "client {len}"
        );
        let wire = server_wire(&[&msg[..len / 2], &msg[len / 2..]]);
        assert_eq!(
            decode(false, &wire, 4093),
            vec![WsEvent::Message(msg)],
            "server {len}"
        );
    }
    // Any split, several messages in one stream.
    let mut wire = client_wire(b"hello");
    wire.extend(client_wire(b""));
    wire.extend(client_wire(&[9u8; 300]));
    for step in 1..wire.len() {
        assert_eq!(
            decode(true, &wire, step),
            vec![
                WsEvent::Message(b"hello".to_vec()),
                WsEvent::Message(Vec::new()),
                WsEvent::Message(vec![9u8; 300])
            ]
        );
    }
}

#[test]
fn nng_bytes_decode() {
    // What NNG's ws transport sent for "hello" (dumped from NNG 1.5).
    let wire = [0x82, 0x09, 0, 0, 0, 1, b'h', b'e', b'l', b'l', b'o'];
    assert_eq!(
        decode(false, &wire, 3),
        vec![WsEvent::Message(b"hello".to_vec())]
    );
    assert_eq!(server_wire(&[b"hello"]), wire);
}

#[test]
fn fragments_with_interleaved_ping_are_reassembled_and_ping_answered() {
    let mask = [9, 8, 7, 6];
    let frame = |fin: bool, op: u8, payload: &[u8]| {
        let (h, n) = frame_header(fin, op, payload.len(), Some(mask));
        let mut v = h[..n].to_vec();
        let mut p = payload.to_vec();
        apply_mask(&mut p, mask, 0);
        v.extend(p);
        v
    };
    let mut wire = frame(false, OP_BINARY, &[0, 0, 0, 1, b'a']);
    wire.extend(frame(true, OP_PING, b"hi"));
    wire.extend(frame(false, OP_CONT, b"b"));
    wire.extend(frame(true, OP_CONT, b"c"));
    wire.extend(frame(true, OP_PONG, b""));
    let got = decode(true, &wire, 1);
    let pong = [0x8A, 2, b'h', b'i'].to_vec();
    assert_eq!(
        got,
        vec![WsEvent::Reply(pong), WsEvent::Message(b"abc".to_vec())]
    );
    // Close: answered, reported, and nothing after it is read.
    let mut wire = frame(true, OP_CLOSE, &[0x03, 0xe8]);
    wire.extend(frame(true, OP_BINARY, &[0, 0, 0, 1]));
    let mut d = WsDecoder::new(true, None);
    let mut out = Vec::new();
    d.feed(&wire, 100, |e| out.push(e)).unwrap();
    assert_eq!(
        out,
        vec![WsEvent::Reply(vec![0x88, 2, 0x03, 0xe8]), WsEvent::Closed]
    );
}

#[test]
fn bad_frames_are_protocol_errors() {
    let bad = |server: bool, wire: &[u8]| {
        let mut d = WsDecoder::new(server, None);
        d.feed(wire, 1 << 20, |_| {}).unwrap_err()
    };
    let m = [0x80 | 5, 1, 2, 3, 4, 0, 0, 0, 0, 0]; // masked 5-byte payload, zero-ish mask
    assert!(bad(false, &[&[0x82][..], &m].concat()).contains("masked"));
    assert!(bad(true, &[0x82, 0x05, 0, 0, 0, 1, 0]).contains("unmasked"));
    assert!(bad(true, &[&[0x81][..], &m].concat()).contains("text"));
    assert!(bad(true, &[&[0xC2][..], &m].concat()).contains("reserved bits"));
    assert!(bad(true, &[&[0x83][..], &m].concat()).contains("opcode"));
    assert!(bad(true, &[&[0x80][..], &m].concat()).contains("continuation"));
    assert!(bad(true, &[&[0x09][..], &m].concat()).contains("control"));
    assert!(bad(true, &[0x89, 0x80 | 126, 0, 200, 0, 0, 0, 0]).contains("control"));
    let mut two = [&[0x02][..], &m].concat();
    two.extend([&[0x82][..], &m].concat());
    assert!(bad(true, &two).contains("inside"));
    assert!(bad(true, &[0x82, 0x82, 0, 0, 0, 0, 0, 0]).contains("shorter"));
    let mut top = vec![0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 0];
    top.extend([0, 0, 0, 0]);
    assert!(bad(true, &top).contains("top bit"));
}

#[test]
fn message_bounds_apply_at_the_frame_header() {
    // A frame claiming more than the bound is refused before its payload arrives.
    let (h, n) = frame_header(true, OP_BINARY, 4 + 1000, Some([0; 4]));
    let mut d = WsDecoder::new(true, None);
    let e = d.feed(&h[..n], 999, |_| {}).unwrap_err();
    assert!(e.contains("1000") && e.contains("999"), "{e}");
    // The first message has its own bound; later ones only `max`.
    let mut d = WsDecoder::new(true, Some(10));
    let e = d.feed(&h[..n], 1 << 20, |_| {}).unwrap_err();
    assert!(e.contains("first") && e.contains("10 bytes"), "{e}");
    let mut d = WsDecoder::new(true, Some(10));
    let mut got = Vec::new();
    let mut wire = client_wire(&[1u8; 10]);
    wire.extend(client_wire(&[2u8; 5000]));
    d.feed(&wire, 1 << 20, |e| got.push(e)).unwrap();
    assert_eq!(got.len(), 2);
    // Fragments add up against the bound.
    let mut wire = Vec::new();
    let mask = [0u8; 4];
    for (i, fin) in [(0, false), (1, false), (2, true)] {
        let op = if i == 0 { OP_BINARY } else { OP_CONT };
        let (h, n) = frame_header(fin, op, 600, Some(mask));
        wire.extend_from_slice(&h[..n]);
        wire.extend(vec![0u8; 600]);
    }
    let mut d = WsDecoder::new(true, None);
    assert!(d.feed(&wire, 1000, |_| {}).unwrap_err().contains("exceeds"));
}

#[test]
fn huge_claim_reserves_little() {
    let (h, n) = frame_header(true, OP_BINARY, 4 << 30, None);
    let mut d = WsDecoder::new(false, None);
    let mut wire = h[..n].to_vec();
    wire.extend_from_slice(&[0, 0, 0, 1, 1, 2, 3]);
    d.feed(&wire, usize::MAX, |_| panic!("incomplete")).unwrap();
    let cap = d.msg.as_ref().map_or(0, Vec::capacity);
    assert!(cap <= 64 * 1024 + 3, "capacity {cap}");
    assert!(d.mid_message());
}
