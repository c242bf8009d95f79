# Daemons and compute profiles: daemons(), status(), info(), profile helpers.
#
# A profile is an environment in the registry `..` with fields: compute, url, n, dots, tls,
# sync, dispatcher, host (engine handle), cv (nanonext condition variable the engine signals
# once per completed task), gate (memory budget in force), serial (hooks),
# stream, seed, everywhere (latest batch); sync profiles also keep genv/gvars, the saved
# daemon global environment and its cleanup baseline.

#' Set up persistent daemons
#'
#' `daemons()` creates (or resets) a *compute profile*: a pool of persistent background R
#' processes, the daemons, that evaluate the tasks of [mirai()], [mirai_map()] and
#' [everywhere()] sent to that profile. Daemons can run on this machine or dial in from other
#' machines over the network.
#'
#' @param n the number of local daemons to start (when `url` is `NULL`); `0` resets the profile,
#'   and `NULL` resets it after telling every connected daemon to exit. With `url` and `remote`,
#'   the number of daemons to launch through `remote`.
#' @param url `NULL` for local daemons, or the URL at which to listen for daemons that dial in,
#'   such as `"tcp://10.0.0.5:5555"` (see [host_url()]). Schemes: `tcp://`, `tls+tcp://`,
#'   `ws://`, `wss://`, `ipc://` and, on Linux, `abstract://`. Port `0` picks a free port; the
#'   chosen one shows in [status()].
#' @param remote a launch configuration for remote daemons, made by [ssh_config()],
#'   [cluster_config()], [http_config()] or [remote_config()]. Used with `url`: after the profile
#'   is set up, `n` daemons are launched through it with [launch_remote()].
#' @param dispatcher `TRUE` (the default) to route tasks through a dispatcher, which sends each
#'   task to the next idle daemon in first-in first-out order and supports cancellation,
#'   timeouts, `memory` and `serial`. `FALSE` connects daemons straight to the session: tasks
#'   are dealt round-robin as they are submitted and may queue behind a busy daemon.
#' @param ... arguments passed to [daemon()] by the launch commands of this profile, such as
#'   `maxtasks`, `idletime`, `walltime`, `cleanup`, `output`, `autoexit` and `tlscert`. Only
#'   logical and numeric values (and `tlscert`) are used.
#' @param sync `TRUE` for a synchronous profile: each mirai is evaluated in this R session when
#'   it is created, as if on a daemon. Useful for debugging (`browser()` works) and for
#'   running code written for daemons without any; only `seed` and `.compute` then matter.
#' @param seed `NULL` (the default) for one random-number stream per daemon: sound, but results
#'   depend on which daemon ran which task. A single integer for one stream per mirai, taken in
#'   submission order, which makes results reproducible whatever the number of daemons.
#' @param memory a budget in megabytes (10^6 bytes) for the tasks waiting in the dispatcher's
#'   queue. While it is full, [mirai()] waits and [try_mirai()] returns `NULL`. `NULL`, `0`, `NA`
#'   or `Inf` for no budget. Needs the dispatcher.
#' @param serial a configuration made by [serial_config()], to serialize objects of given
#'   classes with custom functions in both directions. `NULL` uses the configurations
#'   registered with [register_serial()], if any. Needs the dispatcher.
#' @param tls for `tls+tcp://` and `wss://` URLs, your own credentials: a PEM file holding the
#'   certificate (and its chain) and the private key, or `c(<certificate PEM>, <key PEM>)`.
#'   `NULL` generates single-use credentials for the profile.
#' @param pass the password of an encrypted private key in `tls`, preferably as a function that
#'   returns it (so it is not kept in the call).
#' @param retry (an addition to the mirai 2.7 API) how many times a task whose daemon is lost
#'   mid-task is sent again before it resolves to 19, a whole number from 0 (the default: never)
#'   to 1000. See [mirai_attempts()].
#' @param repair (an addition to the mirai 2.7 API) `TRUE` to relaunch local daemons that crash
#'   (killed by a signal, or exiting with an error), with a back-off, so that the pool keeps its
#'   `n` daemons.
#' @param .compute the name of the compute profile, or `NULL` for the current default profile.
#'   Each name is an independent pool, for example `"cpu"` and `"gpu"`.
#'
#' @return Invisibly, `TRUE` (of class `miraiDaemons`, printing as `[1] TRUE`) once a profile is
#'   set, or `FALSE` after a reset. The `TRUE` value can be given to [with()]:
#'   `with(daemons(2), expr)` evaluates `expr` with the profile as the default and resets it
#'   afterwards (see [with_daemons()]).
#'
#' @details
#' **Local daemons.** `daemons(n)` starts `n` R processes that connect over a local socket, and
#' returns once they are all connected. Each then takes tasks until the profile is reset.
#'
#' **Remote daemons.** `daemons(url = host_url())` listens and returns at once; daemons join at
#' any time by running the command that [launch_remote()] prints, or are started through
#' `remote`. Daemons can come and go while the profile is set; queued tasks wait for them.
#'
#' **TLS.** With a `tls+tcp://` URL and `tls = NULL`, the session makes single-use credentials
#' for the profile and embeds what the daemons need in their launch commands, which should then
#' be treated as secrets. See `vignette("remote", package = "mirai")`.
#'
#' **Resetting.** `daemons(0)` resets the profile: its pending mirai resolve at once (to 19,
#' connection reset), its daemons exit (or, if started with `autoexit = FALSE`, wait for a new
#' host), and later mirai on the profile run in one-off processes. `daemons(NULL)` also tells
#' every connected daemon to exit, whatever its `autoexit`. Calling `daemons()` on a set
#' profile resets it first, but only once the new arguments have been checked.
#'
#' Creating a profile draws one random number from the session's generator, so
#' `set.seed(1); daemons(2)` gives the daemons reproducible streams.
#'
#' @seealso [status()] and [info()] to inspect a profile, [launch_local()] and
#'   [launch_remote()] to add daemons, [daemon()] for what runs in each, [everywhere()] to set
#'   them up, `vignette("mirai", package = "mirai")` for a quick reference.
#' @examples
#' daemons(2)
#' status()
#' mirai_map(1:2, function(x) Sys.getpid())[.flat]
#' daemons(0)
#'
#' # reproducible random numbers, whatever the number of daemons
#' daemons(1, seed = 42)
#' a <- mirai_map(1:3, function(i) runif(1))[.flat]
#' daemons(2, seed = 42)
#' b <- mirai_map(1:3, function(i) runif(1))[.flat]
#' identical(a, b)
#' daemons(0)
#'
#' # a second, independent profile; and a synchronous one for debugging
#' daemons(1, .compute = "other")
#' mirai("on the other profile", .compute = "other")[]
#' daemons(0, .compute = "other")
#' daemons(sync = TRUE)
#' mirai(Sys.getpid() == pid, pid = Sys.getpid())[]
#' daemons(0)
#'
#' \dontrun{
#' # listen on the network, and launch daemons over SSH
#' daemons(url = host_url(tls = TRUE, port = 5555), remote = ssh_config("ssh://node1"))
#' }
daemons <- function(n, url = NULL, remote = NULL, dispatcher = TRUE, ..., sync = FALSE,
                    seed = NULL, memory = NULL, serial = NULL, tls = NULL, pass = NULL,
                    retry = 0L, repair = FALSE, .compute = NULL) {
  .compute <- .check_compute(.compute)
  .check_reliability(retry, repair)
  if (isTRUE(sync)) {
    url <- sprintf("inproc://%s", .hex24())
    dispatcher <- FALSE
    remote <- serial <- tls <- pass <- NULL
  }
  if (is.null(url)) {
    if (is.null(n)) return(.reset(.compute, exit = TRUE))
    is.numeric(n) || stop("`n` must be numeric, did you mean to provide `url`?")
    n <- .check_n(n)
    if (n == 0L) return(.reset(.compute))
    .within_map() && stop("cannot create local daemons from within mirai map")
    .check_dispatcher(dispatcher)
    dots <- .check_profile_args(list(...), seed, memory, serial)
    .reset(.compute)
    prof <- .new_profile(.compute, seed, dispatcher, dots, retry, repair)
    prof$n <- n
    .listen(prof, local_url(), memory, serial, NULL)
    for (i in seq_len(n)) .launch_local1(prof, prof$dots)
    if (dispatcher) {
      .Call(mirai_host_wait_connections, prof$host, n, -1)
    } else {
      secs <- 0L
      while (!.Call(mirai_host_wait_connections, prof$host, n, 10000)) {
        secs <- secs + 10L
        message(sprintf("mirai: initial sync with daemon(s) [%d secs elapsed]", secs))
      }
    }
    ..[[.compute]] <- prof
  } else {
    is.character(url) || stop(sprintf("`url` must be of type character, not %s", typeof(url)))
    length(url) && !is.na(url[[1L]]) && nzchar(url[[1L]]) ||
      stop("`url` must hold a URL such as \"tcp://10.0.0.5:5555\", not be empty or NA")
    .check_dispatcher(dispatcher)
    dots <- .check_profile_args(list(...), seed, memory, serial)
    if (!is.null(remote) && !is.list(remote)) stop(.msg_remote)
    if (!is.null(tls) && (!is.character(tls) || !length(tls) || length(tls) > 3L || anyNA(tls)))
      stop("`tls` must be NULL, a PEM file path, or c(<certificate PEM>, <key PEM>)")
    if (!is.null(pass) && !is.function(pass) && !.is_string(pass))
      stop("`pass` must be NULL, a function returning the password, or a string")
    .reset(.compute)
    prof <- .new_profile(.compute, seed, dispatcher, dots, retry, repair)
    prof$n <- 1L
    url <- url[[1L]]
    if (isTRUE(sync)) {
      prof$sync <- TRUE
      prof$url <- url
      prof$genv <- list(.Random.seed = parallel::nextRNGStream(prof$stream))
      prof$gvars <- ".Random.seed"
    } else {
      # TLS material for the listener; zero-config also stores the daemons' (launch.R).
      tls <- .tls_setup(prof, url, tls, pass)
      .listen(prof, url, memory, serial, tls)
    }
    prof$remote <- remote
    ..[[.compute]] <- prof
    if (!is.null(remote)) {
      tryCatch(
        launch_remote(if (missing(n)) 1L else n, remote, .compute = .compute),
        error = function(e) {
          .reset(.compute)
          stop(e)
        }
      )
    }
  }
  invisible(structure(TRUE, class = c("miraiDaemons", .compute)))
}

