//! Property tests of the codec: every frame round-trips, and no input makes decoding panic.
use mirai_proto::*;
use proptest::prelude::*;

fn status() -> impl Strategy<Value = Status> {
    prop_oneof![
        Just(Status::Ok),
        Just(Status::Error),
        Just(Status::Interrupted)
    ]
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..300)
}

fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (any::<u8>(), any::<u32>())
            .prop_map(|(protocol, pid)| Frame::Hello(Hello { protocol, pid })),
        (prop::option::of(any::<[i32; 7]>()), bytes())
            .prop_map(|(stream, serial)| Frame::Init(Init { stream, serial })),
        (
            any::<u64>(),
            any::<u8>(),
            bytes(),
            prop::option::of(".{0,60}")
        )
            .prop_map(|(id, flags, payload, trace)| Frame::Task(Task {
                id: TaskId(id),
                flags,
                payload,
                trace
            })),
        (
            any::<u64>(),
            any::<u8>(),
            any::<(u32, u32)>(),
            bytes(),
            prop::option::of(".{0,60}")
        )
            .prop_map(
                |(id, flags, (offset, count), payload, trace)| Frame::Batch(Batch {
                    id: TaskId(id),
                    flags,
                    offset,
                    count,
                    payload,
                    trace
                })
            ),
        (any::<u64>(), status(), any::<bool>(), bytes()).prop_map(|(id, status, last, payload)| {
            Frame::Result(TaskResult {
                id: TaskId(id),
                status,
                last,
                payload,
            })
        }),
        any::<u64>().prop_map(|id| Frame::Cancel { id: TaskId(id) }),
        any::<u64>().prop_map(|id| Frame::Withdraw { id: TaskId(id) }),
        any::<u64>().prop_map(|id| Frame::Withdrawn { id: TaskId(id) }),
        Just(Frame::Ack),
        Just(Frame::Exit),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn frames_round_trip(f in frame()) {
        let bytes = encode(&f);
        prop_assert_eq!(decode(&bytes, DEFAULT_MAX_FRAME), Ok(f));
    }

    #[test]
    fn task_frame_parts_are_the_same_bytes(id in any::<u64>(), flags in any::<u8>(), payload in bytes(), trace in prop::option::of(".{0,80}")) {
        let id = TaskId(id);
        let parts = task_frame_parts(id, flags, payload.len(), trace.as_deref());
        let joined = parts.slices(&payload).concat();
        prop_assert_eq!(parts.len(), joined.len());
        let bytes = encode(&Frame::Task(Task { id, flags, payload, trace: trace.clone() }));
        prop_assert_eq!(joined, bytes);
    }

    #[test]
    fn batch_frame_parts_are_the_same_bytes(id in any::<u64>(), flags in any::<u8>(), offset in any::<u32>(), count in any::<u32>(), payload in bytes(), trace in prop::option::of(".{0,80}")) {
        let id = TaskId(id);
        let parts = batch_frame_parts(id, flags, offset, count, payload.len(), trace.as_deref());
        let joined = parts.slices(&payload).concat();
        prop_assert_eq!(parts.len(), joined.len());
        let bytes = encode(&Frame::Batch(Batch { id, flags, offset, count, payload, trace: trace.clone() }));
        prop_assert_eq!(joined, bytes);
    }

    #[test]
    fn every_strict_prefix_is_an_error(f in frame(), cut in any::<prop::sample::Index>()) {
        let bytes = encode(&f);
        let cut = cut.index(bytes.len());
        prop_assert!(decode(&bytes[..cut], DEFAULT_MAX_FRAME).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&data, 1 << 20);
    }

    #[test]
    fn arbitrary_bodies_behind_a_valid_header_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut data = MAGIC.to_vec();
        data.push(PROTOCOL_VERSION);
        data.extend_from_slice(&body);
        if let Ok(f) = decode(&data, 1 << 20) {
            // Whatever decodes is a canonical frame: it re-encodes and decodes to itself.
            prop_assert_eq!(decode(&encode(&f), DEFAULT_MAX_FRAME), Ok(f));
        }
    }

    #[test]
    fn flipped_bytes_never_panic(f in frame(), at in any::<prop::sample::Index>(), v in any::<u8>()) {
        let mut bytes = encode(&f);
        let i = at.index(bytes.len());
        bytes[i] = v;
        let _ = decode(&bytes, DEFAULT_MAX_FRAME);
    }
}

#[test]
fn a_one_mebibyte_payload_round_trips() {
    let f = Frame::Task(Task {
        id: TaskId(1),
        flags: 0,
        payload: vec![0xab; 1 << 20],
        trace: None,
    });
    let bytes = encode(&f);
    assert!(
        bytes.len() < (1 << 20) + 64,
        "payload is stored as a byte string, not an array"
    );
    assert_eq!(decode(&bytes, DEFAULT_MAX_FRAME), Ok(f));
}
