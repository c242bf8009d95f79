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
# c("mirai", "recvAio"), attribute `id`, an active binding `data` and, while it waits, `aio`:
# an Aio handle nanonext's functions understand (mirai-r/src/aiokind.rs). Its task handle is
# `.Call(mirai_aio, m)` (a mirai of mirai() keeps its task in the bridge, keyed by the mirai
# itself; others bind it as `.aio`), and `.hooks` with a serialization config; once settled it
# holds `value` and `aio` is an integer (1, or 0 for an error value). Only an ephemeral mirai
# keeps its one-off host as `.host`, which keeps that host alive (its finalizer resets it) while
# the task runs. Bindings are made with assign(): `$<-` does nothing on a recvAio.
.mk_mirai <- function(aio, hooks, host) {
  m <- .Call(mirai_wrap, aio, hooks)
  if (!is.null(host)) assign(".host", host, envir = m)
  m
}

.mk_resolved <- function(v) {
  m <- .Call(mirai_wrap, NULL, NULL)
  assign("value", v, envir = m)
  assign("aio", if (is.integer(v) && inherits(v, "errorValue")) 0L else 1L, envir = m)
  m
}

# Pending: has a handle whose task has not resolved (never consumes).
.pending <- function(m) .Call(mirai_pending, m)

# Submits `data` to profile `prof` (NULL: ephemeral); NULL if `try` and not admitted.
.submit <- function(prof, data, timeout, try = FALSE) {
  if (is.null(prof)) return(.ephemeral(data, timeout))
  if (prof$sync) {
    m <- .mk_resolved(.sync_eval(prof, .seeded(prof, data), FALSE))
    nanonext::cv_signal(prof$cv)
    return(m)
  }
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
#' Evaluate an expression asynchronously
#'
#' `mirai()` sends an R expression to another R process for evaluation and returns at once with
#' a *mirai*: a placeholder that takes the value of the expression when the evaluation is done.
#' The calling session carries on in the meantime.
#'
#' @param .expr the expression to evaluate, captured unevaluated; wrap several statements in
#'   `{}`. If it is a single symbol bound, as seen from the caller, to a language object (a call,
#'   a symbol or an `expression` vector, as made by [quote()]), that object is evaluated
#'   instead.
#' @param ... objects placed in the daemon's **global environment** before the evaluation:
#'   either all named (`name = value`), or a single environment, all of whose objects are sent
#'   (`.Random.seed` excepted). They behave as top-level definitions, so functions passed here
#'   can call one another.
#' @param .args objects made **local** to the evaluation: a list or vector whose elements are all
#'   named, or an environment. They live in a fresh environment whose enclosure is the daemon's
#'   global environment.
#' @param .timeout `NULL` for no time limit, or a number of milliseconds after which the mirai
#'   resolves to the error value 5 (timed out). With a dispatcher the task is also cancelled, as
#'   by [stop_mirai()]; without one the daemon finishes the evaluation and its reply is dropped.
#' @param .compute the name of a compute profile, or `NULL` for the current default profile
#'   (`"default"`, unless changed by [with_daemons()], [local_daemons()] or
#'   `with(daemons(...), ...)`).
#'
#' @return A `mirai`, invisibly: an environment of class `c("mirai", "recvAio")` with an integer
#'   attribute `id`, unique and increasing within the R session. Its field `$data` is the value
#'   once the task is resolved and the 'unresolved' sentinel (a logical `NA` of class
#'   `unresolvedValue`, see [unresolved()]) before; reading it never waits. `x[]` waits for the
#'   value and returns it. A mirai prints as `< mirai [] >` while pending and
#'   `< mirai [$data] >` once resolved.
#'
#' @details
#' **Where it runs.** If [daemons()] are set on the profile, the task goes to them: through the
#' dispatcher's first-in first-out queue (the default), or straight to a daemon with
#' `dispatcher = FALSE`. If none are set, each call starts a one-off R process for its task
#' alone (an *ephemeral* mirai), which suits a few long tasks but is slow for many short ones.
#' On a profile made with `daemons(sync = TRUE)` the expression is evaluated in the calling
#' process before `mirai()` returns, which helps debugging.
#'
#' **Nothing is captured automatically.** The daemon is a separate R session. Every variable
#' and user-defined function that the expression uses must be passed through `...` or
#' `.args`, and package functions called as `pkg::fun()` or after `library(pkg)` within the
#' expression. `mirai(expr, environment())` sends all objects of the calling frame.
#'
#' **The value.** Either the value of the expression or an error value ([is_error_value()]):
#' a `miraiError` if the evaluation raised an error (message, call and stack trace are kept,
#' see [is_mirai_error()]), a `miraiInterrupt` if it was interrupted, or an integer error
#' value: 5 timed out; 7 the profile was reset before the task could be sent; 19 the daemon
#' was lost mid-task, or the profile was reset; 20 cancelled by [stop_mirai()].
#'
#' With a `memory` budget on the dispatcher ([daemons()]), `mirai()` waits (interruptibly)
#' while the queued tasks fill the budget; [try_mirai()] returns `NULL` instead. With a `seed`
#' on the profile, each mirai receives the next reproducible random-number stream.
#'
#' @seealso [mirai_map()] to map a function over a list, [everywhere()] to set up each daemon,
#'   [call_mirai()], [collect_mirai()] and [race_mirai()] to wait, [unresolved()] to poll,
#'   [stop_mirai()] to cancel, [daemons()] for persistent daemons.
#' @examples
#' # no daemons set: a one-off process evaluates the task
#' m <- mirai(x + y, x = 1, y = 2)
#' m[]
#'
#' daemons(1)
#' # `...` goes to the daemon's global environment, `.args` stays local
#' m <- mirai({
#'   Sys.sleep(0.1)
#'   c(a_global = exists("a", envir = globalenv()), b_global = exists("b", envir = globalenv()))
#' }, a = 1, .args = list(b = 2))
#' m
#' call_mirai(m)$data
#' m
#'
#' # an error is returned as an error value, not raised
#' m <- mirai(stop("no luck"))
#' m[]
#' is_mirai_error(m$data)
#'
#' # a stored expression
#' e <- quote(sqrt(v))
#' mirai(e, .args = list(v = 16))[]
#'
#' # a time limit
#' m <- mirai(Sys.sleep(2), .timeout = 100)
#' m[]
#' daemons(0)
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

#' Submit a task unless the memory budget is full
#'
#' `try_mirai()` is [mirai()] for code that must never wait: when the profile's dispatcher has
#' a `memory` budget and the tasks already queued fill it, it returns `NULL` at once instead of
#' waiting for room.
#'
#' @inheritParams mirai
#'
#' @return A `mirai` (invisibly), as from [mirai()], or `NULL` (invisibly) when the task was not
#'   admitted.
#'
#' @details A refused call has no effect: no task is created, no mirai id and no random-number
#'   stream are used, and it costs only a look at a counter, so it can be repeated in a loop.
#'   Admission compares the bytes queued with the budget *before* adding the task, so one
#'   admitted task may take the queue over the budget. Without a dispatcher, without a budget,
#'   and on an unset or sync profile, `try_mirai()` behaves exactly like `mirai()`.
#'
#' @seealso [mirai()]; [daemons()] (argument `memory`); [status()] (field `memory`).
#' @examples
#' daemons(1, memory = 1)                   # at most 1 MB of queued tasks
#' busy <- mirai(Sys.sleep(0.3))             # takes the only daemon
#' a <- try_mirai(length(v), v = raw(2e6))  # admitted: the queue was empty
#' b <- try_mirai(length(v), v = raw(2e6))  # refused: 2 MB are queued
#' is.null(b)
#' a[]
#' daemons(0)
try_mirai <- function(.expr, ..., .args = list(), .timeout = NULL, .compute = NULL) {
  missing(.expr) && stop(.msg_expr)
  expr <- substitute(.expr)
  data <- list(globals = if (...length()) .globals(list(...), sys.call()) else list(),
               args = if (length(.args)) .locals(.args, sys.call()) else list(),
               expr = if (is.symbol(expr)) .capture(expr, parent.frame()) else expr)
  prof <- if (is.null(.compute)) ..[[.opts$default]] else .profile(.compute)
  invisible(.submit(prof, data, .timeout_ms(.timeout, prof, sys.call()), try = TRUE))
}

#' Evaluate an expression on every daemon
#'
#' `everywhere()` runs set-up code on each daemon of a profile (loading packages, defining
#' helper functions, opening connections) so that it is in place for the tasks that follow.
#'
#' @inheritParams mirai
#' @param .expr the expression to evaluate on each daemon, as in [mirai()].
#' @param ... objects for each daemon's global environment, as in [mirai()]; here they persist
#'   after the evaluation, so `everywhere({}, f = f)` exports `f` to all daemons.
#' @param .min with a dispatcher, the least number of daemons to reach. `max(.min, <daemons
#'   connected now>)` tasks are sent, so daemons that are still starting up run the set-up too
#'   before they take other work.
#'
#' @return A [mirai_map()] of the tasks sent (one mirai per daemon reached), invisibly.
#'
#' @details What the evaluation leaves in a daemon's global environment, search path (attached
#'   packages) and options becomes that daemon's new baseline: the cleanup that normally follows
#'   each task (see `cleanup` in [daemon()]) keeps it from then on.
#'
#'   With a dispatcher, each task goes to a different daemon, and the call is a synchronisation
#'   point: tasks submitted afterwards start only once every `everywhere()` task has been taken
#'   by a daemon (tasks submitted before it run first, as usual). Without a dispatcher, the tasks
#'   are spread over the connected daemons round-robin, best effort. On a sync profile the
#'   expression is evaluated once.
#'
#'   No random seed is sent with these tasks, and the profile's per-mirai stream (`seed` in
#'   [daemons()]) does not advance. The profile must be set, or an error says how to set it.
#'
#' @seealso [daemons()], [mirai()].
#' @examples
#' daemons(2)
#' everywhere(library(stats), k = 10)
#' mirai(k * 2)[]
#' # each daemon runs the expression once
#' unlist(everywhere(Sys.getpid())[])
#' daemons(0)
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
#' Wait for mirai to resolve
#'
#' `call_mirai()` blocks until a mirai, or every mirai in a list, is resolved, and returns its
#' argument so that `$data` can be read at once.
#'
#' @param x a mirai, or a list of mirai such as a [mirai_map()]. Other elements are left alone.
#'
#' @return `x`, invisibly, with the `$data` of each mirai filled in.
#'
#' @details The wait can be interrupted by the user (Ctrl+C or Esc): that ends the wait only,
#'   and the tasks carry on. `x[]` on a single mirai waits in the same way and returns the value
#'   itself.
#'
#' @seealso [collect_mirai()] to get the values, [race_mirai()] to wait for the first of
#'   several, [unresolved()] to check without waiting.
#' @examples
#' daemons(1)
#' m <- mirai({ Sys.sleep(0.1); "done" })
#' call_mirai(m)$data
#' ms <- list(a = mirai(1), b = mirai(2))
#' str(lapply(call_mirai(ms), `[[`, "data"))
#' daemons(0)
call_mirai <- function(x) {
  .Call(mirai_collect, x, FALSE)
  invisible(x)
}

`[.mirai` <- function(x, i) .Call(mirai_value, x)

#' Wait for the first of several mirai
#'
#' `race_mirai()` returns as soon as one element of a list of mirai is resolved, so that
#' results can be handled in the order they arrive.
#'
#' @param x a list of mirai (or a single mirai). Elements that are not mirai are skipped.
#' @param .compute the compute profile the mirai belong to, or `NULL` for the current default.
#'
#' @return The integer index of the first resolved element, in list order, invisibly: if one is
#'   resolved already it returns at once, and when several resolve together the lowest index
#'   wins. `0L` for a list without any mirai.
#'
#' @details Waiting is driven by completion events of the profile, not by polling, and can be
#'   interrupted by the user. Mirai of other profiles are still noticed, by a look every
#'   400 ms. The profile must be set: `"daemons must be set to use this function"` otherwise.
#'
#'   The usual loop takes the winner out of the list and races the rest:
#'   `while (length(r)) { i <- race_mirai(r); use(r[[i]]$data); r <- r[-i] }`.
#'   Use a plain list here: `[` on a `mirai_map` collects it rather than subsetting.
#'
#' @seealso [call_mirai()], [unresolved()].
#' @examples
#' daemons(2)
#' r <- lapply(c(0.3, 0.1, 0), function(s) mirai({ Sys.sleep(s); s }, s = s))
#' while (length(r)) {
#'   i <- race_mirai(r)
#'   cat("finished:", r[[i]]$data, "\n")
#'   r <- r[-i]
#' }
#' daemons(0)
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

#' Cancel a mirai
#'
#' `stop_mirai()` resolves a pending mirai at once to the error value 20 (operation canceled)
#' and, with a dispatcher, withdraws its task: a queued task is removed and never runs, a
#' running one is interrupted on its daemon.
#'
#' @param x a mirai, or a list of mirai such as a [mirai_map()].
#'
#' @return Invisibly, `TRUE` if the dispatcher still held the task (queued or running) and so
#'   cancelled it, `FALSE` otherwise; a logical vector for a list, in its order. Anything that
#'   is not a mirai gives `FALSE`.
#'
#' @details A mirai that is already resolved keeps its value. Without a dispatcher (direct
#'   mode, ephemeral or sync mirai) the local mirai still becomes 20, but the daemon carries on
#'   with the task and `FALSE` is returned. A list is cancelled from its last element to its
#'   first, so that cancelling running tasks does not hand their daemons the queued tasks about
#'   to be cancelled too.
#'
#'   An interrupted daemon survives and takes the next task. Cancellation is best effort:
#'   compiled code that does not check for interrupts runs to its end, and side effects may
#'   already have happened.
#'
#' @seealso [mirai()] (argument `.timeout`), [mirai_map()] (option `.stop`).
#' @examples
#' daemons(1)
#' m1 <- mirai(Sys.sleep(5))   # running
#' m2 <- mirai("never run")    # queued behind it
#' Sys.sleep(0.1)              # let the first one start
#' print(stop_mirai(list(m1, m2)))
#' m1$data
#' m2$data
#' mirai("the daemon is still there")[]
#' daemons(0)
stop_mirai <- function(x) {
  if (is.list(x)) {
    r <- logical(length(x))
    for (i in rev(seq_along(x))) r[i] <- .stop1(x[[i]])
    invisible(r)
  } else {
    invisible(.stop1(x))
  }
}

#' Check whether a mirai is resolved
#'
#' `unresolved()` tells, without waiting, whether a mirai is still pending.
#'
#' @param x a mirai, a list of mirai, or the value of a mirai's `$data`.
#'
#' @return `TRUE` if `x` is a pending mirai, a list holding at least one pending mirai, or the
#'   'unresolved' sentinel that `$data` gives while pending; `FALSE` otherwise.
#'
#' @details Test `$data` with `unresolved()` rather than [is.na()]: the sentinel is a logical
#'   `NA` of class `unresolvedValue`, and a task may well return `NA` itself.
#'
#'   This is nanonext's `unresolved()`, re-exported: it works on any Aio, a mirai being one.
#'
#' @seealso [call_mirai()] to wait.
#' @examples
#' daemons(1)
#' m <- mirai({ Sys.sleep(0.2); NA })
#' unresolved(m)
#' m$data
#' unresolved(m$data)
#' while (unresolved(m)) Sys.sleep(0.05)
#' m$data
#' unresolved(m$data)
#' daemons(0)
#' @usage unresolved(x)
#' @name unresolved
NULL

#' Is an object a mirai or a mirai map?
#'
#' @param x any object.
#'
#' @return `is_mirai()`: `TRUE` for an object of class `mirai`. `is_mirai_map()`: `TRUE` for a
#'   `mirai_map`; its collected value, a plain list, is not one.
#'
#' @seealso [mirai()], [mirai_map()].
#' @examples
#' daemons(sync = TRUE)
#' m <- mirai(1)
#' is_mirai(m)
#' is_mirai(m[])
#' mp <- mirai_map(1:2, sqrt)
#' is_mirai_map(mp)
#' is_mirai_map(mp[])
#' daemons(0)
is_mirai <- function(x) inherits(x, "mirai")

#' @rdname is_mirai
is_mirai_map <- function(x) inherits(x, "mirai_map")

print.mirai <- function(x, ...) {
  cat(if (.pending(x)) "< mirai [] >\n" else "< mirai [$data] >\n")
  invisible(x)
}

# An extension beyond mirai 2.7 (README, "Reliability"): how many times the task of mirai `x`
# was sent to a daemon. 1 normally; more when it was sent again after its daemon was lost,
# as a profile set with `daemons(retry = )` does; 0 while it waits in the queue.
#' Number of times a task was sent
#'
#' `mirai_attempts()` says how many times the task of a mirai was sent to a daemon. It is an
#' addition of this implementation to the mirai 2.7 API, for profiles set with
#' `daemons(retry = )`.
#'
#' @param x a mirai.
#'
#' @return An integer: 1 for a task sent once (the normal case), more when it was sent again
#'   after its daemon was lost, and 0 while it is still queued.
#'
#' @details By default a task whose daemon is lost mid-task (killed, crashed or cut off)
#'   resolves to the error value 19. With `daemons(n, retry = k)` it is sent again, ahead of the
#'   queue, up to `k` more times before it resolves to 19. Retry only tasks that are safe to run
#'   twice: the lost daemon may have done part of the work.
#'
#' @seealso [daemons()] (arguments `retry` and `repair`), `vignette("reliability", package =
#'   "mirai")`.
#' @examples
#' daemons(2, retry = 1)
#' m <- mirai(1 + 1)
#' m[]
#' mirai_attempts(m)
#' # a task that kills its daemon: sent twice, then 19 (connection reset)
#' m <- mirai(tools::pskill(Sys.getpid(), tools::SIGKILL))
#' m[]
#' mirai_attempts(m)
#' daemons(0)
mirai_attempts <- function(x) .Call(mirai_attempts_of, x)
