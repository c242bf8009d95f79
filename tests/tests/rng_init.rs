//! The RNG streams daemons receive in their init bundle, with daemons run in-process through
//! the daemon library and an evaluator that reports what it was given.

use std::collections::HashSet;
use std::time::Duration;

use mirai::daemon::{
    run, DaemonConfig, EvalControl, Evaluation, Evaluator, ExitCode, Init, Status, Task,
};
use mirai::host::{rng, RngStream};
use mirai::{Host, HostConfig, Outcome};

struct Reporter {
    stream: Option<RngStream>,
}

impl Evaluator for Reporter {
    fn init(&mut self, init: &Init) -> Result<(), String> {
        self.stream = init.stream;
        Ok(())
    }

    fn evaluate(&mut self, _task: Task, _ctl: &mut EvalControl<'_>) -> Evaluation {
        Evaluation {
            status: Status::Ok,
            payload: format!("{:?}", self.stream).into_bytes(),
        }
    }
}

#[test]
fn kth_daemon_gets_next_rng_stream_applied_k_times() {
    let base = rng::seed_stream(123);
    let cfg = HostConfig::new("tcp://127.0.0.1:0").with_stream(Some(base));
    let host = Host::start(cfg).unwrap();
    let daemons: Vec<_> = (0..3)
        .map(|_| {
            let mut c = DaemonConfig::new(host.url());
            // Finish (rather than exit the process) when the host goes: these run in-process.
            c.autoexit = mirai::daemon::AutoExit::Finish;
            std::thread::spawn(move || run(&c, &mut Reporter { stream: None }))
        })
        .collect();
    assert!(host.wait_connections(3, Duration::from_secs(60)));
    let round = host.everywhere(b"report".to_vec(), 3).unwrap();
    let got: HashSet<String> = round
        .iter()
        .map(|h| match h.wait(Some(Duration::from_secs(60))) {
            Some(Outcome::Value { payload, .. }) => String::from_utf8(payload).unwrap(),
            other => panic!("{other:?}"),
        })
        .collect();
    let want: HashSet<String> = (1..=3)
        .map(|k| format!("{:?}", Some(rng::advance(base, k))))
        .collect();
    assert_eq!(got, want);
    assert_eq!(host.status().counters.cumulative, 3);
    host.reset();
    for d in daemons {
        let r = d.join().expect("daemon thread");
        assert!(matches!(r, Ok(ExitCode::Disconnected)), "{r:?}");
    }
}

#[test]
fn no_stream_configured_means_none_in_init() {
    let host = Host::start(HostConfig::new("tcp://127.0.0.1:0")).unwrap();
    let mut c = DaemonConfig::new(host.url());
    c.autoexit = mirai::daemon::AutoExit::Finish;
    let d = std::thread::spawn(move || {
        run(
            &c,
            &mut Reporter {
                stream: Some([0; 7]),
            },
        )
    });
    let h = host.submit(b"report".to_vec(), Default::default()).unwrap();
    assert_eq!(
        h.wait(Some(Duration::from_secs(60))),
        Some(Outcome::Value {
            status: Status::Ok,
            payload: b"None".to_vec()
        })
    );
    drop(host);
    assert!(matches!(d.join().unwrap(), Ok(ExitCode::Disconnected)));
}
