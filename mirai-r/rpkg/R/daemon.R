# The worker: daemon(), the ephemeral entry point, and the evaluation of one task.
#
# A task payload is `list(globals =, args =, expr =)`, plus `everywhere = TRUE` for the tasks of
# an everywhere() round, or `map =` (the elements) and maybe `seeds =` for a chunk of mirai_map(). Globals go into the global environment; the expression is evaluated in
# a fresh environment holding the locals, whose enclosure is the global environment.

#' Is code running on a daemon?
#'
#' @return `TRUE` while R code runs as part of a task evaluated by a daemon (persistent, one-off
#'   or on a sync profile), `FALSE` elsewhere, the host session included.
#'
#' @details Useful in a function that may run in the session or inside a mirai, for example to
#'   avoid starting daemons from a daemon.
#'
#' @seealso [daemon()].
#' @examples
#' on_daemon()
#' daemons(sync = TRUE)
#' mirai(mirai::on_daemon())[]
#' daemons(0)
on_daemon <- function() isTRUE(.opts$on)

# Evaluates one task (or one chunk of mirai_map() elements, see mirai-r/src/chunk.rs); never
# raises an R error. The work is done in C (mirai-r/src/evaluate.rs): globals are assigned in the
# global environment, the expression is evaluated by `.evalcall` in a fresh environment holding
# the locals (enclosure: the global environment), an error becomes `.mirai_error(e, trace)` with
# the trace taken by `.stack_trace()` where it was signalled, an interrupt `.miraiInterrupt`.
# Between the elements of a chunk, `cleanup()` runs when the state differs from `base`.
.evaluate <- function(data, base = NULL, cleanup = NULL) .Call(mirai_eval, data, base, cleanup, .ns)

# Calls from where the error was signalled out to the outermost call inside the user's
# expression, innermost first; called from the calling handler, whose own frame is last.
.stack_trace <- function(env) {
  frames <- sys.frames()
  n <- length(frames) - 2L # this function and the handler
  i <- 0L
  for (k in seq_len(n)) if (identical(frames[[k]], env)) { i <- k; break }
  if (i == 0L || i >= n) return(list())
  calls <- sys.calls()[(i + 1L):n]
  last <- calls[[length(calls)]]
  if (is.call(last) && identical(last[[1L]], quote(.handleSimpleError))) calls <- calls[-length(calls)]
  lapply(rev(calls), .bare)
}

# Daemon-side state the cleanup restores to. Options are snapshotted from `.Options` (which R
# updates in place), as comparing that snapshot costs far less than calling options(). After
# each task `.Call(mirai_clean, base)` removes new global variables and compares the search path
# and options with the baseline by pointer (microseconds), so that `.cleanup()` runs only when
# one of those changed.
.baseline <- function() list(vars = names(.GlobalEnv), search = search(), opts = as.list(.Options))

.cleanup <- function(base) {
  vars <- names(.GlobalEnv)
  new <- vars[!vars %in% base$vars]
  if (length(new)) rm(list = new, envir = .GlobalEnv)
  s <- search()
  if (!identical(s, base$search))
    for (p in s[!s %in% base$search]) try(detach(p, character.only = TRUE), silent = TRUE)
  if (!identical(as.list(.Options), base$opts)) {
    opts <- base$opts
    cur <- names(.Options)
    added <- cur[!cur %in% names(opts)]
    options(opts)
    if (length(added)) options(structure(vector("list", length(added)), names = added))
  }
}

