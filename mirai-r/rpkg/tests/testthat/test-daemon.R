# daemon(): exit codes and flags (spec 2.5). The daemon runs in this process, dialing a host
# of this process that already holds its tasks.

test_that("maxtasks gives 3, idletime 1, walltime 2; on_daemon() is FALSE afterwards", {
  daemons(url = local_url())
  on.exit(daemons(0))
  url <- nextget("url")
  m <- mirai(on_daemon())
  expect_identical(daemon(url, maxtasks = 1), 3L)
  expect_true(m[])
  expect_false(on_daemon())
  expect_identical(daemon(url, idletime = 200), 1L)
  a <- mirai({Sys.sleep(0.3); 1})
  expect_identical(daemon(url, walltime = 100), 2L)
  expect_identical(a[], 1)
})

test_that("maxtasks (3) wins over a walltime that elapsed during the last task", {
  daemons(url = local_url())
  on.exit(daemons(0))
  a <- mirai({Sys.sleep(0.3); 1})
  expect_identical(daemon(nextget("url"), walltime = 100, maxtasks = 1), 3L)
  expect_identical(a[], 1)
})

test_that("direct mode daemon with rs and cleanup = FALSE", {
  daemons(url = local_url(), dispatcher = FALSE)
  on.exit(daemons(0))
  rs <- nextstream()
  h <- mirai({assign("kept_xyz", 5, globalenv()); .Random.seed})
  k <- mirai(get("kept_xyz", globalenv()))
  on.exit(if (exists("kept_xyz", globalenv())) rm("kept_xyz", envir = globalenv()), add = TRUE)
  expect_identical(daemon(nextget("url"), dispatcher = FALSE, maxtasks = 2, cleanup = FALSE, rs = rs), 3L)
  expect_identical(h[], rs)
  expect_identical(k[], 5)
})

test_that("output = FALSE sinks output; a refused synchronous dial errors", {
  expect_error(daemon("tcp://127.0.0.1:1"), "Connection refused", fixed = TRUE)
  expect_identical(sink.number(), 0L)
  daemons(url = local_url())
  on.exit(daemons(0))
  m <- mirai({cat("hidden\n"); message("hidden"); 1})
  out <- capture.output(code <- daemon(nextget("url"), maxtasks = 1), type = "output")
  expect_identical(out, character())
  expect_identical(code, 3L)
  expect_identical(m[], 1)
})

test_that("nextcode", {
  expect_identical(nextcode(0L), "0 | Daemon connection terminated")
  expect_identical(nextcode(1L), "1 | Daemon idletime limit reached")
  expect_identical(nextcode(2L), "2 | Daemon walltime limit reached")
  expect_identical(nextcode(3L), "3 | Daemon task limit reached")
  expect_identical(nextcode(4L), character())
  expect_error(nextcode(1:2))
})

test_that("a daemon returns 0 when its host goes away (autoexit = NA)", {
  daemons(url = local_url())
  on.exit(daemons(0))
  tf <- tempfile()
  cmd <- sprintf("saveRDS(mirai::daemon(\"%s\", autoexit = NA), \"%s\")", nextget("url"), tf)
  system2(rscript, c("-e", shQuote(cmd)), wait = FALSE)
  expect_true(wait_until(function() status()$connections == 1L))
  daemons(0)
  expect_true(wait_until(function() file.exists(tf) && !inherits(try(readRDS(tf), silent = TRUE), "try-error"), 20))
  expect_identical(readRDS(tf), 0L)
})
