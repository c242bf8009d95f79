# Synchronous send and receive, and the serial/raw encodings (spec section 5.4).

.recv_modes <- c("serial", "character", "complex", "double", "integer", "logical", "numeric", "raw", "string")

send_mode <- function(mode) {
  if (is.numeric(mode)) return(if (as.integer(mode[1L]) == 2L) 2L else 1L)
  if (identical(mode, c("serial", "raw"))) return(1L)
  m <- match(mode[1L], c("serial", "raw"))
  if (is.na(m)) stop("`mode` should be one of: serial, raw", call. = FALSE)
  m
}

recv_mode <- function(mode) {
  if (is.numeric(mode)) return(as.integer(mode[1L]))
  if (identical(mode, .recv_modes)) return(1L)
  m <- match(mode[1L], .recv_modes)
  if (is.na(m)) stop("`mode` should be one of: serial, character, complex, double, integer, logical, numeric, raw, string", call. = FALSE)
  m
}

# The body of `data` for mode 1 (serialized, with the socket's hooks `cfg`) or 2 (raw, encoded
# natively by the routines).
encode <- function(data, mode, cfg) {
  if (mode == 2L) return(data)
  serialize(data, NULL, xdr = FALSE, version = 3L, refhook = if (length(cfg)) serial_hook(cfg))
}

raw_hex <- function(x) paste(as.character(x), collapse = "")

hex_raw <- function(x) {
  n <- nchar(x)
  if (n == 0L) return(raw(0L))
  as.raw(strtoi(substring(x, seq.int(1L, n, 2L), seq.int(2L, n, 2L)), 16L))
}

# A refhook applying the first matching class's serialization function.
serial_hook <- function(cfg) {
  cls <- cfg[[1L]]; sf <- cfg[[2L]]
  function(x) {
    for (i in seq_along(cls)) {
      if (inherits(x, cls[i])) {
        r <- sf[[i]](x)
        is.raw(r) || stop(sprintf("Serialization function for `%s` did not return a raw vector", cls[i]), call. = FALSE)
        return(c(as.character(i), raw_hex(r)))
      }
    }
    NULL
  }
}

unserial_hook <- function(cfg) {
  uf <- cfg[[3L]]
  function(x) uf[[as.integer(x[1L])]](hex_raw(x[2L]))
}

.misfit <- c("received data could not be unserialized", "", "received data could not be converted to complex",
             "received data could not be converted to double", "received data could not be converted to integer",
             "received data could not be converted to logical", "received data could not be converted to numeric",
             "", "data could not be converted to a character string")

# Finishes what the routines decoded: unserializes, or warns that the bytes did not fit.
decoded <- function(r, mode, cfg) {
  if (!is.object(r)) return(r)
  cl <- class(r)[1L]
  if (cl == "nanoSerial")
    return(unserialize(unclass(r), refhook = if (length(cfg)) unserial_hook(cfg)))
  if (cl == "nanoMisfit") {
    m <- if (mode >= 2L && mode <= 9L) mode else 1L
    warning(.misfit[m], call. = FALSE, immediate. = TRUE)
    return(unclass(r))
  }
  r
}

#' Send
#'
#' Sends data over a Socket or Context.
#'
#' @param con a Socket or Context.
#' @param data an R object. In mode `"raw"`, an atomic vector (or `NULL`) sent as its bytes.
#' @param mode `"serial"` (R serialization, any object) or `"raw"`; or the integer 1 or 2.
#' @param block `NULL` or `FALSE` for no wait, `TRUE` to wait as long as the socket's
#'   `send-timeout` allows, or a number of milliseconds.
#' @param pipe (poly sockets) the id of the pipe to send on, from [pipe_id()]; `0L` for any.
#'
#' @return `0L` on success, else an errorValue (8 nothing ready, 5 timed out, 7 closed).
#'
#' @examples
#' s1 <- socket("pair", listen = "ipc:///tmp/nanonext-send-example")
#' s2 <- socket("pair", dial = "ipc:///tmp/nanonext-send-example")
#' send(s1, data.frame(a = 1), block = 100)
#' recv(s2, block = 100)
#' close(s1)
#' close(s2)
#' @export
send <- function(con, data, mode = c("serial", "raw"), block = NULL, pipe = 0L) {
  cfg <- .Call(nano_con_serial, con, FALSE)
  mode <- send_mode(mode)
  .Call(nano_send, con, encode(data, mode, cfg), mode, block, pipe)
}

#' Receive
#'
#' Receives a message from a Socket or Context and decodes it.
#'
#' @inheritParams send
#' @param mode how to decode: `"serial"` (unserialize), `"character"`, `"complex"`,
#'   `"double"`, `"integer"`, `"logical"`, `"numeric"`, `"raw"` or `"string"`; or the integer
#'   1 to 9. Bytes that do not fit the mode are returned raw with a warning.
#' @param block as for [send()], bounded by `recv-timeout`.
#'
#' @return The decoded message, or an errorValue.
#'
#' @examples
#' s <- socket("pair")
#' recv(s)
#' close(s)
#' @export
recv <- function(con, mode = c("serial", "character", "complex", "double", "integer", "logical", "numeric", "raw", "string"),
                 block = NULL) {
  cfg <- .Call(nano_con_serial, con, FALSE)
  mode <- recv_mode(mode)
  decoded(.Call(nano_recv, con, mode, block), mode, cfg)
}
