//! Small utilities (spec §4): the clock, sleeping, random bytes, the host's addresses,
//! versions, writing to standard output, and the serialization marker flag.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mirai_rapi::{RResult, Scope, Sexp};

/// The clock's origin: the first use in the session.
static ORIGIN: OnceLock<Instant> = OnceLock::new();

/// `.Call(nano_mclock)`: milliseconds of a monotonic clock (double).
pub(crate) fn nano_mclock<'a>(s: &'a Scope) -> RResult<Sexp<'a>> {
    let o = ORIGIN.get_or_init(Instant::now);
    Ok(s.real(o.elapsed().as_secs_f64() * 1000.0))
}

/// `.Call(nano_msleep, time)`: sleeps `time` ms (an integer, or a double truncated); any
/// other input, `NA` or a negative value returns at once. Not interruptible.
pub(crate) fn nano_msleep<'a>(_s: &'a Scope, time: Sexp<'a>) -> RResult<Sexp<'a>> {
    let ms = match (time.ints(), time.reals()) {
        (Some([m, ..]), _) if *m > 0 => *m as f64,
        (_, Some([d, ..])) if *d >= 1.0 => d.trunc().min(i32::MAX as f64),
        _ => 0.0,
    };
    if ms > 0.0 {
        std::thread::sleep(Duration::from_millis(ms as u64));
    }
    Ok(Sexp::null())
}
