# promises support: as.promise() and is.promising() methods for mirai and mirai_map.

as.promise.mirai <- function(x) {
  p <- .subset2(x, "promise")
  if (is.null(p)) {
    p <- promises::promise(function(resolve, reject) {
      if (.pending(x)) .on_resolve(x, function() resolve(x$data)) else resolve(x$data)
    })
    # Converting error values inside then() keeps Shiny's deep stack traces.
    p <- p$then(onFulfilled = function(value) {
      if (is_error_value(value) && !is_mirai_interrupt(value))
        stop(simpleError(if (is_mirai_error(value)) .subset(value, 1L) else .ev_message(value)))
      value
    })
    x$promise <- p
  }
  p
}

as.promise.mirai_map <- function(x) promises::promise_all(.list = x)

is.promising.mirai <- function(x) TRUE

is.promising.mirai_map <- function(x) TRUE

# Runs `f` on R's main thread through the later event loop once mirai `x` resolves. The bridge
# schedules it on completion (event driven); without that routine it is checked every 20 ms.
.on_resolve <- function(x, f) {
  aio <- .subset2(x, ".aio")
  if (exists("mirai_later", envir = .ns, inherits = FALSE)) {
    .Call(mirai_later, aio, f, later::current_loop()$id)
  } else {
    poll <- function() if (.Call(mirai_resolved, aio)) f() else later::later(poll, 0.02)
    poll()
  }
}
