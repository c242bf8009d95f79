# Aio objects (spec section 2.1): environments holding a native handle in `aio` and an active
# value binding (`data` / `result`) that observes resolution. Made in Rust (src/aio.rs).

#' The unresolved sentinel
#'
#' The value of the `data` / `result` binding of an Aio while its operation is pending: a
#' logical `NA` of class `unresolvedValue`, one object per session, recognised by
#' [unresolved()] by identity.
#'
#' @keywords internal
#' @name unresolvedValue
.unresolvedValue <- structure(NA, class = "unresolvedValue")

.onLoad <- function(libname, pkgname) {
  .Call(nano_aio_init, .unresolvedValue, nano_aio_get)
  invisible()
}

#' A timer Aio (internal, for tests)
#'
#' A real Aio completed by a background thread after `ms` milliseconds: with `value` (a
#' recvAio), `0L` (a sendAio, `send = TRUE`) or errorValue `error` when `error > 0`.
#'
#' @param ms milliseconds until completion.
#' @param value the value the receive resolves to.
#' @param cv a `conditionVariable` signalled on completion, or `NULL`.
#' @param error an NNG error code to complete with instead (0: none).
#' @param send make a sendAio.
#' @param interrupt interrupt R when the Aio completes successfully (as `recv_aio(cv = substitute())`).
#' @return a `recvAio` or `sendAio`.
#' @keywords internal
#' @noRd
.timer_aio <- function(ms, value = NULL, cv = NULL, error = 0L, send = FALSE, interrupt = FALSE)
  .Call(nano_timer_aio, ms, serialize(value, NULL), cv, error, send, interrupt)

#' @export
print.recvAio <- function(x, ...) {
  cat("< recvAio | $data >\n")
  invisible(x)
}

#' @export
print.sendAio <- function(x, ...) {
  cat("< sendAio | $result >\n")
  invisible(x)
}

#' @export
print.unresolvedValue <- function(x, ...) {
  cat("'unresolved' logi NA\n")
  invisible(x)
}

#' @export
print.errorValue <- function(x, ...) {
  cat("'errorValue' int ", nng_error(x), "\n", sep = "")
  invisible(x)
}

#' @export
`$<-.recvAio` <- function(x, name, value) x

#' @export
`$<-.sendAio` <- function(x, name, value) x

#' @export
`[.recvAio` <- function(x, i, ...) collect_aio_(x)

#' @export
`[.sendAio` <- function(x, i, ...) collect_aio_(x)

#' @exportS3Method utils::.DollarNames
.DollarNames.recvAio <- function(x, pattern = "") grep(pattern, "data", value = TRUE, fixed = TRUE)

#' @exportS3Method utils::.DollarNames
.DollarNames.sendAio <- function(x, pattern = "") grep(pattern, "result", value = TRUE, fixed = TRUE)

# A stand-in for another package's Aio (internal, for tests): a mirai-shaped object (class
# c("mirai", "recvAio"), enclosure the namespace, an R closure as its active `data` binding)
# over a handle of a kind the queries reach only through the shared ABI.
.foreign_aio <- function(ms, value = NULL, cv = NULL) {
  env <- new.env(parent = environment(.foreign_aio))
  env[["aio"]] <- .Call(nano_foreign_timer, ms, serialize(value, NULL), cv)
  makeActiveBinding("data", function() .Call(nano_foreign_get, env), env)
  attr(env, "id") <- 1L
  class(env) <- c("mirai", "recvAio")
  env
}
