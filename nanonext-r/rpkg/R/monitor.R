# Pipe notifications and monitors (spec sections 3.4 and 5.7).

#' Signal a Condition Variable on Pipe Events
#'
#' Makes `cv` be signalled each time a pipe (connection) of `socket` is added (`add`) and/or
#' removed (`remove`), replacing earlier registrations for those events. `flag` arms the cv's
#' flag: the next registered event then trips it (so [wait()] returns `FALSE`) and, for a
#' signal number such as `tools::SIGTERM`, raises that signal in this process.
#'
#' @param socket a Socket.
#' @param cv a `conditionVariable`, or `NULL` to cancel the notifications selected by `add`
#'   and `remove`.
#' @param add,remove whether to signal on pipe additions, removals.
#' @param flag `FALSE` (disarm), `TRUE` (arm), or a signal number to raise when tripped.
#'
#' @return Invisible `0L`.
#'
#' @examples
#' s <- socket("pair")
#' x <- cv()
#' pipe_notify(s, x, add = TRUE, remove = TRUE)
#' close(s)
#' @export
pipe_notify <- function(socket, cv, add = FALSE, remove = FALSE, flag = FALSE) {
  r <- .Call(nano_pipe_notify, socket, cv, add, remove, flag)
  if (r) stop(simpleError(.Call(nano_err_text, r), sys.call()))
  invisible(r)
}

#' Monitor Pipes
#'
#' `monitor()` records the pipe additions and removals of a socket and signals `cv` for each;
#' `read_monitor()` returns the changes since it was last called.
#'
#' @param sock a Socket.
#' @param cv a `conditionVariable`.
#' @param x a Monitor.
#'
#' @return `monitor()`: a Monitor (class `c("nanoMonitor", "nano")`, attribute `socket`).
#'   `read_monitor()`: an integer vector of pipe ids, positive for added and negative for
#'   removed pipes, in order; `NULL` if nothing changed.
#'
#' @examples
#' s <- socket("poly")
#' m <- monitor(s, cv())
#' m
#' read_monitor(m)
#' close(s)
#' @export
monitor <- function(sock, cv) {
  r <- .Call(nano_monitor, sock, cv)
  if (is.integer(r)) stop(simpleError(.Call(nano_err_text, r), sys.call()))
  r
}

#' @rdname monitor
#' @export
read_monitor <- function(x) .Call(nano_read_monitor, x)

#' @export
print.nanoMonitor <- function(x, ...) {
  cat(sprintf("< nanoMonitor >\n - socket: %d\n", attr(x, "socket")), file = stdout())
  invisible(x)
}

#' Read Standard Input
#'
#' A pull Socket receiving the lines of standard input: each line, with its `"\n"`, arrives
#' as one message with a trailing nul, so `recv(s, mode = "string")` gives `"line\n"`. For
#' non-interactive sessions only; the end of input ends the feed.
#'
#' @return A Socket (protocol `"pull"`).
#'
#' @examples
#' # In a child process: this session's own standard input may be its script.
#' code <- "s <- nanonext::read_stdin(); cat(nanonext::recv(s, 'string', block = 5000)); close(s)"
#' system2(file.path(R.home("bin"), "Rscript"), c("-e", shQuote(code)), input = "hello",
#'         env = paste0("R_LIBS=", paste(.libPaths(), collapse = ":")))
#' @export
read_stdin <- function() {
  if (interactive()) stop("can only be used in non-interactive sessions")
  .Call(nano_read_stdin, socket("pull"))
}