.check_dispatcher <- function(x) {
  if (!is.logical(x) || length(x) != 1L || is.na(x)) stop("`dispatcher` must be TRUE or FALSE", call. = FALSE)
}

# `n` (numeric) as the number of local daemons: one whole number from 0 to the largest
# integer. Errors say what is wrong with it, in the caller's name.
.check_n <- function(n, call = sys.call(-1L)) {
  if (length(n) != 1L || is.na(n)) stop(simpleError("`n` must be a single number, not NA or a vector", call))
  if (n < 0) stop(simpleError("the number of daemons must be zero or greater", call))
  if (n >= .Machine$integer.max + 1) stop(simpleError("`n` must be finite and at most .Machine$integer.max", call))
  as.integer(n)
}

# Validates, before any existing profile is reset, the arguments that are only used once the
# new profile is being made (so that a mistake never leaves the profile torn down, nor starts
# daemons that cannot run). Returns `...` as list(dots, rendered).
.check_profile_args <- function(dots, seed, memory, serial, call = sys.call(-1L)) {
  fail <- function(msg) stop(simpleError(msg, call))
  if (!is.null(seed) && (!is.numeric(seed) || length(seed) != 1L || is.na(seed) || abs(seed) > .Machine$integer.max))
    fail("`seed` must be NULL or a single integer")
  if (!is.null(memory) && !is.numeric(memory) && !identical(memory, NA))
    fail("`memory` must be NULL or a number of megabytes")
  if (!is.null(serial) && !.is_serial(serial))
    fail("`serial` must be NULL or a configuration made by serial_config()")
  list(dots = dots, rendered = .daemon_args(dots, call))
}

