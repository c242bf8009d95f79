# One very large payload through mirai: a raw vector of `size` bytes (default 3e9, i.e. 3 GB,
# above the 2^31 - 1 elements of a "short" R vector) sent as an argument to a mirai on one
# daemon that
#   1. returns its length (payload host -> daemon only), then
#   2. returns the vector itself (the same payload both ways),
# checking integrity (non-zero bytes at the first, middle and last positions; `identical()`
# for the round trip). For each step: wall time, whether it worked, and the peak resident set
# (VmHWM) of the host and of the daemon during that step (the peak is reset before each step
# through /proc/<pid>/clear_refs, Linux).
#
# Not part of CI: it needs about 15 GB of free memory and a minute or two.
#
#   R_LIBS=target/R Rscript bench/large-payload.R [size] [output file] [ipc|tcp]
#
# Default output: bench/results/large-payload.txt (written to stdout as well). The daemon is
# local: `daemons(1)` over IPC (default), or with `tcp`, `daemons(url = local_url(tcp = TRUE))`
# plus `launch_local(1)`, so that the payload crosses a TCP connection on 127.0.0.1.
# The R option `mirai.transport = "nng"` (set before the script runs, e.g. from an R profile file)
# selects the NNG transport backend instead of the native one.

args <- commandArgs(TRUE)
size <- if (length(args) >= 1L) as.numeric(args[1L]) else 3e9
out <- if (length(args) >= 2L) args[2L] else file.path("bench", "results", "large-payload.txt")
link <- if (length(args) >= 3L) args[3L] else "ipc"

suppressPackageStartupMessages(library(mirai))

lines <- character()
say <- function(...) {
  s <- sprintf(...)
  cat(s, "\n", sep = "")
  lines[length(lines) + 1L] <<- s
}

status_kb <- function(pid, field) {
  f <- sprintf("/proc/%d/status", pid)
  if (!file.exists(f)) return(NA_real_)
  l <- grep(sprintf("^%s:", field), readLines(f), value = TRUE)
  if (!length(l)) return(NA_real_)
  as.numeric(gsub("[^0-9]", "", l))
}
hwm_gb <- function(pid) status_kb(pid, "VmHWM") / 1024^2
rss_gb <- function(pid) status_kb(pid, "VmRSS") / 1024^2
# Resets the peak RSS of `pid` to its current RSS ("5" to clear_refs, Linux >= 4.0).
reset_hwm <- function(pid) invisible(tryCatch({ cat("5", file = sprintf("/proc/%d/clear_refs", pid)); TRUE }, error = function(e) FALSE))

host <- Sys.getpid()
say("mirai large payload: %s bytes (%.2f GB, %s 2^31 - 1 elements)", format(size, big.mark = ",", scientific = FALSE),
    size / 1e9, if (size > .Machine$integer.max) "above" else "not above")
meminfo_gb <- function(field) as.numeric(gsub("[^0-9]", "", grep(sprintf("^%s:", field), readLines("/proc/meminfo"), value = TRUE))) / 1024^2
say("date: %s; R %s; mirai %s; %s; %d cores; MemTotal %.1f GiB; MemAvailable at start %.1f GiB",
    format(Sys.time(), "%Y-%m-%d %H:%M:%S"), getRversion(), utils::packageVersion("mirai"), R.version$platform,
    parallel::detectCores(), meminfo_gb("MemTotal"), meminfo_gb("MemAvailable"))
say("transport: %s backend, over %s", getOption("mirai.transport", "native (default)"), link)

if (identical(link, "tcp")) {
  daemons(url = local_url(tcp = TRUE))
  invisible(launch_local(1))
} else {
  daemons(1)
}
daemon <- mirai(Sys.getpid())[]
say("host pid %d, daemon pid %d", host, daemon)

t0 <- proc.time()[["elapsed"]]
x <- raw(size)
pos <- c(1, floor(size / 2), size)
x[pos] <- as.raw(c(1L, 2L, 3L))
say("allocated and marked the vector in %.1f s; host RSS %.2f GiB", proc.time()[["elapsed"]] - t0, rss_gb(host))

# Runs `expr` (submitting with mirai() and collecting with []) as one step: its time split into
# submission and collection, the peaks of host and daemon, and the outcome (value or error).
step <- function(name, submit, check) {
  gc()
  mirai({ gc(); NULL })[] # the daemon's garbage from the previous step, so its peak is this step's
  reset_hwm(host)
  reset_hwm(daemon)
  t0 <- proc.time()[["elapsed"]]
  m <- tryCatch(submit(), error = function(e) e)
  t1 <- proc.time()[["elapsed"]]
  v <- if (inherits(m, "error")) m else tryCatch(m[], error = function(e) e)
  t2 <- proc.time()[["elapsed"]]
  ok <- !inherits(v, "error") && !is_error_value(v) && isTRUE(check(v))
  what <- if (inherits(v, "error")) paste("R error:", conditionMessage(v))
  else if (is_error_value(v)) paste("error value:", if (is_mirai_error(v)) .subset(v, 1L) else mirai:::.code_text(v))
  else if (ok) "value checked" else "WRONG value"
  say("%-34s %s  total %6.1f s (mirai() %5.1f s, collect %5.1f s)  peak RSS host %5.2f GiB, daemon %5.2f GiB  [%s]",
      name, if (ok) "WORKS " else "FAILS ", t2 - t0, t1 - t0, t2 - t1, hwm_gb(host), hwm_gb(daemon), what)
  rm(m, v)
  gc()
  ok
}

# For reference: the host-side serialization alone (what mirai() does before handing the bytes
# to the engine).
invisible(gc())
reset_hwm(host)
t0 <- proc.time()[["elapsed"]]
bytes <- .Call(mirai:::mirai_serialize, list(globals = list(x = x), args = list(), expr = quote(length(x))), NULL)
say("%-34s %s  total %6.1f s  peak RSS host %5.2f GiB  [%.0f bytes]", "serialization alone (host)", "      ",
    proc.time()[["elapsed"]] - t0, hwm_gb(host), as.numeric(length(bytes)))
rm(bytes)

ok1 <- step("length(x) on the daemon", function() mirai(length(x), x = x),
            function(v) is.numeric(v) && length(v) == 1L && v == size)
ok2 <- step("x returned (round trip)", function() mirai(x, x = x),
            function(v) is.raw(v) && length(v) == size && identical(v[pos], as.raw(c(1L, 2L, 3L))) && identical(v, x))
ok3 <- step("x as .args, marked bytes returned", function() mirai(as.integer(x[pos]), .args = list(x = x, pos = pos)),
            function(v) identical(v, 1:3))

say("result: %s", if (ok1 && ok2 && ok3) "all steps work" else "FAILURES above")
daemons(0)
dir.create(dirname(out), showWarnings = FALSE, recursive = TRUE)
writeLines(lines, out)
