//! Writes one encoded frame of each kind into a directory: the seed corpus of the fuzzer.
//! `cargo run -p mirai-proto --example write_corpus -- mirai-proto/fuzz/corpus/decode`
use mirai_proto::*;

fn main() -> std::io::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "corpus".into());
    std::fs::create_dir_all(&dir)?;
    let frames = [
        Frame::Hello(Hello {
            protocol: PROTOCOL_VERSION,
            pid: 1234,
        }),
        Frame::Init(Init {
            stream: Some([
                10407,
                -2133391687,
                507561766,
                1260545903,
                1362917092,
                -1772566379,
                -1344458670,
            ]),
            serial: b"cfg".to_vec(),
        }),
        Frame::Task(Task {
            id: TaskId(1),
            flags: flags::EVERYWHERE,
            payload: vec![0x58, 0x0a, 0, 0, 0, 3],
            trace: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
        }),
        Frame::Result(TaskResult {
            id: TaskId(1),
            status: Status::Interrupted,
            last: true,
            payload: b"value".to_vec(),
        }),
        Frame::Cancel { id: TaskId(99) },
        Frame::Withdraw { id: TaskId(98) },
        Frame::Withdrawn { id: TaskId(97) },
        Frame::Ack,
        Frame::Exit,
    ];
    for (i, f) in frames.iter().enumerate() {
        std::fs::write(format!("{dir}/{i}-{}", f.kind()), encode(f))?;
    }
    Ok(())
}
