# Faults at the R level, with real daemon processes: the host process killed (daemons follow
# their `autoexit`), resets with tasks queued and executing, a daemon killed mid-task. Every
# mirai must resolve, nothing may hang, and no daemon process may be left behind.
#
# Timings are printed, never asserted: the waits below are generous bounds that only keep a
# broken build from hanging.

skip_on_os("windows") # POSIX shell (ulimit), /proc, signals

# TRUE while process `pid` exists and is not a zombie (a daemon whose parent, the killed host,
# is gone is reparented; if nothing reaps it, it lingers as a zombie, which is not alive).
proc_alive <- function(pid) {
  f <- sprintf("/proc/%d/status", as.integer(pid))
  if (!dir.exists("/proc/self")) return(isTRUE(tools::pskill(pid, 0L)))
  st <- tryCatch(readLines(f, n = 3L, warn = FALSE), error = function(e) character(), warning = function(w) character())
  length(st) > 0L && !any(grepl("^State:[[:space:]]+Z", st))
}

# Seconds (since `t0`) at which `cond()` first held, or NA if not within `timeout` seconds.
time_until <- function(cond, t0 = Sys.time(), timeout = 30) {
  force(t0)
  repeat {
    if (isTRUE(cond())) return(as.numeric(difftime(Sys.time(), t0, units = "secs")))
    if (difftime(Sys.time(), t0, units = "secs") > timeout) return(NA_real_)
    Sys.sleep(0.005)
  }
}

# Ends the processes of `pids` still alive (processes this test started), by id.
kill_left <- function(pids) for (p in pids) if (!is.na(p) && proc_alive(p)) tools::pskill(p, tools::SIGKILL)

# Starts an Rscript on `code` (a character vector of lines, given `url` and `dir` as its
# arguments) without waiting; output goes to files in `dir`.
start_r <- function(code, url, dir, name) {
  script <- file.path(dir, paste0(name, ".R"))
  writeLines(code, script)
  system2(rscript, c(shQuote(script), shQuote(url), shQuote(dir)), wait = FALSE,
          stdout = file.path(dir, paste0(name, ".out")), stderr = file.path(dir, paste0(name, ".err")))
}

test_that("host killed: autoexit TRUE exits at once, NA finishes its task, FALSE serves a new host", {
  dir <- tempfile("faults-")
  dir.create(dir)
  url <- local_url()
  pids <- integer()
  on.exit({
    kill_left(pids)
    unlink(dir, recursive = TRUE)
  })
  # The first host: three daemons, one per autoexit setting, each busy with a 3 s task that
  # records its pid and setting when it starts and writes an `end-<pid>` file when it ends.
  start_r(c(
    'args <- commandArgs(TRUE); url <- args[1L]; dir <- args[2L]',
    'suppressPackageStartupMessages(library(mirai))',
    'writeLines(as.character(Sys.getpid()), file.path(dir, "host.pid"))',
    'daemons(url = url)',
    'launch_local(1, autoexit = TRUE)',
    'launch_local(1, autoexit = NA)',
    'launch_local(1, autoexit = FALSE)',
    'while (status()$connections < 3L) Sys.sleep(0.01)',
    'task <- function(dir) {',
    '  cmd <- paste(commandArgs(), collapse = " ")',
    '  writeLines(regmatches(cmd, regexpr("autoexit=[A-Z]+", cmd)), file.path(dir, sprintf("start-%d", Sys.getpid())))',
    '  Sys.sleep(3)',
    '  writeLines("end", file.path(dir, sprintf("end-%d", Sys.getpid())))',
    '}',
    'ms <- lapply(1:3, function(i) mirai(task(dir), task = task, dir = dir))',
    'while (length(list.files(dir, "^start-")) < 3L) Sys.sleep(0.01)',
    'writeLines("ready", file.path(dir, "ready"))',
    'Sys.sleep(120)'
  ), url, dir, "host")
  expect_false(is.na(time_until(function() file.exists(file.path(dir, "ready")), timeout = 60)))
  host <- as.integer(readLines(file.path(dir, "host.pid")))
  starts <- list.files(dir, "^start-")
  pids <- c(host, as.integer(sub("^start-", "", starts)))
  ae <- sub("^autoexit=", "", vapply(file.path(dir, starts), readLines, ""))
  d <- structure(as.integer(sub("^start-", "", starts)), names = ae)
  expect_setequal(names(d), c("TRUE", "NA", "FALSE"))
  ended <- function(pid) file.exists(file.path(dir, sprintf("end-%d", pid)))

  t0 <- Sys.time()
  tools::pskill(host, tools::SIGKILL)
  # TRUE: gone, cut off mid-task (its task never ended).
  t_true <- time_until(function() !proc_alive(d[["TRUE"]]), t0)
  expect_false(is.na(t_true))
  # NA: exits once its task has ended, and not before.
  t_na <- time_until(function() !proc_alive(d[["NA"]]) || ended(d[["NA"]]), t0)
  expect_true(ended(d[["NA"]]))
  t_na <- time_until(function() !proc_alive(d[["NA"]]), t0)
  expect_false(is.na(t_na))
  expect_false(ended(d[["TRUE"]]))
  # FALSE: ends its task and stays.
  expect_false(is.na(time_until(function() ended(d[["FALSE"]]), t0)))
  expect_true(proc_alive(d[["FALSE"]]))
  cat(sprintf("\nhost SIGKILLed: autoexit = TRUE daemon gone after %.0f ms (mid-task), autoexit = NA after %.0f ms (task of 3 s finished first), autoexit = FALSE still alive\n",
              t_true * 1000, t_na * 1000))

  # A new host at the same URL gets the FALSE daemon, then daemons(NULL) ends it.
  start_r(c(
    'args <- commandArgs(TRUE); url <- args[1L]; dir <- args[2L]',
    'suppressPackageStartupMessages(library(mirai))',
    'daemons(url = url)',
    'writeLines(as.character(mirai(Sys.getpid())[]), file.path(dir, "host2.result"))',
    'daemons(NULL)',
    'writeLines("done", file.path(dir, "host2.done"))'
  ), url, dir, "host2")
  expect_false(is.na(time_until(function() file.exists(file.path(dir, "host2.done")), timeout = 60)))
  expect_identical(as.integer(readLines(file.path(dir, "host2.result"))), d[["FALSE"]])
  t_false <- time_until(function() !proc_alive(d[["FALSE"]]))
  expect_false(is.na(t_false))
  expect_identical(readLines(file.path(dir, "host2.err")), character())
})

