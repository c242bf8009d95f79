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

# A mirai is built and settled in C (mirai-r/src/aio.rs): an environment with class
# c("mirai", "recvAio"), attribute `id` and an active binding `data`; while it waits its task
# handle is `.Call(mirai_aio, m)` (a mirai of mirai() keeps its task in the bridge, keyed by
# the mirai itself; others bind it as `.aio`), and `.hooks` with a serialization config; once settled it
# holds `value`. Only an ephemeral mirai keeps its one-off host as `.host`, which keeps that host
# alive (its finalizer resets it) while the task runs.
.mk_mirai <- function(aio, hooks, host) {
  m <- .Call(mirai_wrap, aio, hooks)
  if (!is.null(host)) m$.host <- host
  m
}

.mk_resolved <- function(v) {
  m <- .Call(mirai_wrap, NULL, NULL)
  m$value <- v
  m
}

# Pending: has a handle whose task has not resolved (never consumes).
.pending <- function(m) .Call(mirai_pending, m)

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
  if (!is.null(prof$seed)) data <- .seeded(prof, data)
  .Call(mirai_async, host, data, timeout, prof$serial)
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
  host <- .Call(mirai_host_start, local_url(), FALSE, NA_real_, NULL, NULL, .bridge_opts())
  url <- .Call(mirai_host_url, host)
  .Call(mirai_host_launch, host, .rscript(), c("-e", .child_call(sprintf("mirai:::.daemon(\"%s\")", url))))
  .mk_mirai(.Call(mirai_submit, host, data, timeout, NULL), NULL, host)
}

# `.timeout` is NULL or one number of milliseconds (NA: none); sync profiles ignore it whatever it
# is, other profiles refuse anything else or a negative number (naming the user's argument).
.timeout_ok <- function(x)
  is.null(x) || length(x) == 1L && (is.numeric(x) && !isTRUE(x < 0) || is.logical(x) && is.na(x))
.timeout_ms <- function(x, prof, call) {
  if (.timeout_ok(x)) return(if (!is.null(x)) as.double(x))
  if (!is.null(prof) && prof$sync) return(NULL)
  stop(simpleError("`.timeout` must be NULL or one non-negative number (milliseconds)", call))
}

# mirai() and try_mirai() are on every task's path. mirai() evaluates its arguments in the
# documented order (`...`, then `.args`, then the expression capture, where only a symbol may stand
# for a language object, see .capture) and hands them to one .Call that builds the payload,
# submits it and returns the mirai (mirai-r/src/aio.rs; it also does the capture, from the
# caller's environment). That call returns NULL when R must do the work: arguments to validate
# or convert (with the spec's errors), a symbol whose lookup could run R code (an active binding,
# an unforced promise), or a profile that is unset (ephemeral), sync, memory-gated or seeded.
# The payload is then `list(globals =, args =, expr =)`.
mirai <- function(.expr, ..., .args = list(), .timeout = NULL, .compute = NULL) {
  missing(.expr) && stop(.msg_expr)
  globals <- list()
  if (...length()) {
    globals <- list(...)
    nms <- names(globals)
    if (is.null(nms) || !all(nzchar(nms))) globals <- .globals(globals, sys.call())
  }
  args <- .args
  if (length(args)) args <- .locals(args, sys.call())
  expr <- substitute(.expr)
  if (is.null(.timeout) || .timeout_ok(.timeout)) {
    m <- .Call(mirai_go, expr, globals, args, .timeout, .compute, environment())
    if (!is.null(m)) return(invisible(m))
  }
  if (is.symbol(expr)) expr <- .capture(expr, parent.frame())
  prof <- if (is.null(.compute)) ..[[.opts$default]] else .profile(.compute)
  data <- list(globals = globals, args = if (is.list(args)) args else list(), expr = expr)
  invisible(.submit(prof, data, .timeout_ms(.timeout, prof, sys.call())))
}

try_mirai <- function(.expr, ..., .args = list(), .timeout = NULL, .compute = NULL) {
  missing(.expr) && stop(.msg_expr)
  expr <- substitute(.expr)
  data <- list(globals = if (...length()) .globals(list(...), sys.call()) else list(),
               args = if (length(.args)) .locals(.args, sys.call()) else list(),
               expr = if (is.symbol(expr)) .capture(expr, parent.frame()) else expr)
  prof <- if (is.null(.compute)) ..[[.opts$default]] else .profile(.compute)
  invisible(.submit(prof, data, .timeout_ms(.timeout, prof, sys.call()), try = TRUE))
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
    if (prof$dispatcher && (!is.numeric(.min) || length(.min) != 1L || is.na(.min) || .min < 0))
      stop(simpleError("`.min` must be one non-negative number", sys.call()))
    min <- if (prof$dispatcher) as.integer(min(.min, .Machine$integer.max)) else prof$n
    aios <- .Call(mirai_everywhere, prof$host, data, min, prof$serial)
    hooks <- prof$serial
    lapply(aios, function(aio) .Call(mirai_wrap, aio, hooks))
  }
  x <- `class<-`(x, "mirai_map")
  prof$everywhere <- x
  invisible(x)
}

# Waiting and settling happen in one .Call (mirai-r/src/aio.rs).
call_mirai <- function(x) {
  .Call(mirai_collect, x, FALSE)
  invisible(x)
}

`[.mirai` <- function(x, i) .Call(mirai_value, x)

race_mirai <- function(x, .compute = NULL) {
  if (is.null(.profile(.compute))) stop("daemons must be set to use this function")
  if (is_mirai(x)) x <- list(x)
  aios <- vector("list", length(x))
  any <- FALSE
  for (i in seq_along(x)) {
    m <- x[[i]]
    if (is_mirai(m)) {
      aio <- .Call(mirai_aio, m)
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

# TRUE if a dispatcher still held the task; the mirai resolves to 20 unless already resolved.
.stop1 <- function(m) .Call(mirai_stop, m)

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

# An extension beyond mirai 2.7 (README, "Reliability"): how many times the task of mirai `x`
# was sent to a daemon. 1 normally; more when it was sent again after its daemon was lost,
# as a profile set with `daemons(retry = )` does; 0 while it waits in the queue.
mirai_attempts <- function(x) .Call(mirai_attempts_of, x)
