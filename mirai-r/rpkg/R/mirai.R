# Core async: mirai(), try_mirai(), everywhere(), waiting, cancellation and the mirai object.

.msg_dots <- "all `...` arguments must be named, unless supplying an environment"
.msg_args <- "all items in `.args` must be named, unless supplying an environment"
.msg_expr <- "missing expression, perhaps wrap in {}?"

# The globals of a task from `list(...)`: all named, or an environment first.
.globals <- function(dots, call) {
  if (!length(dots)) return(list())
  nms <- names(dots)
  if (!is.null(nms) && all(nzchar(nms))) return(dots)
  if (is.null(nms) && is.environment(dots[[1L]])) {
    g <- as.list.environment(dots[[1L]], all.names = TRUE)
    g[[".Random.seed"]] <- NULL
    return(g)
  }
  stop(simpleError(.msg_dots, call))
}

# The locals of a task from `.args`: all named, or an environment.
.locals <- function(args, call) {
  if (is.environment(args)) return(as.list.environment(args, all.names = TRUE))
  if (length(args)) {
    nms <- names(args)
    if (is.null(nms) || !all(nzchar(nms))) stop(simpleError(.msg_args, call))
  }
  if (is.list(args)) args else as.list(args)
}

# The expression to send: `.expr` unevaluated, unless it is a symbol bound (as seen from the
# caller) to a language object, whose value is used.
.capture <- function(expr, envir) {
  if (is.symbol(expr)) {
    nm <- as.character(expr)
    if (nzchar(nm) && exists(nm, envir = envir)) {
      v <- get(nm, envir = envir)
      if (is.language(v)) return(v)
    }
  }
  expr
}

# A mirai: an environment whose `data` active binding takes the result from the task handle
# `.aio` once it has arrived, then caches it as `value` and drops the handle.
.mk_mirai <- function(aio, hooks, host) {
  self <- new.env(hash = FALSE, parent = .ns)
  .opts$id <- .opts$id + 1L
  attributes(self) <- list(id = .opts$id, class = c("mirai", "recvAio"))
  if (!is.null(aio)) self$.aio <- aio
  if (!is.null(hooks)) self$.hooks <- hooks
  if (!is.null(host)) self$.host <- host
  f <- .data_binding
  environment(f) <- self
  makeActiveBinding("data", f, self)
  self
}

.data_binding <- function() {
  self <- parent.env(environment())
  aio <- .subset2(self, ".aio")
  if (is.null(aio)) return(.subset2(self, "value"))
  v <- .Call(mirai_take, aio, .subset2(self, ".hooks"), .unresolved)
  if (identical(v, .unresolved)) return(v)
  .settle(self, v)
}

.settle <- function(self, v) {
  self$value <- v
  self$.aio <- NULL
  # An ephemeral process that timed out keeps evaluating until the mirai is collected.
  if (!(is.integer(v) && identical(.subset(v, 1L), 5L))) self$.host <- NULL
  v
}

.mk_resolved <- function(v) {
  m <- .mk_mirai(NULL, NULL, NULL)
  m$value <- v
  m
}

# Pending: has a handle whose task has not resolved (never consumes).
.pending <- function(m) {
  aio <- .subset2(m, ".aio")
  !is.null(aio) && !.Call(mirai_resolved, aio)
}

# Submits `data` to profile `prof` (NULL: ephemeral); NULL if `try` and not admitted.
.submit <- function(prof, data, timeout, try = FALSE) {
  if (is.null(prof)) return(.ephemeral(data, timeout))
  if (prof$sync) return(.mk_resolved(.sync_eval(prof, .seeded(prof, data), FALSE)))
  host <- prof$host
  if (prof$gate) {
    if (try) {
      if (!.Call(mirai_host_admit, host)) return(NULL)
    } else {
      while (!.Call(mirai_host_wait_admit, host, 400)) if (!identical(..[[prof$compute]], prof)) break
    }
  }
  aio <- .Call(mirai_submit, host, .seeded(prof, data), timeout, prof$serial)
  .mk_mirai(aio, prof$serial, host)
}

# With `seed`, ships the profile's next per-mirai stream as `.Random.seed` and advances it.
.seeded <- function(prof, data) {
  if (!is.null(prof$seed)) {
    data$globals[[".Random.seed"]] <- prof$stream
    prof$stream <- parallel::nextRNGStream(prof$stream)
  }
  data
}

# A one-off daemon process per mirai, on its own host.
.ephemeral <- function(data, timeout) {
  host <- .Call(mirai_host_start, local_url(), FALSE, NA_real_, NULL, NULL)
  url <- .Call(mirai_host_url, host)
  .Call(mirai_host_launch, host, .rscript(), c("-e", sprintf("mirai:::.daemon(\"%s\")", url)))
  .mk_mirai(.Call(mirai_submit, host, data, timeout, NULL), NULL, host)
}

