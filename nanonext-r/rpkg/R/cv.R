# Condition variables (spec section 3): a counter that signals raise and waits lower, with a
# flag that pipe events can trip.

#' Condition variables
#'
#' A condition variable is a counter with a waiting room: `cv_signal()` adds one and wakes
#' every waiter (from R or from background threads: Aio completions, pipe events,
#' forwarders); `wait()` and `until()` wait for the value to be positive and take one.
#'
#' `wait()` blocks until a signal arrives and is not interruptible; `wait_()` checks for
#' user interrupts at least every 400 ms. `until()` waits at most `msec` milliseconds (and
#' checks for an interrupt once after a timeout); `until_()` waits in slices of at most
#' 400 ms with interrupt checks between. `cv_reset()` sets the value to zero and cycles the
#' flag set by [pipe_notify()]: a tripped flag is re-armed, an armed one disarmed.
#'
#' @param cv a `conditionVariable`, as made by `cv()`.
#' @param msec the longest wait in milliseconds (an integer, or a double truncated); any
#'   other type waits not at all (`TRUE` only if a signal is already pending), a negative
#'   value returns `FALSE` at once.
#'
#' @return `cv()`: a `conditionVariable`. `cv_value()`: the integer value. `cv_signal()` and
#'   `cv_reset()`: invisible `0L`. `wait()`, `wait_()`: invisible `TRUE`, or `FALSE` when
#'   the flag is tripped. `until()`, `until_()`: invisible `TRUE` if a signal was taken,
#'   `FALSE` if the time ran out.
#'
#' @examples
#' x <- cv()
#' cv_signal(x)
#' cv_value(x)
#' until(x, 10)
#' cv_value(x)
#' @export
cv <- function() .Call(nano_cv)

#' @rdname cv
#' @export
wait <- function(cv) invisible(.Call(nano_cv_wait, cv, FALSE))

#' @rdname cv
#' @export
wait_ <- function(cv) invisible(.Call(nano_cv_wait, cv, TRUE))

#' @rdname cv
#' @export
until <- function(cv, msec) invisible(.Call(nano_cv_until, cv, msec, FALSE))

#' @rdname cv
#' @export
until_ <- function(cv, msec) invisible(.Call(nano_cv_until, cv, msec, TRUE))

#' @rdname cv
#' @export
cv_value <- function(cv) .Call(nano_cv_value, cv)

#' @rdname cv
#' @export
cv_reset <- function(cv) invisible(.Call(nano_cv_reset, cv))

#' @rdname cv
#' @export
cv_signal <- function(cv) invisible(.Call(nano_cv_signal, cv))

#' Signal forwarder
#'
#' `cv %~>% cv2` forwards every signal of `cv` to `cv2` from a background thread, replacing
#' any forwarder `cv` already had, and resets `cv`'s value to 0. On each signal of `cv` the
#' thread adds to `cv2` by how much `cv`'s value grew since it last looked (waits on `cv`
#' itself are not forwarded); `cv`'s own value is not consumed. The thread ends when `cv` is
#' garbage collected or re-targeted. Chains forward left to right: `x %~>% y %~>% z`.
#'
#' @param cv a `conditionVariable`: the source.
#' @param cv2 a `conditionVariable`: the target.
#' @return `cv2`, invisibly.
#' @examples
#' a <- cv()
#' b <- cv()
#' a %~>% b
#' cv_signal(a)
#' until(b, 1000)
#' @export
`%~>%` <- function(cv, cv2) invisible(.Call(nano_cv_forward, cv, cv2))

#' @export
print.conditionVariable <- function(x, ...) {
  cat("< conditionVariable >\n")
  invisible(x)
}

# A pipe event on `cv` (internal, for tests until sockets deliver them): `flag` as
# pipe_notify(flag = ) sets it (NULL: unchanged).
.pipe_event <- function(cv, flag = NULL) invisible(.Call(nano_cv_pipe_event, cv, flag))
