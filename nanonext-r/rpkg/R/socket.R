# Sockets, endpoints and the accessors of 'nano' objects (spec sections 5.1-5.3).

.protocols <- c("bus", "pair", "poly", "push", "pull", "pub", "sub", "req", "rep", "surveyor", "respondent")

#' Open a Socket
#'
#' Opens a socket speaking one of NNG's Scalability Protocols and optionally dials and/or
#' listens at URLs (failures then are errors).
#'
#' @param protocol the protocol: `"bus"`, `"pair"`, `"poly"`, `"push"`, `"pull"`, `"pub"`,
#'   `"sub"`, `"req"`, `"rep"`, `"surveyor"` or `"respondent"` (an unambiguous prefix will do).
#' @param dial,listen URLs to dial and to listen at, or `NULL`.
#' @param tls a TLS configuration for `tls+tcp://` and `wss://` URLs, or `NULL`.
#' @param autostart `TRUE` to start the endpoints at once, `NA` to dial synchronously,
#'   `FALSE` to create them unstarted.
#' @param raw whether to open the raw (header-passing) variant, for devices.
#'
#' @return A Socket: an external pointer of class `c("nanoSocket", "nano")` with attributes
#'   `id`, `protocol`, `state`, and `dialer`/`listener` once endpoints are added.
#'
#' @examples
#' s <- socket("pair")
#' s
#' close(s)
#' @export
socket <- function(protocol = c("bus", "pair", "poly", "push", "pull", "pub", "sub", "req", "rep", "surveyor", "respondent"),
                   dial = NULL, listen = NULL, tls = NULL, autostart = TRUE, raw = FALSE) {
  s <- .Call(nano_socket, protocol, raw)
  if (length(dial)) dial(s, url = dial, tls = tls, autostart = autostart, fail = 2L)
  if (length(listen)) listen(s, url = listen, tls = tls, autostart = autostart, fail = 2L)
  s
}

fail_mode <- function(fail) {
  if (is.numeric(fail)) return(as.integer(fail[1L]))
  if (identical(fail, c("warn", "error", "none"))) return(1L)
  m <- match(fail[1L], c("warn", "error", "none"))
  if (is.na(m)) stop("`fail` should be one of: warn, error, none", call. = FALSE)
  m
}

# Reports NNG code `code` per `fail` (1 warn, 2 error, 3 none) with the caller's call.
nng_fail <- function(code, fail, call = sys.call(-1L)) {
  msg <- .Call(nano_err_text, code)
  if (fail == 2L) stop(simpleError(msg, call))
  if (fail == 1L) warning(simpleWarning(msg, call))
  invisible(structure(code, class = c("errorValue", "try-error")))
}

#' Dial or Listen at an Address
#'
#' Adds a dialer (connecting out) or a listener (accepting connections) to a socket.
#'
#' @param socket a Socket.
#' @param url the address, e.g. `"tcp://127.0.0.1:5555"`, `"ipc:///tmp/x"` or
#'   `"inproc://name"`. A listener at tcp port 0 picks a free port, shown in its `url`.
#' @inheritParams socket
#' @param autostart `TRUE` to start at once (a dialer then connects in the background), `NA`
#'   to dial synchronously (failing if no connection can be made), `FALSE` to create the
#'   endpoint unstarted (start it with [start()] once its options are set).
#' @param fail on failure, `"warn"` (a warning), `"error"` (an error) or `"none"`; or the
#'   integers 1, 2, 3.
#'
#' @return Invisible `0L`; on failure an invisible errorValue (or an error).
#'
#' @examples
#' s <- socket("rep")
#' listen(s, "tcp://127.0.0.1:0")
#' s$listener[[1]]$url
#' close(s)
#' @export
dial <- function(socket, url = "inproc://nanonext", tls = NULL, autostart = TRUE, fail = c("warn", "error", "none")) {
  fail <- fail_mode(fail)
  r <- .Call(nano_dial, socket, url, tls, autostart)
  if (r) nng_fail(r, fail) else invisible(r)
}

#' @rdname dial
#' @export
listen <- function(socket, url = "inproc://nanonext", tls = NULL, autostart = TRUE, fail = c("warn", "error", "none")) {
  fail <- fail_mode(fail)
  r <- .Call(nano_listen, socket, url, tls, autostart)
  if (r) nng_fail(r, fail) else invisible(r)
}

#' Start a Dialer or Listener
#'
#' Starts an endpoint created with `autostart = FALSE`.
#'
#' @param x a Dialer or Listener.
#' @param async (dialers) whether to connect in the background; `FALSE` connects now and
#'   fails if that is not possible.
#' @param ... not used.
#'
#' @return Invisible `0L`, or (with a warning) an invisible errorValue.
#'
#' @examples
#' s <- socket("req")
#' dial(s, "tcp://127.0.0.1:5555", autostart = FALSE)
#' start(s$dialer[[1]])
#' close(s)
#' @name start
#' @method start nanoDialer
start.nanoDialer <- function(x, async = TRUE, ...) {
  r <- .Call(nano_start, x, async)
  if (r) nng_fail(r, 1L) else invisible(r)
}

