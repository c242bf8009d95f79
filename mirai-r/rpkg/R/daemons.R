# Daemons and compute profiles: daemons(), status(), info(), profile helpers.
#
# A profile is an environment in the registry `..` with fields: compute, url, n, dots, tls,
# sync, dispatcher, host (engine handle), gate (memory budget in force), serial (hooks),
# stream, seed, everywhere (latest batch); sync profiles also keep genv/gvars, the saved
# daemon global environment and its cleanup baseline.

daemons <- function(n, url = NULL, remote = NULL, dispatcher = TRUE, ..., sync = FALSE,
                    seed = NULL, memory = NULL, serial = NULL, tls = NULL, pass = NULL,
                    .compute = NULL) {
  .compute <- .cname(.compute)
  if (isTRUE(sync)) {
    url <- sprintf("inproc://%s", .hex24())
    dispatcher <- FALSE
    remote <- serial <- tls <- pass <- NULL
  }
  if (is.null(url)) {
    if (is.null(n)) return(.reset(.compute, exit = TRUE))
    is.numeric(n) || stop("`n` must be numeric, did you mean to provide `url`?")
    n <- as.integer(n)
    if (n == 0L) return(.reset(.compute))
    n < 0L && stop("the number of daemons must be zero or greater")
    .within_map() && stop("cannot create local daemons from within mirai map")
    .check_dispatcher(dispatcher)
    .reset(.compute)
    prof <- .new_profile(.compute, seed, dispatcher, list(...))
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
    .check_dispatcher(dispatcher)
    .reset(.compute)
    prof <- .new_profile(.compute, seed, dispatcher, list(...))
    prof$n <- 1L
    url <- url[[1L]]
    if (isTRUE(sync)) {
      prof$sync <- TRUE
      prof$url <- url
      prof$genv <- list(.Random.seed = parallel::nextRNGStream(prof$stream))
      prof$gvars <- ".Random.seed"
    } else {
      if (grepl("^(tls\\+tcp|wss)://", url)) {
        if (is.null(tls)) {
          host <- sub("^[^:]+://(\\[[^]]*\\]|[^:/]*).*$", "\\1", url)
          pair <- .Call(mirai_tls_generate, gsub("^\\[|\\]$", "", host))
          tls <- pair
          prof$tls <- c(pair[1L], "")
        }
        tls <- list(cert = .read_pem(tls), pass = if (is.function(pass)) pass() else pass)
      } else {
        tls <- NULL
      }
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

# Creates a profile (not yet registered): RNG base stream and rendered daemon arguments.
.new_profile <- function(compute, seed, dispatcher, dots) {
  prof <- new.env(parent = emptyenv())
  prof$compute <- compute
  prof$sync <- FALSE
  prof$dispatcher <- dispatcher
  prof$gate <- FALSE
  prof$seed <- seed
  prof$stream <- .rng_stream(seed)
  prof$dots <- .render(dots)
  prof$tls <- dots[["tlscert"]]
  prof
}

# Starts the profile's host listening at `url`.
.listen <- function(prof, url, memory, serial, tls) {
  disp <- prof$dispatcher
  limit <- if (disp && is.numeric(memory) && length(memory) && !is.na(memory[1L]) &&
               is.finite(memory[1L]) && memory[1L] > 0) as.double(memory[1L]) * 1e6 else NA_real_
  hooks <- if (disp) serial %||% .opts$serial
  if (!is.null(tls)) attr(url, "tls") <- tls
  host <- .Call(mirai_host_start, url, disp, limit, if (disp) prof$stream,
                if (!is.null(hooks)) serialize(hooks, NULL, version = 3L))
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

# `...` daemon arguments as `,name=value` for each logical or numeric value, in order.
.render <- function(dots) {
  nms <- names(dots)
  if (is.null(nms)) return("")
  out <- character()
  for (i in seq_along(dots)) {
    v <- dots[[i]]
    if (nzchar(nms[i]) && (is.logical(v) || is.numeric(v)) && length(v))
      out <- c(out, sprintf(",%s=%s", nms[i], as.character(v[1L])))
  }
  paste(out, collapse = "")
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
  .opts$default <- .compute
  on.exit(.opts$default <- prev)
  expr
}

local_daemons <- function(.compute, frame = parent.frame()) {
  require_daemons(.compute = .compute, call = environment())
  prev <- .opts$default
  .opts$default <- .compute
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
