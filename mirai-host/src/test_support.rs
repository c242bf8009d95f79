//! Helpers for tests of launch commands, shared with the R bridge's tests (feature
//! `test-support`; not part of the API): run a line with `/bin/sh`, and read back the
//! arguments that a fake `Rscript` ([`PRINT_ARGS`]) was given.

use std::process::{Command, Stdio};

/// A fake `Rscript` that prints each of its arguments followed by a NUL byte.
pub const PRINT_ARGS: &str = "printf '%s\\0'";

/// Runs `line` with `/bin/sh -c` and returns its standard output; panics if it fails.
pub fn sh(line: &str) -> Vec<u8> {
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(line)
        .stdin(Stdio::null())
        .output()
        .expect("run /bin/sh");
    assert!(
        out.status.success(),
        "sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The NUL-terminated strings [`PRINT_ARGS`] printed; panics if `out` does not end with NUL.
pub fn nul_split(out: &[u8]) -> Vec<String> {
    let mut v: Vec<String> = out
        .split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    assert_eq!(v.pop().as_deref(), Some(""), "output must end with NUL");
    v
}
