# Batching stays invisible (spec 2.2: results, errors, cancellation and `$data` stay per
# element): a chunked mirai_map() counts, loses, retries and spreads its elements one by one.

# Samples status() and info() while `m` runs: the largest `executing` seen, and whether the
# counters always added up to `total` tasks.
sample_counters <- function(m, total) {
  mx <- 0L
  ok <- TRUE
  while (unresolved(m)) {
    s <- status()$mirai
    i <- info()
    mx <- max(mx, s[["executing"]], i[["executing"]])
    ok <- ok && sum(s) == total && sum(i[c("awaiting", "executing", "completed")]) == total
    Sys.sleep(0.005)
  }
  list(max = mx, ok = ok)
}

test_that("executing never exceeds the daemons during a big map, and counts add up per element", {
  daemons(2)
  on.exit(daemons(0))
  expect_true(daemons_set())
  m <- mirai_map(1:2000, function(x) { Sys.sleep(0.0005); x })
  seen <- sample_counters(m, 2000L)
  expect_lte(seen$max, 2L)
  expect_true(seen$ok)
  expect_identical(unlist(m[]), 1:2000)
  expect_identical(status()$mirai[["completed"]], 2000L)
  expect_identical(status()$mirai[["executing"]], 0L)
})

# A map where element `k` writes its daemon's pid to `pidfile` and waits to be killed (once:
# a retried attempt finds the file and returns), while the host kills that daemon.
kill_mid_batch <- function(n, k, pidfile) {
  m <- mirai_map(seq_len(n), function(x, k, pidfile) {
    if (x == k && !file.exists(pidfile)) {
      writeLines(as.character(Sys.getpid()), pidfile)
      Sys.sleep(30)
    }
    Sys.getpid()
  }, .args = list(k = k, pidfile = pidfile))
  t0 <- Sys.time()
  while (!file.exists(pidfile) && Sys.time() - t0 < 20) Sys.sleep(0.01)
  Sys.sleep(0.05)
  pid <- as.integer(readLines(pidfile))
  tools::pskill(pid, tools::SIGKILL)
  list(m = m, pid = pid)
}

test_that("a lost daemon fails only the element it ran; its unstarted elements complete elsewhere", {
  daemons(2)
  on.exit(daemons(0))
  pidfile <- tempfile()
  on.exit(unlink(pidfile), add = TRUE)
  # Warm up, so that the daemons are measured as quick and take elements in batches.
  expect_length(mirai_map(1:200, function(x) x)[], 200L)
  r <- kill_mid_batch(400L, 200L, pidfile)
  v <- r$m[]
  expect_true(is_error_value(v[[200L]]))
  expect_identical(unclass(v[[200L]])[1L], 19L)
  rest <- v[-200L]
  expect_true(all(vapply(rest, is.integer, logical(1L))))
  # Those after it, including any sent in its batch, ran on the daemon left.
  after <- unlist(v[201:400])
  expect_false(any(after == r$pid))
  expect_identical(mirai_attempts(r$m[[201L]]), 1L)
  expect_identical(status()$mirai[["executing"]], 0L)
})

test_that("retries are per element: only the element that lost its daemon is sent again", {
  daemons(2, retry = 1)
  on.exit(daemons(0))
  pidfile <- tempfile()
  on.exit(unlink(pidfile), add = TRUE)
  expect_length(mirai_map(1:200, function(x) x)[], 200L)
  r <- kill_mid_batch(400L, 150L, pidfile)
  v <- r$m[]
  expect_true(all(vapply(v, is.integer, logical(1L))))
  expect_false(v[[150L]] == r$pid)
  att <- vapply(r$m, mirai_attempts, integer(1L))
  expect_identical(att[150L], 2L)
  expect_true(all(att[-150L] == 1L))
})

test_that("slow elements of a chunked map are spread over all daemons", {
  daemons(4)
  on.exit(daemons(0))
  expect_length(mirai_map(1:8, function(x) x)[], 8L)
  # 32 elements of 0.1 s: each daemon runs 8 of them.
  p <- unlist(mirai_map(1:32, function(x) { Sys.sleep(0.1); Sys.getpid() })[])
  expect_length(unique(p), 4L)
  expect_true(all(table(p) >= 6L))
  # Chunked (64 elements or more on 4 daemons), yet spread as one task per element would be.
  p <- unlist(mirai_map(1:200, function(x) { Sys.sleep(0.02); Sys.getpid() })[])
  expect_length(unique(p), 4L)
  expect_true(all(table(p) >= 30L))
})

test_that("elements that turn slow after quick ones are taken back by an idle daemon", {
  daemons(2)
  on.exit(daemons(0))
  expect_length(mirai_map(1:200, function(x) x)[], 200L)
  m <- mirai_map(1:400, function(x) { if (x > 300) Sys.sleep(0.03); Sys.getpid() })
  seen <- sample_counters(m, 600L)
  expect_lte(seen$max, 2L)
  p <- unlist(m[])[301:400]
  expect_length(unique(p), 2L)
  expect_true(all(table(p) >= 25L))
})

test_that("a stopped element resolves alone and its neighbours complete", {
  daemons(1)
  on.exit(daemons(0))
  m <- mirai_map(1:100, function(x) { Sys.sleep(0.001); x })
  expect_true(stop_mirai(m[[90L]]))
  v <- m[]
  expect_identical(unclass(v[[90L]])[1L], 20L)
  expect_identical(unlist(v[-90L]), (1:100)[-90L])
})
