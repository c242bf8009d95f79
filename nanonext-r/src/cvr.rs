//! The cv routines (spec §3.1, §3.3): `cv()`, `wait()`, `wait_()`, `until()`, `until_()`,
//! `cv_value()`, `cv_reset()`, `cv_signal()` and the forwarder `%~>%`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mirai_rapi::{ForeignCv, Kind, RError, RResult, Scope, Sexp, Tag, R};

use crate::cv::{Cv, Waited};

const BAD_CV: &str = "`cv` is not a valid Condition Variable";
const BAD_CV2: &str = "`cv2` is not a valid Condition Variable";

/// The longest wait between interrupt checks of the `_` variants.
const SLICE: Duration = Duration::from_millis(400);

/// The tag of a forwarder's stop guard (the `thread` attribute of its source cv).
static FORWARDER: Tag = Tag::new(c"nanonextForwarder");

/// The cv behind handle `x`, or the spec's error.
pub(crate) fn cv_arg<'a>(x: Sexp<'a>, s: &Scope) -> RResult<&'a Arc<Cv>> {
    x.cv_ref::<Cv>(s.r()).ok_or_else(|| RError::from(BAD_CV))
}

/// `.Call(nano_cv)`: a new cv, class `conditionVariable`.
pub(crate) fn nano_cv<'a>(s: &'a Scope) -> RResult<Sexp<'a>> {
    let x = s.cv_extptr(Arc::new(Cv::default()));
    x.set_class(s, &[c"conditionVariable"]);
    Ok(x)
}

/// `.Call(nano_cv_value, cv)`: the current value.
pub(crate) fn nano_cv_value<'a>(s: &'a Scope, cv: Sexp<'a>) -> RResult<Sexp<'a>> {
    let cv = cv_arg(cv, s)?;
    let v = cv.lock().value;
    Ok(s.int(v))
}

/// `.Call(nano_cv_signal, cv)`: adds one and wakes every waiter; `0L`.
pub(crate) fn nano_cv_signal<'a>(s: &'a Scope, cv: Sexp<'a>) -> RResult<Sexp<'a>> {
    cv_arg(cv, s)?.signal();
    Ok(s.int(0))
}

/// `.Call(nano_cv_reset, cv)`: value 0; a tripped flag re-arms, an armed one disarms; `0L`.
pub(crate) fn nano_cv_reset<'a>(s: &'a Scope, cv: Sexp<'a>) -> RResult<Sexp<'a>> {
    cv_arg(cv, s)?.reset();
    Ok(s.int(0))
}

/// `msec` as milliseconds (spec §3.1): an integer as is, a double truncated (saturating), any
/// other type 0; `None` for a negative value.
fn msec_of(msec: Sexp<'_>) -> Option<u64> {
    let ms: i64 = match (msec.ints(), msec.reals()) {
        (Some([m, ..]), _) if *m != i32::MIN => i64::from(*m),
        (_, Some([d, ..])) if !d.is_nan() => {
            d.trunc().clamp(i32::MIN as f64, i32::MAX as f64) as i64
        }
        _ => 0,
    };
    u64::try_from(ms).ok()
}

/// Checks for a user interrupt (the `_` variants, and `until()` once after a timeout).
fn check_interrupt(r: R) -> RResult<()> {
    if mirai_rapi::interrupt_pending(r) {
        Err(RError::Interrupt)
    } else {
        Ok(())
    }
}

/// `.Call(nano_cv_until, cv, msec, interruptible)`: `until()` / `until_()`: waits up to `msec`
/// ms for a signal, taking one; whether it got one. A negative `msec` returns `FALSE` at once.
pub(crate) fn nano_cv_until<'a>(
    s: &'a Scope,
    cv: Sexp<'a>,
    msec: Sexp<'a>,
    interruptible: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let r = s.r();
    let cv = cv_arg(cv, s)?;
    let Some(ms) = msec_of(msec) else {
        return Ok(r.lgl(false));
    };
    let deadline = Instant::now() + Duration::from_millis(ms);
    if interruptible.lgls() != Some(&[1]) {
        let got = cv.until(Some(deadline));
        if !got {
            check_interrupt(r)?;
        }
        return Ok(r.lgl(got));
    }
    loop {
        let now = Instant::now();
        let slice_end = deadline.min(now + SLICE);
        if cv.until(Some(slice_end)) {
            return Ok(r.lgl(true));
        }
        check_interrupt(r)?;
        if slice_end >= deadline {
            return Ok(r.lgl(false));
        }
    }
}