# The extensions beyond mirai 2.7 (README, "Reliability"): `retry`, how many times a task whose
# daemon is lost (killed, crashed, cut off) is sent again before it resolves to error 19; and
# `repair`, whether local daemons that crash are relaunched to keep the pool at strength.
.check_reliability <- function(retry, repair, call = sys.call(-1L)) {
  if (!is.numeric(retry) || length(retry) != 1L || is.na(retry) || retry < 0 || retry > 1000 ||
      retry != trunc(retry))
    stop(simpleError("`retry` must be a whole number from 0 to 1000", call))
  if (!is.logical(repair) || length(repair) != 1L || is.na(repair))
    stop(simpleError("`repair` must be TRUE or FALSE", call))
}

# TRUE for a serial_config() value: list(class, sfuncs, ufuncs), all of one length.
.is_serial <- function(x) {
  is.list(x) && length(x) == 3L && is.character(x[[1L]]) && !anyNA(x[[1L]]) &&
    is.list(x[[2L]]) && is.list(x[[3L]]) &&
    length(x[[2L]]) == length(x[[1L]]) && length(x[[3L]]) == length(x[[1L]]) &&
    all(vapply(c(x[[2L]], x[[3L]]), is.function, logical(1L)))
}

# Creates a profile (not yet registered): RNG base stream and rendered daemon arguments
# (`dots` as made by .check_profile_args).
.new_profile <- function(compute, seed, dispatcher, dots, retry = 0L, repair = FALSE) {
  prof <- new.env(parent = emptyenv())
  prof$compute <- compute
  prof$retry <- as.integer(retry)
  prof$repair <- repair
  prof$sync <- FALSE
  prof$dispatcher <- dispatcher
  prof$gate <- FALSE
  prof$seed <- seed
  prof$stream <- .rng_stream(seed)
  prof$dots <- dots$rendered
  prof$tls <- dots$dots[["tlscert"]]
  prof$cv <- nanonext::cv()
  prof
}

