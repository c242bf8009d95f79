# Condition variables (spec section 3): a counter that signals raise and waits lower.

#' Condition variables
#'
#' A condition variable is a counter with a waiting room: `cv_signal()` adds one and wakes every
#' waiter; `until()` waits for the value to be positive and takes one.
#'
#' @param cv a `conditionVariable`, as made by `cv()`.
#' @param msec the longest wait in milliseconds (an integer, or a double truncated); any other
#'   type, or a negative value, waits not at all.
#'
#' @return `cv()`: a `conditionVariable`. `cv_value()`: the integer value. `cv_signal()` and
#'   `cv_reset()`: invisible `0L`. `until()`: invisible `TRUE` if a signal was taken, `FALSE`
#'   if the time ran out.
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
cv_value <- function(cv) .Call(nano_cv_value, cv)

#' @rdname cv
#' @export
cv_signal <- function(cv) invisible(.Call(nano_cv_signal, cv))

#' @rdname cv
#' @export
cv_reset <- function(cv) invisible(.Call(nano_cv_reset, cv))

#' @rdname cv
#' @export
until <- function(cv, msec) invisible(.Call(nano_cv_until, cv, if (is.numeric(msec)) as.integer(msec[1L]) else 0L))

#' @export
print.conditionVariable <- function(x, ...) {
  cat("< conditionVariable >\n")
  invisible(x)
}
