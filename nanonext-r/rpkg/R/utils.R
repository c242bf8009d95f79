# Utilities (spec section 4).

#' Clock and sleep
#'
#' `mclock()` reads a monotonic clock in milliseconds (the origin is arbitrary, fixed for the
#' session). `msleep()` sleeps `time` milliseconds without checking for interrupts; a
#' negative, missing or non-numeric `time` returns at once.
#'
#' @param time milliseconds: an integer, or a double truncated.
#' @return `mclock()`: a double. `msleep()`: invisible `NULL`.
#' @examples
#' t <- mclock()
#' msleep(10)
#' mclock() - t
#' @export
mclock <- function() .Call(nano_mclock)

#' @rdname mclock
#' @export
msleep <- function(time) invisible(.Call(nano_msleep, time))