# Starts the profile's host listening at `url`.
.listen <- function(prof, url, memory, serial, tls, call = sys.call(-1L)) {
  disp <- prof$dispatcher
  limit <- if (disp && is.numeric(memory) && length(memory) && !is.na(memory[1L]) &&
               is.finite(memory[1L]) && memory[1L] > 0) as.double(memory[1L]) * 1e6 else NA_real_
  hooks <- if (disp) serial %||% .opts$serial
  if (!is.null(tls)) attr(url, "tls") <- tls
  # The engine's errors (a URL it cannot listen at, bad TLS material) carry no call: they are
  # raised again in the name of daemons().
  host <- tryCatch(
    .Call(mirai_host_start, url, disp, limit, if (disp) prof$stream,
          if (!is.null(hooks)) serialize(hooks, NULL, version = 3L),
          c(list(compute = prof$compute, retry = prof$retry, repair = prof$repair, cv = prof$cv),
            .bridge_opts())),
    error = function(e) stop(simpleError(conditionMessage(e), call))
  )
  prof$url <- .Call(mirai_host_url, host)
  if (disp) {
    attr(host, "dispatcher") <- TRUE
    attr(host, "url") <- prof$url
  }
  prof$host <- host
  prof$gate <- !is.na(limit)
  prof$serial <- hooks
  invisible(prof)
}

# Resets profile `compute`; FALSE invisibly.
.reset <- function(compute, exit = FALSE) {
  prof <- ..[[compute]]
  if (is.null(prof)) return(invisible(FALSE))
  ..[[compute]] <- NULL
  if (!prof$sync) {
    .Call(mirai_host_reset, prof$host, isTRUE(exit))
    Sys.sleep(0.2)
  }
  invisible(FALSE)
}

