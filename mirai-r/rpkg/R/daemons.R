# Daemons and compute profiles: daemons(), status(), info(), profile helpers.
#
# A profile is an environment in the registry `..` with fields: compute, url, n, dots, tls,
# sync, dispatcher, host (engine handle), gate (memory budget in force), serial (hooks),
# stream, seed, everywhere (latest batch); sync profiles also keep genv/gvars, the saved
# daemon global environment and its cleanup baseline.

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
          c(list(compute = prof$compute, retry = prof$retry, repair = prof$repair), .bridge_opts())),
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

# `...` daemon arguments as `,name=value` for each logical or numeric value, in order
# (validated and written by the engine, see .daemon_args in launch.R).
.render <- function(dots, call = sys.call(-1L)) .daemon_args(dots, call)

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

info <- function(.compute = NULL) {
  prof <- .profile(.compute)
  if (is.null(prof)) return(NULL)
  nms <- c("connections", "cumulative", "awaiting", "executing", "completed")
  if (prof$sync) return(structure(c(0L, rep(NA_integer_, 4L)), names = nms))
  k <- as.integer(.Call(mirai_host_status, prof$host)$counters)
  if (!prof$dispatcher) k[2:5] <- NA_integer_
  structure(k, names = nms)
}

daemons_set <- function(.compute = NULL) !is.null(.profile(.compute))

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

with_daemons <- function(.compute, expr) {
  require_daemons(.compute = .compute, call = environment())
  prev <- .opts$default
  .opts$default <- .cname(.compute)
  on.exit(.opts$default <- prev)
  expr
}

local_daemons <- function(.compute, frame = parent.frame()) {
  require_daemons(.compute = .compute, call = environment())
  is.environment(frame) || stop("`frame` must be an environment (the frame whose exit restores the default profile)")
  prev <- .opts$default
  .opts$default <- .cname(.compute)
  restore <- function() .opts$default <- prev
  do.call(base::on.exit, list(as.call(list(restore)), TRUE, FALSE), envir = frame)
  invisible()
}

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
    NULL
  )
}

nextstream <- function(.compute = "default") {
  prof <- .profile(.compute)
  if (is.null(prof)) return(NULL)
  s <- prof$stream
  prof$stream <- parallel::nextRNGStream(s)
  s
}

nextcode <- function(xc) {
  length(xc) == 1L || stop("`xc` must be a single exit code")
  text <- c("connection terminated", "idletime limit reached", "walltime limit reached", "task limit reached")
  xc <- as.integer(xc)
  if (is.na(xc) || xc < 0L || xc > 3L) character() else sprintf("%d | Daemon %s", xc, text[xc + 1L])
}