test_that("daemons(0) and daemons(NULL) with tasks executing and queued: all resolve 19, daemons exit", {
  for (reset in c("0", "NULL")) for (dispatcher in c(TRUE, FALSE)) {
    label <- sprintf("daemons(%s), dispatcher = %s", reset, dispatcher)
    dir <- tempfile("faults-")
    dir.create(dir)
    # daemons(NULL) must end even autoexit = FALSE daemons
    if (reset == "NULL") daemons(2, dispatcher = dispatcher, autoexit = FALSE) else daemons(2, dispatcher = dispatcher)
    task <- function(dir) {
      writeLines("", file.path(dir, Sys.getpid()))
      Sys.sleep(30)
      1
    }
    running <- lapply(1:2, function(i) mirai(task(dir), task = task, dir = dir))
    queued <- lapply(1:3, function(i) mirai(i))
    expect_false(is.na(time_until(function() length(list.files(dir)) == 2L)), label = label)
    pids <- as.integer(list.files(dir))
    if (dispatcher) expect_identical(unname(status()$mirai[c("awaiting", "executing")]), c(3L, 2L), label = label)
    t0 <- Sys.time()
    if (reset == "0") daemons(0) else daemons(NULL)
    t_reset <- as.numeric(difftime(Sys.time(), t0, units = "secs"))
    # resolved at once (no waiting on them here), every one to 19
    values <- lapply(c(running, queued), function(m) m$data)
    expect_identical(vapply(values, function(v) is_error_value(v) && identical(unclass(v), 19L), logical(1L)), rep(TRUE, 5L), label = label)
    expect_false(daemons_set())
    t_gone <- time_until(function() !any(vapply(pids, proc_alive, logical(1L))), t0)
    expect_false(is.na(t_gone), label = label)
    kill_left(pids)
    unlink(dir, recursive = TRUE)
    cat(sprintf("\n%s: returned after %.0f ms, daemons gone after %.0f ms", label, t_reset * 1000, t_gone * 1000))
  }
  cat("\n")
})

test_that("daemons(0) leaves busy autoexit = FALSE daemons running; a new profile at the URL gets them", {
  daemons(2, autoexit = FALSE)
  url <- nextget("url")
  pids <- unlist(everywhere(Sys.getpid())[])
  on.exit(kill_left(pids))
  m <- lapply(1:2, function(i) mirai({ Sys.sleep(1); 1 }))
  expect_true(time_until(function() status()$mirai[["executing"]] == 2L) >= 0)
  daemons(0)
  expect_identical(vapply(m, function(x) unclass(x$data), 0L), c(19L, 19L))
  Sys.sleep(0.3)
  expect_true(all(vapply(pids, proc_alive, logical(1L))))
  daemons(url = url)
  expect_false(is.na(time_until(function() status()$connections == 2L)))
  expect_setequal(unlist(everywhere(Sys.getpid())[]), pids)
  daemons(NULL)
  expect_false(is.na(time_until(function() !any(vapply(pids, proc_alive, logical(1L))))))
})

