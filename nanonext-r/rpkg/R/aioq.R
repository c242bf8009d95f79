# Queries on Aio objects of any package (spec sections 2.2 and 2.3).

#' Query whether an Aio is unresolved
#'
#' `unresolved()` is `TRUE` while the value of an Aio (or of any Aio in a list) is the
#' unresolved sentinel; it never waits, but observes a completed operation (reading its
#' value). For a logical input it is `TRUE` only for the sentinel object itself.
#' `.unresolved()` only asks the native handle whether the operation is in flight and never
#' observes: an integer count for a list, `FALSE` for anything that is not an Aio.
#'
#' @param x an Aio (`recvAio`, `sendAio`, a mirai), a list of them, or a value.
#' @return `unresolved()`: a logical scalar. `.unresolved()`: a logical scalar, or for a
#'   list the integer number of Aios in flight.
#' @examples
#' unresolved(NA)
#' .unresolved(list())
#' @export
unresolved <- function(x) .Call(nano_unresolved, x)

#' @rdname unresolved
#' @export
.unresolved <- function(x) .Call(nano_unresolved2, x)

#' Wait for and collect Aios
#'
#' `call_aio()` waits for an Aio, or every Aio in a (nested) list, to complete and observes
#' its value; `collect_aio()` waits and returns the value (for a list, the list of values
#' with the names kept). The `_` variants check for user interrupts at least every 400 ms;
#' the others cannot be interrupted. `stop_aio()` cancels pending Aios (their value becomes
#' errorValue 20), waits for them to finish, and drops a pending R interrupt request.
#'
#' @param x an Aio or a list of Aios (other values are returned as they are by
#'   `call_aio()` and ignored by `stop_aio()`).
#' @return `call_aio()`, `call_aio_()`: `x`, invisibly. `collect_aio()`, `collect_aio_()`:
#'   the value, or a list of values; an error `object is not an Aio or list of Aios` for
#'   anything else. `stop_aio()`: invisible `NULL`.
#' @examples
#' call_aio("x")
#' stop_aio("x")
#' @export
call_aio <- function(x) invisible(.Call(nano_call_aio, x, FALSE))

#' @rdname call_aio
#' @export
call_aio_ <- function(x) invisible(.Call(nano_call_aio, x, TRUE))

#' @rdname call_aio
#' @export
collect_aio <- function(x) .Call(nano_collect_aio, x, FALSE)

#' @rdname call_aio
#' @export
collect_aio_ <- function(x) .Call(nano_collect_aio, x, TRUE)

#' @rdname call_aio
#' @export
stop_aio <- function(x) invisible(.Call(nano_stop_aio, x))

#' Race Aios
#'
#' The index of the first resolved Aio in list `x`, waiting on `cv` (the condition variable
#' the Aios were made with) while none is. It only observes: it never consumes or resets
#' `cv` and does not read the Aios' values.
#'
#' @param x a list of Aios.
#' @param cv a `conditionVariable` signalled when an Aio of `x` completes, or `NULL`.
#' @return An integer index; `0L` if `x` is not a non-empty list holding an Aio, if none is
#'   resolved and `cv` is not a condition variable, or if `cv`'s flag is tripped.
#' @examples
#' race_aio(list(), NULL)
#' @export
race_aio <- function(x, cv) .Call(nano_race_aio, x, cv)

#' Aio helpers
#'
#' `is_aio()` tests for a `recvAio` or `sendAio` (a mirai is a `recvAio`). `pipe_id()` is
#' the `aio` binding of an Aio: once its resolution was observed, the integer id of the pipe
#' a message came from (`0L` after an error).
#'
#' @param x an object.
#' @return `is_aio()`: a logical scalar. `pipe_id()`: an integer, or the native handle before
#'   resolution was observed.
#' @examples
#' is_aio(1)
#' @export
is_aio <- function(x) inherits(x, c("recvAio", "sendAio"))

#' @rdname is_aio
#' @export
pipe_id <- function(x) .subset2(x, "aio")
