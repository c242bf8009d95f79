use super::*;

fn parse(args: &[&str]) -> Result<DaemonArgs, ArgsError> {
    DaemonArgs::parse(args.iter().copied())
}

#[test]
fn every_option_renders_in_order_and_parses_back() {
    let args = DaemonArgs::new("tcp://127.0.0.1:5555")
        .with_backend(Backend::Nng)
        .with_asyncdial(true)
        .with_autoexit(AutoExit::Finish)
        .with_idletime(Duration::from_millis(1500))
        .with_walltime(Duration::from_secs(2))
        .with_maxtasks(10);
    let line = args.to_args();
    assert_eq!(
        line,
        [
            "tcp://127.0.0.1:5555",
            "--backend",
            "nng",
            "--asyncdial",
            "--autoexit",
            "na",
            "--idletime",
            "1500",
            "--walltime",
            "2000",
            "--maxtasks",
            "10"
        ]
    );
    assert_eq!(DaemonArgs::parse(&line), Ok(args));
    assert_eq!(DaemonArgs::new("abstract://x").to_args(), ["abstract://x"]);
    assert_eq!(
        DaemonArgs::default().with_url("abstract://x"),
        DaemonArgs::new("abstract://x")
    );
}

#[test]
fn arguments_parse() {
    let a = parse(&[
        "tcp://[::1]:5555",
        "--backend",
        "nng",
        "--asyncdial",
        "--autoexit",
        "false",
        "--idletime",
        "10",
        "--walltime",
        "20",
        "--maxtasks",
        "3",
    ])
    .unwrap();
    assert_eq!(a.url, "tcp://[::1]:5555");
    assert_eq!(a.backend, Some(Backend::Nng));
    assert!(a.asyncdial);
    assert_eq!(a.autoexit, Some(AutoExit::Stay));
    assert_eq!(
        (a.idletime, a.walltime, a.maxtasks),
        (
            Some(Duration::from_millis(10)),
            Some(Duration::from_millis(20)),
            Some(3)
        )
    );
    let d = parse(&["abstract://x"]).unwrap();
    assert_eq!(d, DaemonArgs::new("abstract://x"));
    assert_eq!(d.autoexit.unwrap_or_default(), AutoExit::Exit);
    // Values after `=`, options before the URL, and `--`.
    let e = parse(&["--maxtasks=4", "--backend=native", "--", "-odd"]).unwrap();
    assert_eq!(
        (e.url.as_str(), e.maxtasks, e.backend),
        ("-odd", Some(4), Some(Backend::Native))
    );
}

#[test]
fn autoexit_values_follow_r() {
    for (s, a) in [
        ("TRUE", AutoExit::Exit),
        ("t", AutoExit::Exit),
        ("na", AutoExit::Finish),
        ("NA", AutoExit::Finish),
        ("false", AutoExit::Stay),
        ("F", AutoExit::Stay),
    ] {
        assert_eq!(s.parse(), Ok(a), "{s}");
        assert_eq!(a.as_str().parse(), Ok(a));
    }
    assert!("maybe".parse::<AutoExit>().is_err());
    assert_eq!(
        parse(&["x", "--autoexit", "maybe"]),
        Err(ArgsError::InvalidValue {
            option: "autoexit",
            value: "maybe".into(),
            expected: "true, na or false"
        })
    );
}

