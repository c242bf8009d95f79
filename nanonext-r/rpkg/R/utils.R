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

#' Random bytes
#'
#' `n` cryptographically secure random bytes from the operating system (independent of R's
#' random number generator).
#'
#' @param n the number of bytes, 1 to 1024 (the first element; a double is truncated).
#' @param convert `TRUE` for one lowercase hex string of `2 * n` characters, `FALSE` for a raw
#'   vector.
#' @return A character scalar or a raw vector; an error for `n` outside 1..1024 or not a
#'   number.
#' @examples
#' random()
#' random(8L, convert = FALSE)
#' @export
random <- function(n = 1L, convert = TRUE) .Call(nano_random, n, convert)

#' Host addresses and library versions
#'
#' `ip_addr()` lists the host's IPv4 addresses other than loopback, named by interface
#' (`""` named `""` when there is none). `nng_version()` gives the versions of the messaging
#' protocol implemented and of the TLS library.
#'
#' @return A named character vector; `nng_version()`: character(2).
#' @examples
#' ip_addr()
#' nng_version()
#' @export
ip_addr <- function() .Call(nano_ip_addr)

#' @rdname ip_addr
#' @export
nng_version <- function() .Call(nano_version)

#' Parse a URL
#'
#' Splits a URL into its parts: scheme and hostname lower-cased, default ports filled for
#' http/ws (80) and https/wss (443), IPv6 brackets removed; for `inproc://`, `abstract://`
#' and `ipc://` URLs everything after `//` is the path.
#'
#' @param url a URL (character string).
#' @return A named character vector: `scheme`, `userinfo`, `hostname`, `port`, `path`,
#'   `query`, `fragment` (`""` when absent). An error `3 | Invalid argument` for anything
#'   that is not a URL.
#' @examples
#' parse_url("https://user:pw@example.com:8443/a/b?x=1#frag")
#' @export
parse_url <- function(url) .Call(nano_parse_url, url)

#' HTTP status codes
#'
#' @param x an HTTP status code (coerced to integer).
#' @return `"<code> | <reason phrase>"`, with `Unknown HTTP Status` for codes not in the
#'   standard table.
#' @examples
#' status_code(200L)
#' status_code(418)
#' @export
status_code <- function(x) .Call(nano_status_code, x)

#' Serialization configuration
#'
#' Custom serialization for objects of reference classes (environments, external pointers)
#' sent in serial mode: applied with `opt(socket, "serial") <- cfg`. Each object inheriting
#' `class[i]` is sent as `sfunc[[i]](obj)` (a raw vector) and rebuilt with `ufunc[[i]](raw)`.
#'
#' @param class a character vector of class names.
#' @param sfunc a function, or a list of functions (one per class), returning a raw vector.
#' @param ufunc a function, or a list of functions, rebuilding an object from a raw vector.
#' @return An unnamed list of 3: `class`, the list of `sfunc`s, the list of `ufunc`s.
#' @examples
#' serial_config("custom", function(x) as.raw(1), function(x) x)
#' @export
serial_config <- function(class, sfunc, ufunc) {
  is.character(class) || stop("`class` must be a character vector")
  len <- function(f) if (is.function(f)) 1L else length(f)
  n <- length(class)
  len(sfunc) == n && len(ufunc) == n || stop("`class`, `sfunc` and `ufunc` must all be the same length")
  is.function(sfunc) || is.list(sfunc) || stop("`sfunc` must be a function or list of functions")
  is.function(ufunc) || is.list(ufunc) || stop("`ufunc` must be a function or list of functions")
  list(class, if (is.function(sfunc)) list(sfunc) else sfunc, if (is.function(ufunc)) list(ufunc) else ufunc)
}

#' Serialization marker and RNG advance
#'
#' `.mark()` sets whether serial-mode sends carry the 8-byte marker header (its byte 3 set to
#' 1), which receivers skip. `.advance()` advances R's random number stream by one draw (as
#' drawing one exponential variate).
#'
#' @param bool `TRUE` to mark, `FALSE` not to.
#' @return `.mark()`: `bool`. `.advance()`: `NULL`.
#' @examples
#' .mark(FALSE)
#' @export
.mark <- function(bool = TRUE) .Call(nano_mark, bool)

#' @rdname dot-mark
#' @export
.advance <- function() .Call(nano_advance)

#' Write to standard output
#'
#' Writes `x[1]` and a newline to file descriptor 1 in one write, bypassing R's connections
#' (so `sink()` does not divert it).
#'
#' @param x a character vector.
#' @return Invisible `NULL`.
#' @examples
#' write_stdout("hello")
#' @export
write_stdout <- function(x) invisible(.Call(nano_write_stdout, x))

#' Class predicates
#'
#' `is_nano()` tests for nanonext's socket-like objects (class `nano` or `nanoObject`),
#' `is_ncurl_session()` for an `ncurlSession`.
#'
#' @param x an object.
#' @return A logical scalar.
#' @examples
#' is_nano(1)
#' is_ncurl_session(1)
#' @export
is_nano <- function(x) inherits(x, c("nano", "nanoObject"))

#' @rdname is_nano
#' @export
is_ncurl_session <- function(x) inherits(x, "ncurlSession")
