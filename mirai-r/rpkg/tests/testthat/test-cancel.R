# Cancellation, dead daemons and the memory budget (spec 2.1 stop_mirai/try_mirai, 3.5, 3.8).

test_that("a queued task that is stopped never runs", {
  daemons(1)
  on.exit(daemons(0))
  tf <- tempfile()
  blocker <- mirai({Sys.sleep(1); 1})
  m <- mirai(writeLines("ran", tf), tf = tf)
  expect_true(wait_until(function() info()[["awaiting"]] == 1L, 10))
  expect_true(stop_mirai(m))
  expect_identical(unclass(m[]), 20L)
  expect_identical(capture.output(print(m$data)), "'errorValue' int 20 | Operation canceled")
  expect_false(stop_mirai(m))
  expect_identical(blocker[], 1)
  expect_identical(mirai(2)[], 2)
  expect_false(file.exists(tf))
  expect_identical(info()[["awaiting"]], 0L)
})

test_that("an executing task is interrupted and its daemon survives", {
  daemons(1)
  on.exit(daemons(0))
  pid <- mirai(Sys.getpid())[]
  m <- mirai({Sys.sleep(30); 1})
  expect_true(wait_until(function() info()[["executing"]] == 1L, 10))
  expect_true(stop_mirai(m))
  expect_identical(unclass(m[]), 20L)
  expect_false(stop_mirai(m))
  expect_identical(mirai(Sys.getpid())[], pid)
  expect_identical(info()[["connections"]], 1L)
  # repeated cancellation rounds leave the daemon alive
  for (i in 1:3) {
    x <- mirai({Sys.sleep(30); 1})
    expect_true(wait_until(function() info()[["executing"]] == 1L, 10))
    stop_mirai(x)
  }
  expect_identical(mirai(Sys.getpid())[], pid)
})

test_that("stop_mirai on a list cancels last to first and returns a vector in list order", {
  daemons(1)
  on.exit(daemons(0))
  ms <- list(mirai({Sys.sleep(30); 1}), mirai(2), mirai(3), "x")
  expect_true(wait_until(function() info()[["executing"]] == 1L, 10))
  expect_identical(stop_mirai(ms), c(TRUE, TRUE, TRUE, FALSE))
  expect_identical(lapply(ms[1:3], function(m) unclass(m[])), list(20L, 20L, 20L))
  expect_identical(mirai(4)[], 4)
})

test_that("a daemon killed mid-task gives 19 and the other tasks complete", {
  daemons(2)
  on.exit(daemons(0))
  tf <- tempfile()
  m <- mirai({writeLines(as.character(Sys.getpid()), tf); Sys.sleep(30); 1}, tf = tf)
  expect_true(wait_until(function() file.exists(tf) && length(readLines(tf)) == 1L, 20))
  others <- lapply(1:5, function(i) mirai(i, i = i))
  tools::pskill(as.integer(readLines(tf)))
  v <- m[]
  expect_identical(unclass(v), 19L)
  expect_identical(capture.output(print(v)), "'errorValue' int 19 | Connection reset")
  expect_identical(unlist(collect_mirai(others)), 1:5)
  expect_true(wait_until(function() info()[["connections"]] == 1L, 10))
})

test_that("try_mirai returns NULL over the memory budget, mirai waits", {
  daemons(1, memory = 1)
  on.exit(daemons(0))
  expect_identical(status()$memory[["capacity"]], 1)
  blocker <- mirai({Sys.sleep(1); 1})
  expect_true(wait_until(function() info()[["executing"]] == 1L, 10))
  big <- mirai(length(x), x = raw(2e6))
  expect_true(status()$memory[["used"]] >= 1)
  id <- attr(mirai:::.mk_resolved(NULL), "id")
  expect_null(try_mirai(1))
  expect_identical(attr(mirai:::.mk_resolved(NULL), "id"), id + 1L)
  m <- mirai(3)
  expect_identical(blocker[], 1)
  expect_identical(big[], 2000000L)
  expect_identical(m[], 3)
  expect_identical(try_mirai(4)[], 4)
  expect_true(status()$memory[["peak"]] >= 2)
})

test_that("without a budget try_mirai behaves like mirai", {
  daemons(1)
  on.exit(daemons(0))
  expect_true(is.na(status()$memory[["capacity"]]))
  expect_identical(try_mirai(1)[], 1)
})

test_that("the memory gate of mirai() can be interrupted and then submits nothing", {
  skip_on_os("windows")
  daemons(1, memory = 1)
  on.exit(daemons(0))
  blocker <- mirai({Sys.sleep(2); 1})
  expect_true(wait_until(function() info()[["executing"]] == 1L, 10))
  big <- mirai(1, x = raw(2e6))
  system2("sh", c("-c", shQuote(sprintf("sleep 0.5; kill -INT %d", Sys.getpid()))), wait = FALSE)
  r <- tryCatch(mirai(2), interrupt = function(e) "interrupted")
  expect_identical(r, "interrupted")
  expect_identical(info()[["awaiting"]], 1L)
  expect_identical(big[], 1)
})

test_that("a cancel that reaches a new daemon together with its task stops it before it runs", {
  # A daemon that has just connected reads its first task and the cancel sent right after it
  # in one go; the cancel must not wait in the buffer while the task runs to its end. That
  # happens only in some starts (1 in 5 in a stand-alone loop before the fix), hence 5 rounds.
  for (i in 1:5) {
    daemons(1)
    m <- mirai({ Sys.sleep(600); "ran" })
    expect_true(stop_mirai(m))
    expect_identical(unclass(m$data), 20L)
    # Were the cancel lost, the daemon would stay busy and this would time out (5).
    expect_identical(mirai(1, .timeout = 20000)[], 1)
    daemons(0)
  }
})
