# Child daemon processes must find the same mirai installation as this session.
Sys.setenv(R_LIBS = paste(.libPaths(), collapse = .Platform$path.sep))

# Polls `cond()` until TRUE or `timeout` seconds pass (only to avoid hangs, never to time things).
wait_until <- function(cond, timeout = 30) {
  t0 <- Sys.time()
  while (!isTRUE(cond())) {
    if (difftime(Sys.time(), t0, units = "secs") > timeout) return(FALSE)
    Sys.sleep(0.02)
  }
  TRUE
}

pid_alive <- function(pid) isTRUE(tools::pskill(pid, 0L))

# Runs `expr` with the plain (non-cli) or cli messages.
with_cli <- function(flag, expr) {
  opts <- get(".opts", envir = asNamespace("mirai"))
  prev <- opts$cli
  opts$cli <- flag
  on.exit(opts$cli <- prev)
  expr
}

rscript <- file.path(R.home("bin"), "Rscript")
