# promises support: as.promise() and is.promising() methods for mirai and mirai_map (spec 2.9).
#
# Settlement is event driven: `.Call(mirai_later, ...)` hands the engine a closure that, when the
# task resolves, is queued on a `later` event loop through later's thread-safe C entry point
# (execLaterNative2). The closure itself only ever runs on R's main thread, when later runs its
# callbacks (R idle at top level, `later::run_now()`, Shiny's service loop). Nothing polls.

as.promise.mirai <- function(x) {
  p <- .subset2(x, "promise")
  if (is.null(p)) {
    p <- promises::promise(function(resolve, reject) {
      if (.pending(x)) {
        # Taking the value can fail (e.g. a serialization hook erroring while reading the
        # result): reject then, or the promise would never settle.
        .on_resolve(x, function() tryCatch(resolve(x$data), error = function(e) reject(e)))
      } else {
        resolve(x$data)
      }
    })
    # The value-to-error conversion happens in a then() chained here, while as.promise() is on
    # the stack, so that pending and already-resolved mirai reject alike and Shiny keeps its
    # deep stack traces.
    p <- p$then(onFulfilled = .promise_value)
    assign("promise", p, envir = x)
  }
  p
}

# A miraiError or an integer error value rejects; a miraiInterrupt (and any other value) fulfils.
.promise_value <- function(value) {
  if (is_error_value(value) && !is_mirai_interrupt(value))
    stop(simpleError(if (is_mirai_error(value)) .subset(value, 1L) else .ev_message(value)))
  value
}

as.promise.mirai_map <- function(x) promises::promise_all(.list = x)

is.promising.mirai <- function(x) TRUE

is.promising.mirai_map <- function(x) TRUE

# Schedules `f()` on R's main thread, on the current `later` loop, once mirai `x` resolves (at
# once if it already has).
.on_resolve <- function(x, f) {
  .Call(mirai_later, .Call(mirai_aio, x), f, later::current_loop()$id)
  invisible()
}