# TRUE when called (at any depth) from a function mapped by mirai_map().
.within_map <- function() {
  for (f in sys.frames()) if (exists(".mirai_within_map", envir = f, inherits = FALSE)) return(TRUE)
  FALSE
}

# The profile's base L'Ecuyer-CMRG stream s0; advances the host RNG by one draw (spec 3.7).
.rng_stream <- function(seed) {
  stats::rexp(1L)
  genv <- .GlobalEnv
  oseed <- genv[[".Random.seed"]]
  on.exit(assign(".Random.seed", oseed, envir = genv))
  RNGkind("L'Ecuyer-CMRG")
  if (!is.null(seed)) set.seed(seed)
  genv[[".Random.seed"]]
}

# The next launch stream of a direct profile (seed NULL); NULL otherwise.
.next_rs <- function(prof) {
  if (!is.null(prof$seed)) return(integer())
  s <- prof$stream
  prof$stream <- parallel::nextRNGStream(s)
  s
}

#' Status of a compute profile
#'
#' `status()` describes a profile for people; `info()` gives its counters for programs.
#'
#' @param .compute the name of a compute profile, or `NULL` for the current default. `status()`
#'   also accepts a cluster made by [make_cluster()].
#'
#' @return `status()`: a list. For an unset profile, `list(connections = 0L, daemons = 0L)`.
#'   Otherwise `connections`, the number of daemons connected, and `daemons`, the URL they dial;
#'   with a dispatcher also `mirai`, the integer vector `c(awaiting, executing, completed)` of
#'   task counts, and `memory`, the double vector `c(used, peak, capacity)` of queued task bytes
#'   in megabytes (`capacity` is `NA` without a budget).
#'
#'   `info()`: `NULL` for an unset profile, else the named integer vector
#'   `c(connections, cumulative, awaiting, executing, completed)`; without a dispatcher (and on a
#'   sync profile) all but `connections` are `NA`.
#'
#' @details `connections` counts daemons connected now, `cumulative` all that have ever
#'   connected to the profile. `awaiting` counts tasks in the dispatcher's queue, `executing`
#'   tasks sent to a daemon and not yet answered (a cancelled task until its daemon replies), and
#'   `completed` all other tasks submitted: done, cancelled while queued, or lost with their
#'   daemon. Read fields by name.
#'
#' @seealso [daemons()], [daemons_set()].
#' @examples
#' status()
#' info()
#' daemons(2)
#' ms <- lapply(1:3, function(i) mirai(Sys.sleep(0.3)))
#' info()
#' call_mirai(ms)
#' status()
#' daemons(0)
status <- function(.compute = NULL) {
  prof <- .profile(.compute)
  if (is.null(prof)) return(list(connections = 0L, daemons = 0L))
  if (prof$sync) return(list(connections = 0L, daemons = prof$url))
  s <- .Call(mirai_host_status, prof$host)
  k <- as.integer(s$counters)
  if (!prof$dispatcher) return(list(connections = k[1L], daemons = prof$url))
  list(connections = k[1L], daemons = prof$url,
       mirai = c(awaiting = k[3L], executing = k[4L], completed = k[5L]),
       memory = c(used = s$memory[1L], peak = s$memory[2L], capacity = s$memory[3L]) / 1e6)
}

#' @rdname status
info <- function(.compute = NULL) {
  prof <- .profile(.compute)
  if (is.null(prof)) return(NULL)
  nms <- c("connections", "cumulative", "awaiting", "executing", "completed")
  if (prof$sync) return(structure(c(0L, rep(NA_integer_, 4L)), names = nms))
  k <- as.integer(.Call(mirai_host_status, prof$host)$counters)
  if (!prof$dispatcher) k[2:5] <- NA_integer_
  structure(k, names = nms)
}

