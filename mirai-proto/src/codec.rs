//! Frames to bytes and back.

use crate::{BodyError, DecodeError, Frame, HEADER_LEN, MAGIC, PROTOCOL_VERSION};

/// Encodes a frame into a fresh buffer.
pub fn encode(frame: &Frame) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(frame, &mut out);
    out
}

/// Appends an encoded frame to `out`, reserving room for the payload up front so that a large
/// payload is copied once.
pub fn encode_into(frame: &Frame, out: &mut Vec<u8>) {
    let payload = match frame {
        Frame::Task(t) => t.payload.len(),
        Frame::Batch(b) => b.payload.len(),
        Frame::Result(r) => r.payload.len(),
        Frame::Init(i) => i.serial.len(),
        _ => 0,
    };
    out.reserve(HEADER_LEN + payload + 64);
    out.extend_from_slice(&MAGIC);
    out.push(PROTOCOL_VERSION);
    // Writing into a Vec cannot fail, and every frame type serializes without error.
    ciborium::into_writer(frame, &mut *out).expect("encoding a frame into memory cannot fail");
}

/// Appends one result as an item of a [`Frame::Results`] (see
/// [`crate::results_frame_prefix`]): its CBOR alone, no header.
pub fn encode_result_item(result: &crate::TaskResult, out: &mut Vec<u8>) {
    out.reserve(result.payload.len() + 48);
    // Writing into a Vec cannot fail, and a result serializes without error.
    ciborium::into_writer(result, &mut *out).expect("encoding a result into memory cannot fail");
}

