# Error values and codes (spec section 1).

#' Error values and codes
#'
#' An errorValue is an integer NNG error code with class `c("errorValue", "try-error")`,
#' returned (not raised) by failed operations. `nng_error()` gives the text of a code as
#' `"<code> | <text>"`; `is_error_value()` tests for the class (mirai's `miraiError` and
#' `miraiInterrupt` have it too); `is_nul_byte()` is `TRUE` only for a raw vector holding the
#' single byte `00`.
#'
#' @param x an object.
#' @param xc an error code, coerced as by `as.integer()`.
#' @return `nng_error()`: a character scalar. `is_error_value()`, `is_nul_byte()`: a logical
#'   scalar.
#' @examples
#' nng_error(5L)
#' is_error_value(structure(5L, class = c("errorValue", "try-error")))
#' is_nul_byte(as.raw(0L))
#' @export
nng_error <- function(xc) .Call(nano_nng_error, xc)

#' @rdname nng_error
#' @export
is_error_value <- function(x) inherits(x, "errorValue")

#' @rdname nng_error
#' @export
is_nul_byte <- function(x) is.raw(x) && length(x) == 1L && x == as.raw(0L)