#' Check that daemons are set
#'
#' `daemons_set()` tells whether a compute profile is set; `require_daemons()` raises an error
#' that tells the user how to set one if it is not. Both are meant for functions in packages
#' that need daemons.
#'
#' @param .compute the name of a compute profile, or `NULL` for the current default.
#' @param call the environment of the function on whose behalf the check is made, so that the
#'   error names that function (used when the cli package is installed).
#'
#' @return `daemons_set()`: `TRUE` or `FALSE` (a sync profile counts as set).
#'   `require_daemons()`: `TRUE`, invisibly, or an error.
#'
#' @seealso [daemons()], [with_daemons()].
#' @examples
#' daemons_set()
#' f <- function(x) {
#'   require_daemons(call = environment())
#'   mirai_map(x, sqrt)[.flat]
#' }
#' try(f(1:4))
#' daemons(sync = TRUE)
#' daemons_set()
#' f(1:4)
#' daemons(0)
daemons_set <- function(.compute = NULL) !is.null(.profile(.compute))

#' @rdname daemons_set
require_daemons <- function(.compute = NULL, call = environment()) {
  if (daemons_set(.compute)) return(invisible(TRUE))
  named <- is.character(.compute) && length(.compute) == 1L
  if (.opts$cli) {
    if (named) {
      profile <- .compute
      cli::cli_abort(c("No daemons set for the '{profile}' compute profile.",
                       "Use e.g. {.run mirai::daemons(6, .compute = \"{profile}\")} to set 6 local daemons."),
                     call = call)
    }
    cli::cli_abort(c("No daemons set.", "Use e.g. {.run mirai::daemons(6)} to set 6 local daemons."), call = call)
  }
  stop(if (named) sprintf("No daemons set for the '%s' compute profile.\nUse e.g. mirai::daemons(6, .compute = \"%s\") to set 6 local daemons.", .compute, .compute)
       else "No daemons set.\nUse e.g. mirai::daemons(6) to set 6 local daemons.", call. = FALSE)
}

print.miraiDaemons <- function(x, ...) {
  print(unclass(x)[1L])
  invisible(x)
}

#' @rdname with_daemons
#' @param data the value of a [daemons()] call that created a profile.
#' @param ... not used.
with.miraiDaemons <- function(data, expr, ...) {
  compute <- class(data)[2L]
  prev <- .opts$default
  .opts$default <- compute
  on.exit({
    .reset(compute)
    .opts$default <- prev
  })
  expr
}

#' Use a compute profile for a while
#'
#' These make a profile that is already set the current default, so that [mirai()] and the
#' other functions use it when their `.compute` is `NULL`: `with_daemons()` for the evaluation
#' of one expression, `local_daemons()` until the calling function returns. The `with()` method
#' for the value of [daemons()] also resets that profile at the end.
#'
#' @param .compute the name of a compute profile that is set.
#' @param expr an expression, evaluated with the profile as the default.
#' @param frame the environment (function frame) at whose exit the previous default comes back;
#'   by default that of the caller.
#'
#' @return `with_daemons()` and `with()`: the value of `expr`. `local_daemons()`: `NULL`,
#'   invisibly.
#'
#' @details The previous default is restored on exit, also after an error. `with_daemons()` and
#'   `local_daemons()` leave the profile itself alone, and raise the [require_daemons()] error
#'   if it is not set. `with(daemons(4), expr)` creates a profile, makes it the default while
#'   `expr` runs and then resets it (`daemons(0)`), for example around `shiny::runApp()`.
#'
#' @seealso [daemons()].
#' @examples
#' daemons(1, .compute = "cpu")
#' with_daemons("cpu", mirai("on cpu")[])
#' f <- function() {
#'   local_daemons("cpu")
#'   mirai(1 + 1)[]
#' }
#' f()
#' daemons_set()
#' daemons(0, .compute = "cpu")
#'
#' # a profile that lasts for one expression
#' with(daemons(1, .compute = "brief"), mirai("inside")[])
#' daemons_set("brief")
with_daemons <- function(.compute, expr) {
  require_daemons(.compute = .compute, call = environment())
  prev <- .opts$default
  .opts$default <- .cname(.compute)
  on.exit(.opts$default <- prev)
  expr
}