/// `.Call(nano_cv_wait, cv, interruptible)`: `wait()` / `wait_()`: waits for a signal and takes
/// it; `FALSE` if the flag is tripped.
pub(crate) fn nano_cv_wait<'a>(
    s: &'a Scope,
    cv: Sexp<'a>,
    interruptible: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let r = s.r();
    let cv = cv_arg(cv, s)?;
    let intr = interruptible.lgls() == Some(&[1]);
    loop {
        let deadline = intr.then(|| Instant::now() + SLICE);
        match cv.wait(deadline) {
            Waited::Taken => return Ok(r.lgl(true)),
            Waited::Tripped => return Ok(r.lgl(false)),
            Waited::TimedOut => check_interrupt(r)?,
        }
    }
}

/// Stops the forwarder of generation `gen` when dropped (its source cv collected).
struct ForwardGuard {
    cv: Arc<Cv>,
    gen: u64,
}

impl Drop for ForwardGuard {
    fn drop(&mut self) {
        let mut st = self.cv.lock();
        if st.forwarder == self.gen {
            st.forwarder += 1;
        }
        drop(st);
        self.cv.notify();
    }
}

/// The forwarder thread (spec §3.3): on each signal of `src`, adds to `dst` by how much
/// `src`'s value grew since it last looked; ends when `src`'s forwarder generation moves on.
/// `seen` is the signal count when the forwarder was attached (signals from then on count).
fn forward(src: Arc<Cv>, dst: ForeignCv, gen: u64, mut seen: u64) {
    let mut last = 0i32;
    let mut st = src.lock();
    loop {
        while st.signals == seen && st.forwarder == gen {
            st = src.wait_state(st);
        }
        if st.forwarder != gen {
            return;
        }
        seen = st.signals;
        let d = st.value.saturating_sub(last);
        last = st.value;
        drop(st);
        for _ in 0..d.max(0) {
            dst.signal();
        }
        st = src.lock();
    }
}

/// `.Call(nano_cv_forward, cv, cv2)`: `cv %~>% cv2`: replaces `cv`'s forwarder with one to
/// `cv2`, resets `cv`'s value to 0; returns `cv2`.
pub(crate) fn nano_cv_forward<'a>(s: &'a Scope, cv: Sexp<'a>, cv2: Sexp<'a>) -> RResult<Sexp<'a>> {
    let r = s.r();
    let src = Arc::clone(cv_arg(cv, s)?);
    if cv2.kind() != Kind::EXTPTRSXP {
        return Err(BAD_CV2.into());
    }
    let dst = cv2.foreign_cv(r).ok_or_else(|| RError::from(BAD_CV2))?;
    let (gen, seen) = {
        let mut st = src.lock();
        st.forwarder += 1;
        st.value = 0;
        (st.forwarder, st.signals)
    };
    src.notify();
    let guard = s.extptr(
        ForwardGuard {
            cv: Arc::clone(&src),
            gen,
        },
        &FORWARDER,
        false,
    );
    cv.set_attr(r.sym(c"thread"), guard);
    std::thread::Builder::new()
        .name("nanonext-forwarder".into())
        .spawn(move || forward(src, dst, gen, seen))
        .map_err(|e| RError::Msg(format!("2 | Out of memory ({e})")))?;
    Ok(cv2)
}

/// `.Call(nano_cv_pipe_event, cv, flag)` (internal, for tests until sockets call it): sets the
/// flag as `pipe_notify(flag = )` would (unless `flag` is `NULL`), then delivers one pipe
/// event ([`Cv::pipe_event`]). `0L`.
pub(crate) fn nano_cv_pipe_event<'a>(
    s: &'a Scope,
    cv: Sexp<'a>,
    flag: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let cv = cv_arg(cv, s)?;
    if !flag.is_null() {
        let f = crate::codes::as_int(flag);
        cv.set_flag(if f == i32::MIN { 1 } else { f });
    }
    cv.pipe_event();
    Ok(s.int(0))
}
