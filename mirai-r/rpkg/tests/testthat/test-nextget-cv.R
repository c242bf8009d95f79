# nextget("cv"): each profile's nanonext condition variable, signalled by the engine once for
# every mirai of the profile that completes, whatever the outcome (nanonext-api §3.2, §9.2).

cv_value <- nanonext::cv_value
until <- nanonext::until

test_that("nextget('cv') is the profile's own conditionVariable, NULL when unset", {
  expect_null(nextget("cv", .compute = "cv-unset"))
  daemons(url = local_url(), .compute = "cv1")
  daemons(url = local_url(), .compute = "cv2")
  cv1 <- nextget("cv", .compute = "cv1")
  expect_s3_class(cv1, "conditionVariable")
  expect_identical(cv_value(cv1), 0L)
  expect_false(identical(cv1, nextget("cv", .compute = "cv2")))
  daemons(0, .compute = "cv2")
  expect_null(nextget("cv", .compute = "cv2"))
  # a reset resolves the waiting tasks (19), each signalling once, before the cv goes
  ms <- lapply(1:3, function(i) mirai(i, .compute = "cv1"))
  expect_identical(cv_value(cv1), 0L)
  daemons(0, .compute = "cv1")
  expect_identical(cv_value(cv1), 3L)
  expect_true(all(vapply(ms, function(m) unclass(m$data) == 19L, logical(1L))))
  expect_null(nextget("cv", .compute = "cv1"))
})

test_that("every kind of completion signals once, and a woken waiter sees the mirai resolved", {
  daemons(1, .compute = "cv3")
  on.exit(daemons(0, .compute = "cv3"))
  cv <- nextget("cv", .compute = "cv3")
  pending <- function(m) .Call(mirai:::mirai_pending, m)
  # a value: the wait is event driven, woken by the completion itself
  m <- mirai({ Sys.sleep(0.3); 1 }, .compute = "cv3")
  t0 <- Sys.time()
  expect_true(until(cv, 10000))
  expect_lt(as.numeric(difftime(Sys.time(), t0, units = "secs")), 5)
  expect_false(pending(m))
  expect_false("value" %in% ls(m))
  expect_identical(m$data, 1)
  # an evaluation error
  m <- mirai(stop("x"), .compute = "cv3")
  expect_true(until(cv, 10000))
  expect_false(pending(m))
  expect_s3_class(m$data, "miraiError")
  # a timeout (5)
  m <- mirai(Sys.sleep(2), .timeout = 100, .compute = "cv3")
  expect_true(until(cv, 10000))
  expect_identical(unclass(m$data), 5L)
  # a cancel (20): signalled by stop_mirai() itself
  m <- mirai(Sys.sleep(5), .compute = "cv3")
  stop_mirai(m)
  expect_true(until(cv, 0L))
  expect_identical(unclass(m$data), 20L)
  # a lost daemon (19)
  m <- mirai(tools::pskill(Sys.getpid(), tools::SIGKILL), .compute = "cv3")
  expect_true(until(cv, 10000))
  expect_identical(unclass(m$data), 19L)
  # nothing else signals it: reading values, waiting on them, connections
  launch_local(1, .compute = "cv3")
  expect_true(wait_until(function() status(.compute = "cv3")$connections == 1L))
  expect_false(until(cv, 200))
  expect_identical(cv_value(cv), 0L)
})

test_that("the cv counts mirai: a chunked map signals once per element", {
  daemons(1, .compute = "cv4")
  on.exit(daemons(0, .compute = "cv4"))
  cv <- nextget("cv", .compute = "cv4")
  mp <- mirai_map(1:100, function(x) x, .compute = "cv4")
  expect_identical(unlist(mp[]), 1:100)
  expect_true(wait_until(function() cv_value(cv) >= 100L))
  Sys.sleep(0.2)
  expect_identical(cv_value(cv), 100L)
  # everywhere() rounds signal once per daemon's task
  nanonext::cv_reset(cv)
  everywhere(1, .compute = "cv4")[]
  expect_true(until(cv, 10000))
  expect_identical(cv_value(cv), 0L)
})

test_that("a sync profile signals once per mirai", {
  daemons(sync = TRUE, .compute = "cv5")
  on.exit(daemons(0, .compute = "cv5"))
  cv <- nextget("cv", .compute = "cv5")
  expect_s3_class(cv, "conditionVariable")
  mirai(1, .compute = "cv5")
  mirai(2, .compute = "cv5")
  expect_identical(cv_value(cv), 2L)
})
