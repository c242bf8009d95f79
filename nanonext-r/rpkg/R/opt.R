# Options, statistics, subscriptions and survey timers (spec section 5.6).

#' Get and Set Options
#'
#' Reads or sets an option of a Socket, Context, Listener or Dialer, e.g. `"send-timeout"`,
#' `"recv-timeout"` (ms, -1 for none), `"recv-size-max"`, `"socket-name"`,
#' `"req:resend-time"`, `"surveyor:survey-time"`, `"sub:prefnew"`, `"tcp-nodelay"`,
#' `"tcp-keepalive"` (tcp and tls+tcp dialers and listeners, set before start),
#' `"tcp-bound-port"`, `"url"` (read-only). `opt(s, "serial") <- serial_config(...)` sets
#' custom serialization for classes of reference objects (`list()` removes it).
#'
#' @param object a Socket, Context, Listener or Dialer.
#' @param name the option name.
#' @param value the value: character for string options, a number for durations, sizes and
#'   integers, logical for booleans.
#'
#' @return `opt()`: the value (character, integer, logical or double). `opt<-`: `object`.
#'   Unknown options are the error `9 | Not supported`, a value of the wrong type
#'   `30 | Incorrect type`.
#'
#' @examples
#' s <- socket("req")
#' opt(s, "send-timeout")
#' opt(s, "send-timeout") <- 1000L
#' opt(s, "send-timeout")
#' close(s)
#' @export
opt <- function(object, name) {
  r <- .Call(nano_opt, object, name)
  if (inherits(r, "errorValue")) stop(simpleError(.Call(nano_err_text, r), sys.call()))
  r
}

#' @rdname opt
#' @export
`opt<-` <- function(object, name, value) {
  r <- .Call(nano_opt_set, object, name, value)
  if (r) stop(simpleError(.Call(nano_err_text, r), sys.call()))
  object
}

#' Statistics
#'
#' Reads a statistic of a Socket (`"id"`, `"name"`, `"protocol"`, `"pipes"`, `"dialers"`,
#' `"listeners"`), Listener (`"id"`, `"socket"`, `"url"`, `"pipes"`, `"accept"`, `"reject"`)
#' or Dialer (`"id"`, `"socket"`, `"url"`, `"pipes"`, `"connect"`, `"reject"`, `"refused"`).
#'
#' @param object a Socket, Listener or Dialer.
#' @param name the statistic.
#'
#' @return A double, a character string, or `NULL` if there is no such statistic (or the
#'   socket is closed).
#'
#' @examples
#' s <- socket("pair")
#' stat(s, "pipes")
#' stat(s, "protocol")
#' close(s)
#' @export
stat <- function(object, name) .Call(nano_stat, object, name)

#' Subscribe to Topics
#'
#' Adds or removes a topic of a sub Socket or Context: messages whose bytes start with the
#' topic are received. A character topic is matched without its terminating NUL, so
#' `subscribe(s, "news")` receives messages sent as `c("news", ...)` in raw mode.
#'
#' @param con a sub Socket or Context.
#' @param topic the topic (an atomic vector, encoded as in raw mode), or `NULL` for every
#'   message.
#'
#' @return `con`, invisibly.
#'
#' @examples
#' s <- socket("sub")
#' subscribe(s, "news")
#' unsubscribe(s, "news")
#' close(s)
#' @export
subscribe <- function(con, topic = NULL) {
  r <- .Call(nano_subscribe, con, topic, TRUE)
  if (r) stop(simpleError(.Call(nano_err_text, r), sys.call()))
  invisible(con)
}

#' @rdname subscribe
#' @export
unsubscribe <- function(con, topic = NULL) {
  r <- .Call(nano_subscribe, con, topic, FALSE)
  if (r) stop(simpleError(.Call(nano_err_text, r), sys.call()))
  invisible(con)
}

#' Survey Time
#'
#' Sets how long a surveyor waits for responses to each survey (`surveyor:survey-time`).
#'
#' @param con a surveyor Socket or Context.
#' @param value the time in milliseconds.
#'
#' @return `con`, invisibly.
#'
#' @examples
#' s <- socket("surveyor")
#' survey_time(s, 500)
#' opt(s, "surveyor:survey-time")
#' close(s)
#' @export
survey_time <- function(con, value = 1000L) {
  opt(con, "surveyor:survey-time") <- value
  invisible(con)
}