#' @rdname with_daemons
local_daemons <- function(.compute, frame = parent.frame()) {
  require_daemons(.compute = .compute, call = environment())
  is.environment(frame) || stop("`frame` must be an environment (the frame whose exit restores the default profile)")
  prev <- .opts$default
  .opts$default <- .cname(.compute)
  restore <- function() .opts$default <- prev
  do.call(base::on.exit, list(as.call(list(restore)), TRUE, FALSE), envir = frame)
  invisible()
}

#' Developer access to a compute profile
#'
#' For packages that launch daemons themselves: `nextget()` reads a field of a profile,
#' `nextstream()` hands out the profile's next random-number stream, and `nextcode()` explains a
#' daemon's exit code.
#'
#' @param x the name of a field: `"url"` (the URL daemons dial), `"n"` (the number of local
#'   daemons, 1 for URL and sync profiles), `"tls"` (what daemons need for TLS, embedded in
#'   launch commands), `"dispatcher"` (`NULL` without a dispatcher, else an opaque external
#'   pointer carrying the attribute `url`), `"cv"` (the profile's `conditionVariable`, see
#'   `nanonext::cv()`, signalled once for every mirai of the profile that completes, whatever
#'   the outcome), `"stream"` (the current random-number stream),
#'   `"seed"`, `"sync"`, `"compute"` (the profile name) or `"dots"` (the daemon arguments as
#'   written into launch commands, for example `",maxtasks=10"`).
#' @param .compute the name of the profile. Unlike elsewhere, this defaults to `"default"`
#'   itself, not to the current default profile.
#' @param xc a daemon exit code, as returned by [daemon()].
#'
#' @return `nextget()`: the value of the field, or `NULL` if the profile or field does not
#'   exist. `nextstream()`: a 7-integer L'Ecuyer-CMRG `.Random.seed` value, usable as the `rs`
#'   argument of [daemon()], or `NULL` for an unset profile. `nextcode()`: a string such as
#'   `"3 | Daemon task limit reached"` for the codes 0 to 3, `character(0)` for other codes.
#'
#' @details `nextstream()` advances the stored stream with [parallel::nextRNGStream()], so each
#'   call returns a new stream (on a profile with `seed`, the next per-mirai stream is taken).
#'   `nextget("stream")` only reads it.
#'
#' @seealso [daemons()], [daemon()], [launch_remote()].
#' @examples
#' daemons(url = local_url(), dispatcher = FALSE, maxtasks = 10)
#' nextget("url")
#' nextget("dots")
#' is.null(nextget("dispatcher"))
#' s <- nextstream()
#' identical(nextstream(), parallel::nextRNGStream(s))
#' daemons(0)
#' nextcode(0L)
#' nextcode(3L)
nextget <- function(x, .compute = "default") {
  prof <- .profile(.compute)
  if (is.null(prof) || !is.character(x) || length(x) != 1L) return(NULL)
  switch(
    x,
    url = prof$url,
    n = prof$n,
    tls = prof$tls,
    dispatcher = if (isTRUE(prof$dispatcher) && !prof$sync) prof$host,
    stream = prof$stream,
    seed = prof$seed,
    sync = prof$sync,
    compute = prof$compute,
    dots = prof$dots,
    cv = prof$cv,
    NULL
  )
}

#' @rdname nextget
nextstream <- function(.compute = "default") {
  prof <- .profile(.compute)
  if (is.null(prof)) return(NULL)
  s <- prof$stream
  prof$stream <- parallel::nextRNGStream(s)
  s
}

#' @rdname nextget
nextcode <- function(xc) {
  length(xc) == 1L || stop("`xc` must be a single exit code")
  text <- c("connection terminated", "idletime limit reached", "walltime limit reached", "task limit reached")
  xc <- as.integer(xc)
  if (is.na(xc) || xc < 0L || xc > 3L) character() else sprintf("%d | Daemon %s", xc, text[xc + 1L])
}