#[test]
fn bad_command_lines_say_what_is_wrong() {
    assert_eq!(parse(&[]), Err(ArgsError::MissingUrl));
    assert_eq!(parse(&["--asyncdial"]), Err(ArgsError::MissingUrl));
    assert_eq!(
        parse(&["a", "b"]),
        Err(ArgsError::UnexpectedArgument("b".into()))
    );
    assert_eq!(
        parse(&["a", "--fast"]),
        Err(ArgsError::UnknownOption("--fast".into()))
    );
    assert_eq!(
        parse(&["a", "-x"]),
        Err(ArgsError::UnknownOption("-x".into()))
    );
    assert_eq!(
        parse(&["a", "--maxtasks"]),
        Err(ArgsError::MissingValue { option: "maxtasks" })
    );
    assert!(matches!(
        parse(&["a", "--maxtasks", "many"]),
        Err(ArgsError::InvalidValue {
            option: "maxtasks",
            ..
        })
    ));
    assert!(matches!(
        parse(&["a", "--idletime", "-5"]),
        Err(ArgsError::InvalidValue {
            option: "idletime",
            ..
        })
    ));
    assert!(matches!(
        parse(&["a", "--backend", "Native"]),
        Err(ArgsError::InvalidValue {
            option: "backend",
            ..
        })
    ));
    assert!(matches!(
        parse(&["a", "--asyncdial=yes"]),
        Err(ArgsError::InvalidValue {
            option: "asyncdial",
            ..
        })
    ));
    assert_eq!(
        parse(&["a", "--walltime", "1", "--walltime", "2"]),
        Err(ArgsError::Repeated { option: "walltime" })
    );
    assert_eq!(parse(&["a", "--help"]), Err(ArgsError::Help));
    assert_eq!(parse(&["-h"]), Err(ArgsError::Help));
    assert_eq!(parse(&["-V"]), Err(ArgsError::Version));
    use std::os::unix::ffi::OsStringExt;
    assert_eq!(
        DaemonArgs::parse([OsString::from("a"), OsString::from_vec(vec![0xff])]),
        Err(ArgsError::NotUnicode(1))
    );
    assert_eq!(
        ArgsError::MissingValue { option: "maxtasks" }.to_string(),
        "option '--maxtasks' needs a value"
    );
}

#[test]
fn exit_codes_and_failure_statuses_are_one_table() {
    for (code, e) in [
        (0, ExitCode::Disconnected),
        (1, ExitCode::Idletime),
        (2, ExitCode::Walltime),
        (3, ExitCode::Maxtasks),
    ] {
        assert_eq!(e.code(), code);
        assert_eq!(e as i32, code);
        assert_eq!(ExitCode::from_code(code), Some(e));
        assert_eq!(FailureStatus::from_code(code), None);
    }
    for (code, f) in [
        (64, FailureStatus::Dial),
        (65, FailureStatus::Usage),
        (66, FailureStatus::Protocol),
        (67, FailureStatus::Init),
        (68, FailureStatus::Transport),
    ] {
        assert_eq!(f.code(), code);
        assert_eq!(FailureStatus::from_code(code), Some(f));
        assert_eq!(ExitCode::from_code(code), None);
    }
    for other in [-1, 4, 63, 69, 137] {
        assert_eq!(ExitCode::from_code(other), None);
        assert_eq!(FailureStatus::from_code(other), None);
    }
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn args() -> impl Strategy<Value = DaemonArgs> {
        (
            // Any URL, including ones that look like options.
            "\\PC{1,40}",
            prop::option::of(prop_oneof![Just(Backend::Native), Just(Backend::Nng)]),
            any::<bool>(),
            prop::option::of(prop_oneof![
                Just(AutoExit::Exit),
                Just(AutoExit::Finish),
                Just(AutoExit::Stay)
            ]),
            prop::option::of(any::<u64>()),
            prop::option::of(any::<u64>()),
            prop::option::of(any::<u64>()),
        )
            .prop_map(
                |(url, backend, asyncdial, autoexit, idle, wall, maxtasks)| DaemonArgs {
                    url,
                    backend,
                    asyncdial,
                    autoexit,
                    idletime: idle.map(Duration::from_millis),
                    walltime: wall.map(Duration::from_millis),
                    maxtasks,
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn command_lines_round_trip(a in args()) {
            prop_assert_eq!(DaemonArgs::parse(a.to_args()), Ok(a));
        }

        #[test]
        fn any_arguments_parse_or_fail_without_panicking(v in prop::collection::vec("-{0,2}[a-z=0-9]{0,12}", 0..8)) {
            if let Ok(a) = DaemonArgs::parse(&v) {
                // Whatever parses renders to a line that parses to the same arguments.
                prop_assert_eq!(DaemonArgs::parse(a.to_args()), Ok(a));
            }
        }
    }
}