#' @rdname start
#' @method start nanoListener
start.nanoListener <- function(x, ...) {
  r <- .Call(nano_start, x, TRUE)
  if (r) nng_fail(r, 1L) else invisible(r)
}

#' Close a Connection
#'
#' Closes a Socket, Context, Dialer or Listener. Closing a socket also closes its endpoints
#' and contexts; their pending operations fail with error 7.
#'
#' @param con a Socket, Context, Dialer or Listener.
#' @param ... not used.
#'
#' @return Invisible `0L`; closing again gives a warning and an invisible errorValue (7 for
#'   sockets and contexts, 12 for dialers and listeners).
#'
#' @examples
#' s <- socket("pair")
#' close(s)
#' close(s)
#' @name close
#' @method close nanoSocket
close.nanoSocket <- function(con, ...) {
  r <- .Call(nano_close, con)
  if (r) nng_fail(r, 1L) else invisible(r)
}

#' @rdname close
#' @method close nanoContext
close.nanoContext <- close.nanoSocket

#' @rdname close
#' @method close nanoDialer
close.nanoDialer <- function(con, ...) {
  r <- .Call(nano_close_endpoint, con)
  if (r) nng_fail(r, 1L) else invisible(r)
}

#' @rdname close
#' @method close nanoListener
close.nanoListener <- close.nanoDialer

#' Reap
#'
#' Closes a Socket, Context, Listener or Dialer without S3 dispatch, warnings or changes to its
#' attributes: the fast path for internal code.
#'
#' @param con a Socket, Context (including [.context()] pointers), Listener or Dialer.
#'
#' @return `0L`, or an errorValue (7 if already closed, 3 for anything else).
#'
#' @examples
#' s <- socket("req")
#' reap(s)
#' reap(s)
#' @export
reap <- function(con) .Call(nano_reap, con)

#' Open a Context
#'
#' Opens a context on a req, rep, sub, surveyor or respondent socket: independent
#' request/reply, survey or subscription state sharing the socket's connections.
#'
#' @param socket a Socket.
#'
#' @return `context()`: a Context (class `c("nanoContext", "nano")`, attributes `id`,
#'   `socket`, `state`, `protocol`). `.context()`: a bare external pointer usable wherever a
#'   Context is, closed with [reap()].
#'
#' @examples
#' s <- socket("req")
#' ctx <- context(s)
#' ctx
#' close(ctx)
#' close(s)
#' @export
context <- function(socket) .Call(nano_context, socket, FALSE)

#' @rdname context
#' @export
.context <- function(socket) .Call(nano_context, socket, TRUE)

#' @export
print.nanoSocket <- function(x, ...) {
  cat(sprintf("< nanoSocket >\n - id: %d\n - state: %s\n - protocol: %s\n",
              attr(x, "id"), attr(x, "state"), attr(x, "protocol")), file = stdout())
  if (length(l <- attr(x, "listener")))
    cat(" - listener:\n", sprintf("    %s\n", vapply(l, attr, "", "url")), sep = "", file = stdout())
  if (length(d <- attr(x, "dialer")))
    cat(" - dialer:\n", sprintf("    %s\n", vapply(d, attr, "", "url")), sep = "", file = stdout())
  invisible(x)
}

#' @export
print.nanoContext <- function(x, ...) {
  cat(sprintf("< nanoContext >\n - id: %d\n - socket: %d\n - state: %s\n - protocol: %s\n",
              attr(x, "id"), attr(x, "socket"), attr(x, "state"), attr(x, "protocol")), file = stdout())
  invisible(x)
}

#' @export
print.nanoDialer <- function(x, ...) {
  cat(sprintf("< nanoDialer >\n - id: %d\n - socket: %d\n - state: %s\n - url: %s\n",
              attr(x, "id"), attr(x, "socket"), attr(x, "state"), attr(x, "url")), file = stdout())
  invisible(x)
}

#' @export
print.nanoListener <- function(x, ...) {
  cat(sprintf("< nanoListener >\n - id: %d\n - socket: %d\n - state: %s\n - url: %s\n",
              attr(x, "id"), attr(x, "socket"), attr(x, "state"), attr(x, "url")), file = stdout())
  invisible(x)
}

#' @export
`$.nano` <- function(x, name) attr(x, name, exact = TRUE)

#' @export
`[[.nano` <- function(x, i, ...) attr(x, i, exact = TRUE)

#' @export
`[.nano` <- function(x, i, ...) attr(x, as.character(substitute(i)), exact = TRUE)

#' @export
`$<-.nano` <- function(x, name, value) x

#' @exportS3Method utils::.DollarNames
.DollarNames.nano <- function(x, pattern = "") grep(pattern, names(attributes(x)), value = TRUE, fixed = TRUE)
