# Asynchronous send/receive, request/reply over contexts (spec section 5.5).

#' Asynchronous Send and Receive
#'
#' `send_aio()` and `recv_aio()` start a send or a receive and return at once with an Aio
#' whose `result` / `data` is unresolved until the operation completes.
#'
#' @inheritParams send
#' @inheritParams recv
#' @param timeout the longest wait in milliseconds, or `NULL` for the socket's
#'   `send-timeout` / `recv-timeout` (by default none); `0` times out at once.
#' @param cv (`recv_aio`) a `conditionVariable` signalled when the receive completes, or
#'   `NULL`. `cv = substitute()` instead interrupts R (as a user interrupt does) when a message
#'   arrives.
#'
#' @return `send_aio()`: an invisible `sendAio`, whose `result` is `0L` or an errorValue.
#'   `recv_aio()`: an invisible `recvAio`, whose `data` is the decoded message or an
#'   errorValue.
#'
#' @examples
#' s1 <- socket("pair", listen = "ipc:///tmp/nanonext-aio-example")
#' s2 <- socket("pair", dial = "ipc:///tmp/nanonext-aio-example")
#' r <- recv_aio(s2, timeout = 1000)
#' send_aio(s1, "hello", timeout = 1000)
#' call_aio(r)$data
#' close(s1)
#' close(s2)
#' @export
send_aio <- function(con, data, mode = c("serial", "raw"), timeout = NULL, pipe = 0L) {
  cfg <- .Call(nano_con_serial, con, TRUE)
  mode <- send_mode(mode)
  invisible(.Call(nano_send_aio, con, encode(data, mode, cfg), mode, timeout, pipe))
}

#' @rdname send_aio
#' @export
recv_aio <- function(con, mode = c("serial", "character", "complex", "double", "integer", "logical", "numeric", "raw", "string"),
                     timeout = NULL, cv = NULL) {
  cfg <- .Call(nano_con_serial, con, FALSE)
  mode <- recv_mode(mode)
  invisible(.Call(nano_recv_aio, con, mode, timeout, cv, decoded, cfg))
}

#' Request and Reply
#'
#' `request()` sends a request over a req (or surveyor) Context and posts the receive of its
#' reply, returning at once. `reply()` receives a request over a rep Context, evaluates
#' `execute` on it and sends the result back.
#'
#' @param context a Context.
#' @param data the request.
#' @param send_mode,recv_mode how to send the request and decode the reply (see [send()],
#'   [recv()]).
#' @param timeout milliseconds to wait (`NULL`: the socket's timeout; for `reply()`, no
#'   limit).
#' @param cv a `conditionVariable` signalled once when the request completes, or `NULL`.
#' @param id `NULL`, or any other value to have a timed-out (or [stop_request()]ed) request
#'   cancelled at the replier by a message over the context.
#' @param execute a function applied to the request, as `execute(data, ...)`.
#' @param ... further arguments to `execute`.
#'
#' @return `request()`: an invisible request Aio (class `c("mirai", "recvAio")`, attribute
#'   `id` the context id). `reply()`: `0L`, or an errorValue. If `execute` fails, the error is
#'   printed and a single nul byte is sent back ([is_nul_byte()]).
#'
#' @examples
#' rep <- socket("rep", listen = "ipc:///tmp/nanonext-req-example")
#' req <- socket("req", dial = "ipc:///tmp/nanonext-req-example")
#' r <- request(context(req), 41, timeout = 1000)
#' reply(context(rep), function(x) x + 1, timeout = 1000)
#' call_aio(r)$data
#' close(req)
#' close(rep)
#' @export
request <- function(context, data, send_mode = c("serial", "raw"),
                    recv_mode = c("serial", "character", "complex", "double", "integer", "logical", "numeric", "raw", "string"),
                    timeout = NULL, cv = NULL, id = NULL) {
  cfg <- .Call(nano_con_serial, context, FALSE)
  send_mode <- send_mode(send_mode)
  recv_mode <- recv_mode(recv_mode)
  invisible(.Call(nano_request, context, encode(data, send_mode, cfg), send_mode, recv_mode, timeout, cv, decoded, cfg, id))
}

#' @rdname request
#' @export
reply <- function(context, execute,
                  recv_mode = c("serial", "character", "complex", "double", "integer", "logical", "numeric", "raw", "string"),
                  send_mode = c("serial", "raw"), timeout = NULL, ...) {
  block <- if (is.null(timeout)) TRUE else timeout
  data <- recv(context, mode = recv_mode, block = block)
  if (is_error_value(data)) return(data)
  res <- tryCatch(execute(data, ...), error = function(e) {
    cat(sprintf("Error in %s : %s\n", paste(deparse(conditionCall(e)), collapse = " "), conditionMessage(e)), file = stderr())
    .nul_byte
  })
  if (identical(res, .nul_byte)) send(context, as.raw(0L), mode = "raw", block = block)
  else send(context, res, mode = send_mode, block = block)
}

.nul_byte <- structure(as.raw(0L), class = "nanoNulByte")

#' Stop a Request
#'
#' Stops a request Aio (its value becomes errorValue 20) and, for requests made with a
#' non-`NULL` `id`, asks the replier to cancel it: a cancellation message over the context,
#' waiting up to 1 s each to send it and for the 4-byte answer.
#'
#' @param x a request Aio, or a list of them.
#'
#' @return Invisible `TRUE` if the replier confirmed the cancellation, else `FALSE`; a logical
#'   vector for a list.
#'
#' @examples
#' s <- socket("req")
#' r <- request(context(s), 1, timeout = 3000)
#' stop_request(r)
#' r$data
#' close(s)
#' @export
stop_request <- function(x) {
  if (is.list(x)) {
    out <- logical(length(x))
    for (i in rev(seq_along(x))) out[i] <- stop_request1(x[[i]])
    return(invisible(out))
  }
  invisible(stop_request1(x))
}

stop_request1 <- function(x) {
  if (!is.environment(x) || !inherits(x, "recvAio")) return(FALSE)
  stop_aio(x)
  ctx <- get0(".context", envir = x, inherits = FALSE)
  if (is.null(ctx)) return(FALSE)
  .Call(nano_cancel_request, ctx)
}
