//! Small utilities (spec §4): the clock, sleeping, random bytes, the host's addresses,
//! versions, writing to standard output, and the serialization marker flag.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mirai_rapi::{Kind, RError, RResult, Scope, Sexp};

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

const BAD_N: &str = "`n` must be an integer value between 1 and 1024";

/// `.Call(nano_random, n, convert)`: `n` random bytes from the operating system, as one
/// lowercase hex string (`convert` truthy) or a raw vector.
pub(crate) fn nano_random<'a>(s: &'a Scope, n: Sexp<'a>, convert: Sexp<'a>) -> RResult<Sexp<'a>> {
    let n = match (n.ints(), n.reals()) {
        (Some([v, ..]), _) if (1..=1024).contains(v) => *v as usize,
        (_, Some([d, ..])) if d.trunc() >= 1.0 && d.trunc() <= 1024.0 => d.trunc() as usize,
        _ => return Err(BAD_N.into()),
    };
    let mut buf = vec![0u8; n];
    getrandom::getrandom(&mut buf)
        .map_err(|e| RError::Msg(format!("2 | Out of memory (random bytes unavailable: {e})")))?;
    if !truthy(convert) {
        return Ok(s.raw(&buf));
    }
    let hex: String = buf.iter().map(|b| format!("{b:02x}")).collect();
    Ok(s.string(&hex))
}

/// Truthy as upstream's `convert`: anything but a false or zero first element (`NA` counts as
/// true).
fn truthy(x: Sexp<'_>) -> bool {
    match x.kind() {
        Kind::LGLSXP => x.lgls().and_then(|v| v.first()).is_none_or(|v| *v != 0),
        Kind::INTSXP => x.ints().and_then(|v| v.first()).is_none_or(|v| *v != 0),
        Kind::REALSXP => x.reals().and_then(|v| v.first()).is_none_or(|v| *v != 0.0),
        Kind::STRSXP => !x
            .str_elt(0)
            .and_then(|c| c.char_text())
            .is_some_and(|t| matches!(t.as_str(), "FALSE" | "false" | "F" | "False")),
        _ => true,
    }
}

/// `.Call(nano_ip_addr)`: the host's non-loopback IPv4 addresses named by interface; `""`
/// named `""` when there is none (unnamed when the system call fails).
pub(crate) fn nano_ip_addr<'a>(s: &'a Scope) -> RResult<Sexp<'a>> {
    let r = s.r();
    let Some(all) = mirai_rapi::os::ipv4_interfaces() else {
        return Ok(s.string(""));
    };
    let found: Vec<(String, String)> = all
        .into_iter()
        .filter(|(_, ip)| !ip.is_loopback())
        .map(|(name, ip)| (name, ip.to_string()))
        .collect();
    let (names, ips): (Vec<Option<&str>>, Vec<Option<&str>>) = if found.is_empty() {
        (vec![Some("")], vec![Some("")])
    } else {
        found
            .iter()
            .map(|(n, ip)| (Some(n.as_str()), Some(ip.as_str())))
            .unzip()
    };
    let v = s.strings_from(&ips);
    v.set_attr(r.sym(c"names"), s.strings_from(&names));
    Ok(v)
}

/// `.Call(nano_version)`: the versions of the messaging protocol (NNG's, which the
/// implementation speaks) and of the TLS library.
pub(crate) fn nano_version<'a>(s: &'a Scope) -> RResult<Sexp<'a>> {
    Ok(s.strings_from(&[Some("1.12.0"), Some("rustls 0.23")]))
}

/// Whether serial-mode sends carry the marker header (`.mark()`, spec §5.4).
static MARK: AtomicBool = AtomicBool::new(false);

/// Whether `.mark(TRUE)` is in effect: serial-mode sends then start with the 8-byte header
/// whose byte 3 is 1 (spec §5.4).
#[allow(dead_code)] // Used by the socket code (crate::sock).
pub(crate) fn marked() -> bool {
    MARK.load(Ordering::Relaxed)
}

/// `.Call(nano_mark, bool)`: sets the marker from `bool` (truthy: `TRUE`, non-zero); returns
/// `bool`.
pub(crate) fn nano_mark<'a>(_s: &'a Scope, bool_: Sexp<'a>) -> RResult<Sexp<'a>> {
    let on = mirai_rapi::args::lgl(bool_, "bool")?.unwrap_or(false);
    MARK.store(on, Ordering::Relaxed);
    Ok(bool_)
}

/// `.Call(nano_advance)`: advances R's random number stream by one exponential draw; `NULL`.
pub(crate) fn nano_advance<'a>(s: &'a Scope) -> RResult<Sexp<'a>> {
    s.r().exp_rand()?;
    Ok(Sexp::null())
}

/// `.Call(nano_write_stdout, x)`: writes `x[1]` and a newline to file descriptor 1 in one
/// write, bypassing R's connections (and `sink()`).
pub(crate) fn nano_write_stdout<'a>(_s: &'a Scope, x: Sexp<'a>) -> RResult<Sexp<'a>> {
    let c = x
        .str_elt(0)
        .ok_or_else(|| RError::from("`x` must be a character vector"))?;
    let mut line = if c.is_na_string() {
        b"NA".to_vec()
    } else {
        c.char_bytes().unwrap_or_default().to_vec()
    };
    line.push(b'\n');
    let mut out = std::io::stdout().lock();
    // Rust's stdout is line-buffered: a buffer ending in its only newline is written at once.
    out.write_all(&line)
        .and_then(|()| out.flush())
        .map_err(|e| RError::Msg(format!("cannot write to stdout: {e}")))?;
    Ok(Sexp::null())
}
