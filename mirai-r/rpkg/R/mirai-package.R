# mirai: package state and small helpers.
#
# The R layer is thin: it validates arguments, builds task payloads, evaluates tasks on daemons
# and formats results. Transport, dispatch and waiting are done by the Rust engine through the
# `.Call` routines of docs/r-bridge.md (registered as R symbols, e.g. `mirai_submit`).

# The namespace: parent of mirai environments, so their `data` binding finds package internals.
#' mirai: minimalist async evaluation for R
#'
#' mirai evaluates R expressions asynchronously, in other R processes on this machine or across
#' the network, and returns at once with a *mirai*, a value that resolves when the evaluation is
#' done. This implementation keeps the R API of mirai 2.7 and runs its transport, dispatcher and
#' completion notification in a Rust engine linked into the package.
#'
#' @details
#' **Tasks.** [mirai()] sends one expression; [mirai_map()] maps a function over a list or the
#' rows of a data frame; [everywhere()] runs set-up code on every daemon. Wait with `m[]`,
#' [call_mirai()], [collect_mirai()] or [race_mirai()]; check with [unresolved()]; cancel with
#' [stop_mirai()]. Failures come back as error values ([is_error_value()]).
#'
#' **Daemons.** [daemons()] sets up a compute profile of persistent daemons, local or remote, with
#' a first-in first-out dispatcher by default; [status()] and [info()] show its state.
#' [launch_local()] and [launch_remote()] add daemons through launch configurations for SSH
#' ([ssh_config()]), HPC schedulers ([cluster_config()]), HTTP APIs ([http_config()]) or any
#' command ([remote_config()]), over TLS if wanted.
#'
#' **Integrations.** mirai are promises for the promises package and Shiny (`ExtendedTask`), a
#' cluster backend for the parallel package ([make_cluster()]), and serialization hooks carry
#' torch, Arrow or Polars objects ([serial_config()]).
#'
#' **Beyond mirai 2.7**, opt-in: `daemons(retry = )` sends a task again when its daemon is lost
#' ([mirai_attempts()]), and `daemons(repair = TRUE)` keeps a local pool at strength.
#'
#' The vignettes cover each topic: `vignette(package = "mirai")`.
#'
#' @docType package
#' @name mirai-package
#' @aliases NULL mirai-package
#' @usage NULL
#' @format NULL
#' @keywords package
.ns <- environment()

# Profile registry: name -> profile environment, or NULL once reset. A reset profile keeps its
# name bound (to NULL) because cluster IDs count every name ever registered.
.. <- new.env(parent = emptyenv())

# Process-wide options: current default profile, mirai id counter, serialization registry,
# whether cli is usable, and the daemon-side state (on_daemon flag).
.opts <- new.env(parent = emptyenv())
.opts$default <- "default"
.opts$id <- 0L
.opts$cli <- FALSE
.opts$on <- FALSE

# The single shared sentinel returned by `$data` while a mirai is pending: nanonext's own object
# (recognised by identity), bound at load time (a copy made at install time would be another).
.unresolved <- NULL

.miraiInterrupt <- structure("", class = c("miraiInterrupt", "errorValue", "try-error"))

.onLoad <- function(libname, pkgname) {
  .ns$.unresolved <- get(".unresolvedValue", envir = asNamespace("nanonext"))
  # cli_abort() needs rlang as well; without both the plain messages are used. Whether both are
  # present is settled on first use of `.opts$cli`, not here: loading them would add ~60 ms to
  # the start of every daemon, which never needs them unless it runs mirai code itself.
  rm("cli", envir = .opts)
  known <- NULL
  makeActiveBinding("cli", function(v) {
    if (!missing(v)) known <<- v
    else if (is.null(known)) known <<- requireNamespace("cli", quietly = TRUE) && requireNamespace("rlang", quietly = TRUE)
    known
  }, .opts)
}

`%||%` <- function(x, y) if (is.null(x)) y else x

# The profile name `.compute` designates (NULL: the current default).
.cname <- function(.compute) {
  if (is.null(.compute)) .opts$default
  else if (inherits(.compute, "miraiCluster")) attr(.compute, "id")
  else .compute
}

# The profile `.compute` designates, or NULL when it is not set. A value that cannot name a
# profile (not a single non-empty, non-NA string) designates none.
.profile <- function(.compute) {
  name <- .cname(.compute)
  if (.is_name(name)) ..[[name]]
}

# TRUE for a single non-empty, non-NA string: what a profile name must be.
.is_name <- function(x) is.character(x) && length(x) == 1L && !is.na(x) && nzchar(x)

# `.compute` as the name of a profile to create or reset, or the error saying what is wrong.
.check_compute <- function(.compute, call = sys.call(-1L)) {
  name <- .cname(.compute)
  .is_name(name) || stop(simpleError("`.compute` must be a single non-empty character string (a profile name)", call))
  name
}

# 24 random hex characters that do not touch the R session's RNG.
.hex24 <- function() {
  if (file.exists("/dev/urandom")) {
    con <- file("/dev/urandom", "rb", raw = TRUE)
    on.exit(close(con))
    paste(as.character(readBin(con, "raw", 12L)), collapse = "")
  } else {
    .opts$hexn <- (.opts$hexn %||% 0) + 1
    t <- as.numeric(Sys.time()) * 1e6
    substr(paste0(sprintf("%08x", as.integer(t %% 2^31)), sprintf("%08x", Sys.getpid()),
                  sprintf("%08x", as.integer(.opts$hexn))), 1L, 24L)
  }
}

.rscript <- function() {
  file.path(R.home("bin"), if (.Platform$OS.type == "windows") "Rscript.exe" else "Rscript")
}

# `"<code> | <text>"` for integer error values and messages, from the engine's one table of
# error codes; what is not a code reads as NA.
.code_text <- function(code) {
  # Only the first element counts; anything that is not a code reads as NA.
  code <- tryCatch(suppressWarnings(as.integer(code[[1L]])[1L]), error = function(e) NA_integer_)
  if (is.na(code)) "NA | Unknown error" else .Call(mirai_error_text, code)
}

.error_value <- function(code) structure(as.integer(code), class = c("errorValue", "try-error"))
