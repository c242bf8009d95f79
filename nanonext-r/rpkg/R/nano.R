# nano objects: a socket bundled with its methods (spec section 5.8).

#' Create a nano Object
#'
#' A convenience object bundling a socket with methods: `$send()`, `$recv()`,
#' `$send_aio()`, `$recv_aio()`, `$dial()`, `$listen()`, `$opt()`, `$stat()`, `$close()`,
#' and per protocol `$context_open()` (req, rep, sub, surveyor, respondent),
#' `$subscribe()` / `$unsubscribe()` (sub) and `$survey_time()` (surveyor). After a dial or
#' listen it holds `$dialer` / `$listener` and `$dialer_opt()` / `$listener_opt()`; with
#' `autostart = FALSE` also `$dialer_start()` / `$listener_start()`.
#'
#' @inheritParams socket
#'
#' @return A `nanoObject`: an environment whose `socket` binding is the socket (or the open
#'   context).
#'
#' @examples
#' n <- nano("req", listen = "ipc:///tmp/nanonext-nano-example")
#' n
#' n$close()
#' @export
nano <- function(protocol = c("bus", "pair", "poly", "push", "pull", "pub", "sub", "req", "rep", "surveyor", "respondent"),
                 dial = NULL, listen = NULL, tls = NULL, autostart = TRUE) {
  self <- new.env(hash = FALSE)
  sock <- socket(protocol, dial = dial, listen = listen, tls = tls, autostart = autostart)
  ctx <- NULL
  proto <- attr(sock, "protocol")
  makeActiveBinding("socket", function() if (is.null(ctx)) sock else ctx, self)
  self$close <- function() close(sock)
  endpoint_methods <- function(kind, started) {
    eps <- attr(sock, kind)
    assign(kind, eps, envir = self)
    assign(paste0(kind, "_opt"), function(name, value) {
      if (missing(value)) lapply(get(kind, envir = self), opt, name = name)
      else lapply(get(kind, envir = self), function(x) { opt(x, name) <- value; x })
    }, envir = self)
    if (!started) {
      starter <- paste0(kind, "_start")
      assign(starter, if (kind == "dialer") function(async = TRUE) {
        r <- stats::start(eps[[length(eps)]], async = async)
        if (r == 0L) rm(list = starter, envir = self)
        invisible(r)
      } else function() {
        r <- stats::start(eps[[length(eps)]])
        if (r == 0L) rm(list = starter, envir = self)
        invisible(r)
      }, envir = self)
    }
  }
  if (length(dial)) endpoint_methods("dialer", !isFALSE(autostart))
  if (length(listen)) endpoint_methods("listener", !isFALSE(autostart))
  self$dial <- function(url = "inproc://nanonext", tls = NULL, autostart = TRUE) {
    r <- dial(sock, url = url, tls = tls, autostart = autostart)
    if (r == 0L) endpoint_methods("dialer", !isFALSE(autostart))
    invisible(r)
  }
  self$listen <- function(url = "inproc://nanonext", tls = NULL, autostart = TRUE) {
    r <- listen(sock, url = url, tls = tls, autostart = autostart)
    if (r == 0L) endpoint_methods("listener", !isFALSE(autostart))
    invisible(r)
  }
  if (proto == "poly") {
    self$send <- function(data, mode = c("serial", "raw"), block = NULL, pipe = 0L) send(self$socket, data, mode = mode, block = block, pipe = pipe)
    self$send_aio <- function(data, mode = c("serial", "raw"), timeout = NULL, pipe = 0L) send_aio(self$socket, data, mode = mode, timeout = timeout, pipe = pipe)
  } else {
    self$send <- function(data, mode = c("serial", "raw"), block = NULL) send(self$socket, data, mode = mode, block = block)
    self$send_aio <- function(data, mode = c("serial", "raw"), timeout = NULL) send_aio(self$socket, data, mode = mode, timeout = timeout)
  }
  self$recv <- function(mode = c("serial", "character", "complex", "double", "integer", "logical", "numeric", "raw", "string"), block = NULL)
    recv(self$socket, mode = mode, block = block)
  self$recv_aio <- function(mode = c("serial", "character", "complex", "double", "integer", "logical", "numeric", "raw", "string"), timeout = NULL)
    recv_aio(self$socket, mode = mode, timeout = timeout)
  self$opt <- function(name, value) {
    if (missing(value)) return(opt(self$socket, name))
    obj <- self$socket
    opt(obj, name) <- value
    invisible(obj)
  }
  self$stat <- function(name) stat(sock, name)
  if (proto %in% c("req", "rep", "sub", "surveyor", "respondent")) {
    self$context_open <- function() {
      if (!is.null(ctx)) close(ctx)
      ctx <<- context(sock)
      assign("context", ctx, envir = self)
      assign("context_close", function() {
        r <- if (is.null(ctx)) invisible(0L) else close(ctx)
        ctx <<- NULL
        rm(list = c("context", "context_close"), envir = self)
        invisible(r)
      }, envir = self)
      invisible(self)
    }
  }
  if (proto == "sub") {
    self$subscribe <- function(topic = NULL) invisible(subscribe(self$socket, topic = topic))
    self$unsubscribe <- function(topic = NULL) invisible(unsubscribe(self$socket, topic = topic))
  }
  if (proto == "surveyor") self$survey_time <- function(value = 1000L) invisible(survey_time(self$socket, value = value))
  class(self) <- "nanoObject"
  self
}

#' @export
print.nanoObject <- function(x, ...) {
  sock <- environment(.subset2(x, "close"))$sock
  cat(sprintf("< nano object >\n - socket id: %d\n - state: %s\n - protocol: %s\n",
              attr(sock, "id"), attr(sock, "state"), attr(sock, "protocol")), file = stdout())
  if (length(l <- attr(sock, "listener")))
    cat(" - listener:\n", sprintf("    %s\n", vapply(l, attr, "", "url")), sep = "", file = stdout())
  if (length(d <- attr(sock, "dialer")))
    cat(" - dialer:\n", sprintf("    %s\n", vapply(d, attr, "", "url")), sep = "", file = stdout())
  invisible(x)
}

#' @export
`$<-.nanoObject` <- function(x, name, value) x