#' Run a daemon
#'
#' `daemon()` is what each daemon process runs: it connects to a host (or its dispatcher), then
#' evaluates the tasks it receives, one at a time, until the connection ends or a limit is
#' reached. It is normally started through a launch command (`Rscript -e
#' 'mirai::daemon("<url>")'`) by [daemons()], [launch_local()] or [launch_remote()], which also
#' write its arguments.
#'
#' @param url the URL of the host to dial, such as `"tcp://10.0.0.5:5555"`. Daemons always dial;
#'   the host listens.
#' @param dispatcher `TRUE` when the host's profile uses a dispatcher, `FALSE` for a host set with
#'   `dispatcher = FALSE`. It must match the host.
#' @param ... not used; unknown arguments are ignored.
#' @param asyncdial `FALSE` to fail at once, with an error such as `"6 | Connection refused"`, if
#'   the host cannot be reached; `TRUE` to keep trying in the background until it can. Leave the
#'   default in packages.
#' @param autoexit what to do when the connection to the host is lost: `TRUE` exit (a busy daemon
#'   is stopped after a 200 ms grace period, even mid-task); `NA` finish the current task, then
#'   exit; `FALSE` keep running and dial the same URL again, for a new host to reuse (such
#'   daemons are stopped by `daemons(NULL)`). The default guarantees that daemons never outlive
#'   their host.
#' @param cleanup `TRUE` to restore, after each task, the global environment (removing new
#'   variables), the search path (detaching packages attached by the task) and the options, as
#'   they were at start-up or after the latest [everywhere()]; `FALSE` to keep what tasks leave.
#' @param output `FALSE` to discard standard output and messages; `TRUE` to keep them, so that
#'   local daemons print to the host's console.
#' @param idletime milliseconds without a task after which the daemon exits (code 1).
#' @param walltime milliseconds after start after which the daemon exits (code 2); checked as a
#'   task arrives, which is then the last one.
#' @param maxtasks the number of tasks after which the daemon exits (code 3).
#' @param tlscert for TLS URLs, what the daemon needs to check the host (and to prove itself to
#'   it): a path to a PEM file with the certificate authority, or `c(<PEM text>, <PEM text or
#'   "">)`. Launch commands embed it.
#' @param rs a 7-integer L'Ecuyer-CMRG `.Random.seed` to start from; written into launch
#'   commands by the host, not given by users.
#'
#' @return The exit code, invisibly: 0 the connection ended, 1 idle time, 2 wall time, 3 task
#'   limit reached (see [nextcode()]).
#'
#' @details Before exiting on `maxtasks` or `walltime`, a daemon marks its last reply as such and
#'   waits for the host to acknowledge it, so that the reply is delivered and no further task is
#'   sent to it; queued tasks wait for other daemons. [launch_local()] can replace daemons that
#'   exited this way.
#'
#'   Each task is evaluated as described in [mirai()]: objects of `...` in the global
#'   environment, `.args` in a local environment. An error becomes a `miraiError` and an
#'   interrupt (as sent by [stop_mirai()]) a `miraiInterrupt`: neither stops the daemon.
#'
#' @seealso [daemons()], [launch_local()], [launch_remote()], [nextcode()].
#' @examples
#' # A host listens; a daemon that stops after two tasks joins it.
#' daemons(url = local_url(), .compute = "limited")
#' launch_remote(1, maxtasks = 2, .compute = "limited") # the command a daemon would run
#' launch_local(1, maxtasks = 2, .compute = "limited")  # run it here, in the background
#' mirai(mirai::on_daemon(), .compute = "limited")[]
#' info("limited")[["connections"]]
#' daemons(0, .compute = "limited")
#' nextcode(3L)
#'
#' \dontrun{
#' # on another machine, after `daemons(url = "tcp://10.0.0.5:5555")` on the host
#' mirai::daemon("tcp://10.0.0.5:5555", idletime = 60000)
#' }
daemon <- function(url, dispatcher = TRUE, ..., asyncdial = FALSE, autoexit = TRUE,
                   cleanup = TRUE, output = FALSE, idletime = Inf, walltime = Inf,
                   maxtasks = Inf, tlscert = NULL, rs = NULL) {
  if (!is.logical(output) || length(output) != 1L || is.na(output)) stop("`output` must be TRUE or FALSE")
  if (!length(autoexit)) stop("`autoexit` must be TRUE, NA or FALSE")
  # As before these checks: anything but TRUE (or "TRUE") is FALSE.
  cleanup <- isTRUE(as.logical(cleanup[1L]))
  if (!output) {
    devnull <- file(nullfile(), open = "w")
    sink(devnull)
    sink(devnull, type = "message")
    on.exit({
      sink(type = "message")
      sink()
      close(devnull)
    })
  }
  prev <- .opts$on
  .opts$on <- TRUE
  on.exit(.opts$on <- prev, add = TRUE)
  if (is.numeric(rs)) assign(".Random.seed", as.integer(rs), envir = .GlobalEnv)
  # Any true non-NA value behaves like TRUE (spec section 4, item 2).
  autoexit <- if (is.na(autoexit[1L])) NA else isTRUE(as.logical(autoexit[1L]))
  base <- .baseline()
  hooks <- NULL
  init <- function(stream, serial) {
    if (!is.numeric(rs) && length(stream)) assign(".Random.seed", as.integer(stream), envir = .GlobalEnv)
    hooks <<- if (length(serial)) unserialize(serial)
    base <<- .baseline()
    hooks
  }
  # The cleanup guards itself: an error or a late interrupt must not replace the result.
  clean <- function() tryCatch(.cleanup(base), error = function(e) NULL, interrupt = function(e) NULL)
  evaluate <- function(data, everywhere) {
    # Boxed: a value that is the empty symbol (`substitute()`) cannot be read from a variable.
    res <- list(.Call(mirai_eval, data, if (cleanup) base, clean, .ns))
    if (everywhere || (is.list(data) && !is.null(.subset2(data, "everywhere")))) {
      tryCatch(base <<- .baseline(), error = function(e) NULL, interrupt = function(e) NULL)
    } else if (cleanup && .Call(mirai_clean, base)) clean()
    .subset2(res, 1L)
  }
  url <- as.character(url)[1L]
  if (length(tlscert)) attr(url, "tlscert") <- .read_pem(tlscert)
  attr(url, "transport") <- getOption("mirai.transport")
  attr(url, "log") <- getOption("mirai.log")
  invisible(.Call(mirai_daemon_run, url, isTRUE(asyncdial), autoexit, as.double(idletime),
                  as.double(walltime), as.double(maxtasks), init, evaluate))
}