.timeout <- function(x) if (!is.null(x)) as.double(x)

mirai <- function(.expr, ..., .args = list(), .timeout = NULL, .compute = NULL) {
  missing(.expr) && stop(.msg_expr)
  call <- sys.call()
  data <- list(globals = .globals(list(...), call), args = .locals(.args, call))
  data$expr <- .capture(substitute(.expr), parent.frame())
  invisible(.submit(.profile(.compute), data, .timeout(.timeout)))
}

try_mirai <- function(.expr, ..., .args = list(), .timeout = NULL, .compute = NULL) {
  missing(.expr) && stop(.msg_expr)
  call <- sys.call()
  data <- list(globals = .globals(list(...), call), args = .locals(.args, call))
  data$expr <- .capture(substitute(.expr), parent.frame())
  invisible(.submit(.profile(.compute), data, .timeout(.timeout), try = TRUE))
}

everywhere <- function(.expr, ..., .args = list(), .min = 1L, .compute = NULL) {
  require_daemons(.compute = .compute, call = environment())
  missing(.expr) && stop(.msg_expr)
  call <- sys.call()
  data <- list(globals = .globals(list(...), call), args = .locals(.args, call),
               expr = .capture(substitute(.expr), parent.frame()), everywhere = TRUE)
  prof <- .profile(.compute)
  x <- if (prof$sync) {
    list(.mk_resolved(.sync_eval(prof, data, TRUE)))
  } else {
    min <- if (prof$dispatcher) as.integer(.min) else prof$n
    aios <- .Call(mirai_everywhere, prof$host, data, min, prof$serial)
    lapply(aios, .mk_mirai, hooks = prof$serial, host = prof$host)
  }
  x <- `class<-`(x, "mirai_map")
  prof$everywhere <- x
  invisible(x)
}

# Handles of the untaken mirai in `x` (a mirai or a list; NULL at other positions), or NULL if
# there are none.
.aios <- function(x) {
  if (is_mirai(x)) return(.subset2(x, ".aio"))
  if (!is.list(x)) return(NULL)
  aios <- lapply(x, function(m) if (is_mirai(m)) .subset2(m, ".aio"))
  for (a in aios) if (!is.null(a)) return(aios)
  NULL
}

call_mirai <- function(x) {
  aios <- .aios(x)
  if (length(aios)) {
    .Call(mirai_wait, aios, -1)
    if (is_mirai(x)) x$data
    else for (m in x) if (is_mirai(m)) m$data
  }
  invisible(x)
}

`[.mirai` <- function(x, i) {
  aio <- .subset2(x, ".aio")
  if (!is.null(aio)) .Call(mirai_wait, aio, -1)
  x$data
}

race_mirai <- function(x, .compute = NULL) {
  if (is.null(.profile(.compute))) stop("daemons must be set to use this function")
  if (is_mirai(x)) x <- list(x)
  aios <- vector("list", length(x))
  any <- FALSE
  for (i in seq_along(x)) {
    m <- x[[i]]
    if (is_mirai(m)) {
      aio <- .subset2(m, ".aio")
      if (is.null(aio)) {
        # already taken: the lowest resolved index before it still wins
        r <- if (any) .Call(mirai_race, aios[seq_len(i - 1L)], 0) else 0L
        return(invisible(if (r > 0L) r else i))
      }
      aios[i] <- list(aio)
      any <- TRUE
    }
  }
  if (!any) return(invisible(0L))
  invisible(.Call(mirai_race, aios, -1))
}

.stop1 <- function(m) {
  if (!is_mirai(m)) return(FALSE)
  aio <- .subset2(m, ".aio")
  host <- .subset2(m, ".host")
  if (is.null(aio) || is.null(host)) return(FALSE)
  r <- .Call(mirai_cancel, host, aio)
  isTRUE(attr(host, "dispatcher")) && isTRUE(r)
}

stop_mirai <- function(x) {
  if (is.list(x)) {
    r <- logical(length(x))
    for (i in rev(seq_along(x))) r[i] <- .stop1(x[[i]])
    invisible(r)
  } else {
    invisible(.stop1(x))
  }
}

unresolved <- function(x) {
  if (is_mirai(x)) .pending(x)
  else if (inherits(x, "unresolvedValue")) TRUE
  else if (is.list(x)) {
    for (m in x) if (is_mirai(m) && .pending(m)) return(TRUE)
    FALSE
  } else FALSE
}

is_mirai <- function(x) inherits(x, "mirai")

is_mirai_map <- function(x) inherits(x, "mirai_map")

print.mirai <- function(x, ...) {
  cat(if (.pending(x)) "< mirai [] >\n" else "< mirai [$data] >\n")
  invisible(x)
}
