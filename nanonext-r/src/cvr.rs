//! The cv routines: `cv()`, `cv_value()`, `cv_signal()` (spec §3.1).

use std::sync::Arc;

use mirai_rapi::{RError, RResult, Scope, Sexp};

use crate::cv::Cv;

const BAD_CV: &str = "`cv` is not a valid Condition Variable";

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

/// `.Call(nano_cv_until, cv, msec)`: waits up to `msec` ms (an integer; `NA` or negative: at
/// once) for a signal, taking one; whether it got one.
pub(crate) fn nano_cv_until<'a>(s: &'a Scope, cv: Sexp<'a>, msec: Sexp<'a>) -> RResult<Sexp<'a>> {
    let cv = cv_arg(cv, s)?;
    let ms = match msec.ints() {
        Some([m]) if *m != i32::MIN => (*m).max(0),
        _ => 0,
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(ms as u64);
    Ok(s.r().lgl(cv.until(Some(deadline))))
}

/// `.Call(nano_cv_reset, cv)`: value 0; a tripped flag re-arms, an armed one disarms; `0L`.
pub(crate) fn nano_cv_reset<'a>(s: &'a Scope, cv: Sexp<'a>) -> RResult<Sexp<'a>> {
    use crate::cv::Flag;
    let cv = cv_arg(cv, s)?;
    let mut st = cv.lock();
    st.value = 0;
    st.flag = match st.flag {
        Flag::Tripped => Flag::Armed { signal: 0 },
        Flag::Armed { .. } | Flag::Disarmed => Flag::Disarmed,
    };
    Ok(s.int(0))
}