# The bridge's settings from R options, for `mirai_host_start` (docs/r-bridge.md, "Options").
.bridge_opts <- function()
  list(transport = getOption("mirai.transport"), pipeline = getOption("mirai.pipeline"),
       log = getOption("mirai.log"))

# `call` preceded by the options a daemon started on this machine must share with its host (an
# R process does not inherit them): the transport backend, and the log level.
.child_call <- function(call) {
  o <- Filter(Negate(is.null), list(mirai.transport = getOption("mirai.transport"),
                                    mirai.log = getOption("mirai.log")))
  if (!length(o)) return(call)
  vals <- vapply(o, function(v) deparse(as.character(v)[1L]), "")
  sprintf("options(%s);%s", paste(names(o), vals, sep = "=", collapse = ","), call)
}

# Single-task entry point of ephemeral mirai: output discarded, no cleanup, exits after one task.
.daemon <- function(url) daemon(url, dispatcher = FALSE, cleanup = FALSE, maxtasks = 1)

# Evaluates a task in the host process on behalf of a sync profile. The host's global
# environment is swapped for the profile's saved daemon global environment during evaluation.
.sync_eval <- function(prof, data, everywhere) {
  data <- unserialize(serialize(data, NULL, version = 3L))
  host <- as.list.environment(.GlobalEnv, all.names = TRUE)
  rm(list = names(host), envir = .GlobalEnv)
  list2env(prof$genv, envir = .GlobalEnv)
  prev <- .opts$on
  .opts$on <- TRUE
  base <- list(vars = prof$gvars, search = search(), opts = as.list(.Options))
  on.exit({
    .opts$on <- prev
    prof$genv <- as.list.environment(.GlobalEnv, all.names = TRUE)
    rm(list = names(.GlobalEnv), envir = .GlobalEnv)
    list2env(host, envir = .GlobalEnv)
  })
  res <- list(.evaluate(data)) # boxed, as in daemon()
  if (everywhere) prof$gvars <- names(.GlobalEnv) else .cleanup(base)
  .subset2(res, 1L)
}