/// Decodes one frame of at most `max` bytes.
///
/// Total: any input gives a frame or an error, never a panic, and no allocation larger than the
/// input itself.
pub fn decode(bytes: &[u8], max: usize) -> Result<Frame, DecodeError> {
    if bytes.len() > max {
        return Err(DecodeError::Oversized {
            len: bytes.len(),
            max,
        });
    }
    if bytes.len() < HEADER_LEN {
        return Err(DecodeError::Truncated { len: bytes.len() });
    }
    if bytes[..MAGIC.len()] != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    if bytes[3] != PROTOCOL_VERSION {
        return Err(DecodeError::UnknownVersion { got: bytes[3] });
    }
    let mut body = &bytes[HEADER_LEN..];
    let frame: Frame = ciborium::from_reader(&mut body)
        .map_err(|e| DecodeError::Malformed(BodyError::from_cbor(&e)))?;
    if !body.is_empty() {
        return Err(DecodeError::TrailingBytes(body.len()));
    }
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        flags, BodyError, Hello, Init, Status, Task, TaskId, TaskResult, DEFAULT_MAX_FRAME,
    };
    use serde::Serialize;

    fn samples() -> Vec<Frame> {
        vec![
            Frame::Hello(Hello {
                protocol: PROTOCOL_VERSION,
                pid: 42,
            }),
            Frame::Init(Init {
                stream: Some([10407, 1, -2, 3, -4, 5, 6]),
                serial: vec![1, 2],
            }),
            Frame::Init(Init {
                stream: None,
                serial: vec![],
            }),
            Frame::Task(Task {
                id: TaskId(1),
                flags: flags::EVERYWHERE,
                payload: vec![0; 16],
                trace: None,
            }),
            Frame::Batch(crate::Batch {
                id: TaskId(7),
                flags: 0,
                offset: 3,
                count: 64,
                payload: vec![5; 8],
                trace: Some("tp".into()),
            }),
            Frame::Result(TaskResult {
                id: TaskId(u64::MAX),
                status: Status::Error,
                last: true,
                payload: vec![9; 3],
            }),
            Frame::Batch(crate::Batch {
                id: TaskId(70),
                flags: flags::COALESCE,
                offset: 0,
                count: 2,
                payload: vec![1; 4],
                trace: None,
            }),
            Frame::Results(vec![
                TaskResult {
                    id: TaskId(70),
                    status: Status::Ok,
                    last: false,
                    payload: vec![1, 2],
                },
                TaskResult {
                    id: TaskId(71),
                    status: Status::Interrupted,
                    last: false,
                    payload: vec![],
                },
            ]),
            Frame::Results(vec![]),
            Frame::Running { id: TaskId(71) },
            Frame::Cancel { id: TaskId(3) },
            Frame::Withdraw { id: TaskId(4) },
            Frame::Withdrawn {
                id: TaskId(u64::MAX),
            },
            Frame::Ack,
            Frame::Exit,
        ]
    }

    #[test]
    fn every_kind_round_trips() {
        for f in samples() {
            assert_eq!(decode(&encode(&f), DEFAULT_MAX_FRAME).unwrap(), f);
        }
    }

    #[test]
    fn results_encoded_item_by_item_equal_the_frame() {
        for n in [0usize, 1, 23, 24, 300] {
            let rs: Vec<TaskResult> = (0..n as u64)
                .map(|i| TaskResult {
                    id: TaskId(i + 1),
                    status: Status::Ok,
                    last: false,
                    payload: vec![i as u8; (i % 5) as usize],
                })
                .collect();
            let (prefix, len) = crate::results_frame_prefix(n);
            let mut bytes = prefix[..len].to_vec();
            rs.iter().for_each(|r| encode_result_item(r, &mut bytes));
            assert_eq!(bytes, encode(&Frame::Results(rs.clone())));
            assert_eq!(
                decode(&bytes, DEFAULT_MAX_FRAME).unwrap(),
                Frame::Results(rs)
            );
        }
    }

    #[test]
    fn header_errors_are_named() {
        assert_eq!(decode(b"MR", 100), Err(DecodeError::Truncated { len: 2 }));
        assert_eq!(decode(b"XYZ\x01", 100), Err(DecodeError::BadMagic));
        assert_eq!(
            decode(b"MRI\x09\xf6", 100),
            Err(DecodeError::UnknownVersion { got: 9 })
        );
        let big = encode(&Frame::Task(Task {
            id: TaskId(1),
            flags: 0,
            payload: vec![0; 100],
            trace: None,
        }));
        assert!(matches!(
            decode(&big, 50),
            Err(DecodeError::Oversized { max: 50, .. })
        ));
    }

    #[test]
    fn trailing_and_truncated_bodies_are_errors() {
        let mut b = encode(&Frame::Ack);
        b.push(0);
        assert_eq!(decode(&b, 100), Err(DecodeError::TrailingBytes(1)));
        let t = encode(&Frame::Task(Task {
            id: TaskId(1),
            flags: 0,
            payload: vec![7; 40],
            trace: None,
        }));
        for cut in HEADER_LEN..t.len() {
            assert!(decode(&t[..cut], 1000).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn a_byte_string_claiming_gigabytes_is_an_error_not_an_allocation() {
        // Header, then CBOR {"Task": {..., "payload": bstr of length 2^32 - 1}} with no bytes.
        let mut b = MAGIC.to_vec();
        b.push(PROTOCOL_VERSION);
        b.extend_from_slice(&[0xa1, 0x64]);
        b.extend_from_slice(b"Task");
        b.extend_from_slice(&[0xa2, 0x62]);
        b.extend_from_slice(b"id");
        b.push(0x01);
        b.extend_from_slice(&[0x67]);
        b.extend_from_slice(b"payload");
        b.extend_from_slice(&[0x5a, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(
            decode(&b, DEFAULT_MAX_FRAME),
            Err(DecodeError::Malformed(BodyError::Truncated))
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        #[derive(Serialize)]
        enum Evil {
            Cancel { id: u64, extra: u8 },
        }
        let mut b = MAGIC.to_vec();
        b.push(PROTOCOL_VERSION);
        ciborium::into_writer(&Evil::Cancel { id: 1, extra: 2 }, &mut b).unwrap();
        assert_eq!(
            decode(&b, 100),
            Err(DecodeError::Malformed(BodyError::UnknownField))
        );
    }

    /// A header followed by `body`.
    fn framed(body: &[u8]) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        b.push(PROTOCOL_VERSION);
        b.extend_from_slice(body);
        b
    }

    /// `{"Cancel": {"id": <text>}}`: a text string where the id belongs.
    fn cancel_with_text_id(text: &[u8]) -> Vec<u8> {
        let mut b = vec![0xa1, 0x66];
        b.extend_from_slice(b"Cancel");
        b.extend_from_slice(&[0xa1, 0x62]);
        b.extend_from_slice(b"id");
        b.push(0x60 + text.len() as u8);
        b.extend_from_slice(text);
        framed(&b)
    }

    #[test]
    fn each_body_error_has_its_cause() {
        let cause = |bytes: &[u8]| match decode(bytes, 1000) {
            Err(DecodeError::Malformed(c)) => c,
            other => panic!("expected a malformed body, got {other:?}"),
        };
        // {"Bogus": null}
        let mut kind = vec![0xa1, 0x65];
        kind.extend_from_slice(b"Bogus");
        kind.push(0xf6);
        assert_eq!(cause(&framed(&kind)), BodyError::UnknownFrameKind);
        assert_eq!(
            cause(&cancel_with_text_id(b"seven")),
            BodyError::InvalidType
        );
        // {"Cancel": {}}
        let mut missing = vec![0xa1, 0x66];
        missing.extend_from_slice(b"Cancel");
        missing.push(0xa0);
        assert_eq!(cause(&framed(&missing)), BodyError::MissingField);
        // A result whose status is "Maybe".
        let mut status = encode(&Frame::Result(TaskResult {
            id: TaskId(1),
            status: Status::Ok,
            last: false,
            payload: vec![],
        }));
        let at = status
            .windows(3)
            .position(|w| w == [0x62, b'O', b'k'])
            .unwrap();
        status.splice(at..at + 3, [0x65, b'M', b'a', b'y', b'b', b'e']);
        assert_eq!(cause(&status), BodyError::UnknownVariant);
        // A hello whose protocol (a u8) is 300.
        let mut hello = encode(&Frame::Hello(Hello {
            protocol: 200,
            pid: 1,
        }));
        let at = hello.windows(2).position(|w| w == [0x18, 200]).unwrap();
        hello.splice(at..at + 2, [0x19, 0x01, 0x2c]);
        assert_eq!(cause(&hello), BodyError::InvalidValue);
        // An init whose stream has 2 integers.
        let mut init = encode(&Frame::Init(Init {
            stream: Some([1; 7]),
            serial: vec![],
        }));
        let at = init
            .windows(8)
            .position(|w| w == [0x87, 1, 1, 1, 1, 1, 1, 1])
            .unwrap();
        init.splice(at..at + 8, [0x82, 1, 1]);
        assert_eq!(cause(&init), BodyError::InvalidLength);
        // 0x1c is a reserved CBOR head: not well formed, at the first body byte.
        assert_eq!(
            cause(&framed(&[0x1c])),
            BodyError::Syntax { offset: HEADER_LEN }
        );
        assert_eq!(cause(&framed(&[])), BodyError::Truncated);
        assert_eq!(cause(&framed(&[0x81; 300])), BodyError::InvalidType);
    }

    #[test]
    fn no_error_quotes_the_input() {
        let secret = b"secret-payload";
        let mut inputs = vec![cancel_with_text_id(secret), secret.to_vec()];
        let mut variant = vec![0xa1, 0x60 + secret.len() as u8];
        variant.extend_from_slice(secret);
        variant.push(0xf6);
        inputs.push(framed(&variant));
        let mut field = vec![0xa1, 0x66];
        field.extend_from_slice(b"Cancel");
        field.extend_from_slice(&[0xa1, 0x60 + secret.len() as u8]);
        field.extend_from_slice(secret);
        field.push(0x01);
        inputs.push(framed(&field));
        for bytes in inputs {
            let e = decode(&bytes, 1000).unwrap_err();
            let text = e.to_string();
            assert!(!text.contains("secret"), "{text}");
            assert!(!format!("{e:?}").contains("secret"), "{e:?}");
        }
    }
}
