# Real services for the remote-launch tests (sshd, single-node Slurm), all on 127.0.0.1, started
# and stopped by the tests through scripts/services/. A service that cannot start fails the test
# that needs it, with the script's explanation: from a checkout these tests never pass by
# skipping. Run from an installed package without the checkout (R CMD check), they skip.

# scripts/services in this checkout ($MIRAI_SERVICES overrides), or "" when there is none.
services_dir <- function() {
  cands <- c(Sys.getenv("MIRAI_SERVICES"),
             file.path(Sys.getenv("MIRAI_TEST_DIR"), "..", "..", "..", "..", "scripts", "services"),
             file.path(getwd(), "..", "..", "..", "..", "scripts", "services"))
  for (d in cands[nzchar(cands)]) if (file.exists(file.path(d, "sshd.sh"))) return(normalizePath(d))
  # From the checkout (`cargo xtask test-r` sets MIRAI_TEST_DIR) or with MIRAI_SERVICES set,
  # the services must be there: these tests never pass by skipping in a checkout.
  if (nzchar(Sys.getenv("MIRAI_SERVICES")) || nzchar(Sys.getenv("MIRAI_TEST_DIR")))
    stop("scripts/services not found (looked in: ", paste(cands[nzchar(cands)], collapse = ", "),
         "); set MIRAI_SERVICES to the checkout's scripts/services", call. = FALSE)
  ""
}

# Skips the rest of a test file that needs the checkout's services when the suite runs from an
# installed package with no checkout beside it (R CMD check of the tarball): they start sshd and
# Slurm as root from scripts/services, which the package does not ship. `cargo xtask test-r`
# runs them from the checkout.
skip_without_services <- function() {
  if (!nzchar(services_dir()))
    skip(paste("needs the checkout's scripts/services (real sshd and Slurm on 127.0.0.1), not shipped",
               "in the package: run from a checkout with `cargo xtask test-r`, or set MIRAI_SERVICES"))
}

# Starts service `name` ("sshd" or "slurm") in a fresh directory; stopped when `envir` ends
# (also on failure). Fails the calling test, with the reason, if it cannot start.
start_service <- function(name, envir = parent.frame()) {
  skip_without_services()
  script <- file.path(services_dir(), paste0(name, ".sh"))
  dir <- tempfile(sprintf("mirai-%s-", name))
  out <- suppressWarnings(system2("bash", c(script, "start", dir), stdout = TRUE, stderr = TRUE))
  svc <- list(name = name, dir = dir, script = script)
  withr::defer(stop_service(svc), envir = envir)
  status <- attr(out, "status")
  if (!is.null(status) && status != 0L)
    stop(sprintf("the %s service could not start on this machine (exit %d):\n%s", name, status,
                 paste(out, collapse = "\n")), call. = FALSE)
  svc
}

stop_service <- function(svc) {
  suppressWarnings(system2("bash", c(svc$script, "stop", svc$dir), stdout = FALSE, stderr = FALSE))
  unlink(svc$dir, recursive = TRUE)
}

# Sets SLURM_CONF for the Slurm service until `envir` ends.
use_slurm <- function(svc, envir = parent.frame()) {
  withr::local_envvar(SLURM_CONF = file.path(svc$dir, "slurm.conf"), .local_envir = envir)
}

# `rscript` for daemons started through a shell that does not inherit this session's
# environment (ssh): this R's Rscript, finding the same library as this session.
remote_rscript <- function() {
  sprintf("R_LIBS=%s %s", shQuote(paste(.libPaths(), collapse = ":")), shQuote(rscript))
}

# Job ids of the Slurm service's queue (running or pending).
slurm_jobs <- function() {
  out <- suppressWarnings(system2("squeue", c("-h", "-o", "%i"), stdout = TRUE, stderr = TRUE))
  out[grepl("^[0-9]+$", out)]
}
