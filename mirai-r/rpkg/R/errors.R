# Error values: miraiError, miraiInterrupt, integer error values, and their methods.

#' Error values
#'
#' A task that fails does not raise an error in the session: its mirai resolves to an *error
#' value*. These functions tell the kinds apart.
#'
#' @param x any object.
#'
#' @return `TRUE` or `FALSE`. `is_mirai_error()`: an error raised by the evaluation (class
#'   `miraiError`). `is_mirai_interrupt()`: an interrupted evaluation (class `miraiInterrupt`).
#'   `is_error_value()`: any error value, those two and the integer error values.
#'
#' @details
#' - A `miraiError` is the string `"Error in <call>: <message>"`. It carries the fields of the
#'   original condition, read with `$`: `$message`, `$call`, custom fields (such as those of
#'   `rlang::abort()`), `$condition.class` (the original class) and `$stack.trace` (the calls from
#'   where the error was raised outwards, as a list). [conditionMessage()] and [conditionCall()]
#'   work on it.
#' - A `miraiInterrupt` is an empty string, the value of a task interrupted on its daemon (for
#'   example by a signal).
#' - An integer error value is a code: 5 timed out, 7 object closed (the profile was reset
#'   before the task was sent), 19 connection reset (the daemon was lost, or the profile reset),
#'   20 operation canceled ([stop_mirai()]). It prints with its meaning, as
#'   `'errorValue' int 20 | Operation canceled`.
#'
#' All three also have class `try-error`, so code that checks `inherits(x, "try-error")` treats
#' them as errors.
#'
#' @seealso [mirai()], [stop_mirai()].
#' @examples
#' daemons(1)
#' m <- mirai({
#'   f <- function(x) if (x > 0) stop("positive")
#'   f(1)
#' })
#' m[]
#' is_mirai_error(m$data)
#' is_error_value(m$data)
#' m$data$message
#' m$data$stack.trace
#'
#' m <- mirai(Sys.sleep(5))
#' Sys.sleep(0.1)
#' stop_mirai(m)
#' m$data
#' is_error_value(m$data)
#' is_mirai_interrupt(m$data)
#'
#' is_error_value(mirai(1)[])
#' daemons(0)
is_mirai_error <- function(x) inherits(x, "miraiError")

#' @rdname is_mirai_error
is_mirai_interrupt <- function(x) inherits(x, "miraiInterrupt")

# is_error_value() is nanonext's, re-exported (NAMESPACE): the same function object.
#' @rdname is_mirai_error
#' @usage is_error_value(x)
#' @name is_error_value
NULL

`$.miraiError` <- function(x, name) attr(x, name, exact = TRUE)

.DollarNames.miraiError <- function(x, pattern = "") {
  nms <- names(attributes(x))
  nms[grepl(pattern, nms, fixed = TRUE)]
}

conditionMessage.miraiError <- function(c) attr(c, "message", exact = TRUE)

conditionCall.miraiError <- function(c) attr(c, "call", exact = TRUE)

print.miraiError <- function(x, ...) {
  cat(sprintf("'miraiError' chr %s\n", .subset(x, 1L)))
  invisible(x)
}

print.miraiInterrupt <- function(x, ...) {
  cat("'miraiInterrupt' chr \"\"\n")
  invisible(x)
}

# Error values and the unresolved sentinel print with nanonext's methods.

# The message an error value carries: the condition message of a miraiError, the
# `"<code> | <text>"` form of an integer error value, "" for a miraiInterrupt.
.ev_message <- function(x) {
  if (is_mirai_error(x)) attr(x, "message", exact = TRUE) %||% ""
  else if (is.integer(x)) .code_text(.subset(x, 1L))
  else ""
}

# Strips attributes (srcref and the like) from a call.
.bare <- function(x) {
  if (is.language(x)) attributes(x) <- NULL
  x
}

# The call a task is evaluated through; a condition carrying it was signalled by the top level
# of the user's expression.
.evalcall <- quote(eval(._mirai_.[["._expr_."]], envir = ._mirai_., enclos = globalenv()))

# Builds a miraiError from condition `e` and the calls of its stack trace (daemon side).
.mirai_error <- function(e, trace) {
  call <- .bare(conditionCall(e))
  msg <- tryCatch(conditionMessage(e), error = function(err) "")
  str <- if (is.null(call) || identical(call, .evalcall)) sprintf("Error: %s", msg)
  else sprintf("Error in %s: %s", deparse(call, width.cutoff = 500L, backtick = TRUE, nlines = 1L), msg)
  fields <- if (is.list(e)) unclass(e) else list(message = msg, call = call)
  fields <- fields[!names(fields) %in% c("", "class", "names", "dim", "dimnames", "tsp", "row.names", "comment")]
  fields$message <- msg
  fields["call"] <- list(call)
  attributes(str) <- c(fields, list(class = c("miraiError", "errorValue", "try-error"),
                                    condition.class = class(e), stack.trace = trace))
  str
}

# An error condition standing for error value `x` (promises rejection, cli parent condition).
.ev_condition <- function(x) {
  call <- if (is_mirai_error(x)) attr(x, "call", exact = TRUE)
  structure(list(message = .ev_message(x), call = call), class = c("error", "condition"))
}
