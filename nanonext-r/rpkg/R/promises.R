# Promises over Aios (spec section 2.4): `.keep()` and the promises methods of recvAio.

#' Keep a promise for an Aio
#'
#' Arranges that, when the receive of `x` (a `recvAio` or request) completes,
#' `resolve(<value>)` is evaluated in `ctx` (a promise executor's environment) on R's main
#' thread through the `later` event loop, and makes `ctx` the enclosure of `x`. If the
#' operation has already completed, the callback is scheduled at once. Send Aios and other
#' inputs: nothing happens.
#'
#' @param x an Aio.
#' @param ctx the environment holding `resolve`.
#' @return `NULL`.
#' @keywords internal
#' @export
.keep <- function(x, ctx) {
  if (is.environment(x) && !inherits(x, "sendAio") && is.environment(ctx)) {
    loadNamespace("later")
    fun <- function() eval(call("resolve", .subset2(x, "data")), ctx)
    # Another package's Aio: its completion is watched from the event loop.
    if (.Call(nano_keep, x, ctx, fun) == 2L) {
      watch <- function() if (.unresolved(x)) later::later(watch, 0.01) else fun()
      watch()
    }
  }
  NULL
}

#' @exportS3Method promises::as.promise
as.promise.recvAio <- function(x) {
  promise <- .subset2(x, "promise")
  if (is.null(promise)) {
    promise <- if (unresolved(x)) {
      promises::promise(function(resolve, reject) .keep(x, environment()))
    } else {
      value <- .subset2(x, "value")
      promises::promise(function(resolve, reject) resolve(value))
    }
    promise <- promises::then(promise, onFulfilled = function(value)
      if (is_error_value(value)) stop(nng_error(value)) else value)
    `[[<-`(x, "promise", promise)
  }
  promise
}

#' @exportS3Method promises::is.promising
is.promising.recvAio <- function(x) TRUE