test_that("a daemon killed mid-task: that task resolves 19, the others complete", {
  daemons(2)
  on.exit(daemons(0))
  f <- tempfile()
  on.exit(unlink(f), add = TRUE)
  victim <- mirai({ writeLines(as.character(Sys.getpid()), f); Sys.sleep(30); 1 }, f = f)
  expect_false(is.na(time_until(function() file.exists(f) && length(readLines(f)) == 1L)))
  pid <- as.integer(readLines(f))
  rest <- mirai_map(1:8, function(i) { Sys.sleep(0.05); i * 2L })
  t0 <- Sys.time()
  tools::pskill(pid, tools::SIGKILL)
  call_mirai(victim)
  t_19 <- as.numeric(difftime(Sys.time(), t0, units = "secs"))
  expect_true(is_error_value(victim$data))
  expect_identical(unclass(victim$data), 19L)
  expect_identical(rest[.flat], (1:8) * 2L)
  expect_identical(info()[c("connections", "executing", "completed")], c(connections = 1L, executing = 0L, completed = 9L))
  # a replacement daemon joins and takes work
  launch_local(1)
  expect_false(is.na(time_until(function() status()$connections == 2L)))
  expect_identical(mirai_map(1:4, function(i) i)[.flat], 1:4)
  expect_false(proc_alive(pid))
  cat(sprintf("\ndaemon SIGKILLed mid-task: its mirai resolved 19 after %.1f ms (kill to call_mirai() returning)\n", t_19 * 1000))
})

test_that("retry: a task whose daemon is killed runs again elsewhere; repair brings the pool back", {
  daemons(2, retry = 1L, repair = TRUE)
  on.exit(daemons(0))
  dir <- tempfile("retry-")
  dir.create(dir)
  on.exit(unlink(dir, recursive = TRUE), add = TRUE)
  # Each run of the task leaves a file named by its daemon's pid; only the first run stalls.
  task <- function(dir) {
    runs <- length(list.files(dir))
    file.create(file.path(dir, Sys.getpid()))
    if (runs == 0L) Sys.sleep(30)
    Sys.getpid()
  }
  m <- mirai(task(dir), task = task, dir = dir)
  expect_false(is.na(time_until(function() length(list.files(dir)) == 1L)))
  first <- as.integer(list.files(dir))
  expect_identical(mirai_attempts(m), 1L)
  t0 <- Sys.time()
  tools::pskill(first, tools::SIGKILL)
  call_mirai(m)
  t_retry <- as.numeric(difftime(Sys.time(), t0, units = "secs"))
  expect_false(is_error_value(m$data))
  expect_false(identical(m$data, first))
  expect_setequal(as.integer(list.files(dir)), c(first, m$data))
  expect_identical(mirai_attempts(m), 2L)
  # repair: the killed daemon is replaced without launch_local()
  t_repair <- time_until(function() status()$connections == 2L, t0)
  expect_false(is.na(t_repair))
  pids <- unique(unlist(everywhere(Sys.getpid())[]))
  expect_length(pids, 2L)
  expect_false(first %in% pids)
  # out of retries: the second loss resolves 19, after two attempts
  unlink(file.path(dir, list.files(dir)))
  stall <- function(dir) {
    file.create(file.path(dir, Sys.getpid()))
    Sys.sleep(30)
  }
  m2 <- mirai(stall(dir), stall = stall, dir = dir)
  killed <- integer()
  for (k in 1:2) {
    expect_false(is.na(time_until(function() length(list.files(dir)) == k)))
    victim <- setdiff(as.integer(list.files(dir)), killed)
    expect_length(victim, 1L)
    tools::pskill(victim, tools::SIGKILL)
    killed <- c(killed, victim)
  }
  expect_identical(unclass(call_mirai(m2)$data), 19L)
  expect_identical(mirai_attempts(m2), 2L)
  ok <- mirai(1)
  call_mirai(ok)
  expect_identical(mirai_attempts(ok), 1L)
  cat(sprintf("\nretry: daemon SIGKILLed, task answered by another after %.0f ms; pool repaired to 2 after %.2f s\n",
              t_retry * 1000, t_repair))
})

test_that("retry and repair are validated before anything is torn down", {
  daemons(1)
  on.exit(daemons(0))
  expect_error(daemons(1, retry = -1), "`retry` must be a whole number from 0 to 1000")
  expect_error(daemons(1, retry = 1.5), "`retry` must be a whole number from 0 to 1000")
  expect_error(daemons(1, retry = "1"), "`retry` must be a whole number from 0 to 1000")
  expect_error(daemons(1, retry = NA), "`retry` must be a whole number from 0 to 1000")
  expect_error(daemons(1, repair = NA), "`repair` must be TRUE or FALSE")
  expect_error(daemons(1, repair = c(TRUE, FALSE)), "`repair` must be TRUE or FALSE")
  expect_true(daemons_set())
  expect_identical(mirai(2)[], 2)
  expect_error(mirai_attempts(1), "`x` must be a mirai")
})

test_that("mirai_attempts() is 0 for a task stopped before it left the queue, chunked or not", {
  daemons(1)
  on.exit(daemons(0))
  busy <- mirai(Sys.sleep(1))
  queued <- mirai(1)
  elements <- mirai_map(1:64, identity)
  expect_true(stop_mirai(queued))
  expect_true(stop_mirai(elements[[64L]]))
  expect_identical(unclass(queued[]), 20L)
  expect_identical(unclass(elements[[64L]][]), 20L)
  expect_identical(mirai_attempts(queued), 0L)
  expect_identical(mirai_attempts(elements[[64L]]), 0L)
  expect_identical(vapply(1:63, function(i) elements[[i]][], integer(1L)), 1:63)
  expect_identical(mirai_attempts(elements[[1L]]), 1L)
  expect_null(busy[])
})
