# RNG streams (spec 3.7).

run <- function(...) {
  daemons(..., seed = 123)
  on.exit(daemons(0))
  mirai_map(1:8, function(i) runif(1))[.flat]
}

test_that("seed gives the same results for 1, 2 and 4 daemons, direct mode and sync", {
  daemons(0)
  r1 <- run(1)
  expect_length(unique(r1), 8L)
  expect_identical(run(2), r1)
  expect_identical(run(4), r1)
  expect_identical(run(2, dispatcher = FALSE), r1)
  expect_identical(run(sync = TRUE), r1)
})

test_that("the per-mirai stream is not advanced by everywhere, launches or rejected try_mirai", {
  daemons(1, seed = 1, memory = 1)
  on.exit(daemons(0))
  s <- nextget("stream")
  everywhere(1)
  launch_remote(1)
  expect_identical(nextget("stream"), s)
  blocker <- mirai({Sys.sleep(1); 1})
  expect_identical(nextget("stream"), parallel::nextRNGStream(s))
  s <- nextget("stream")
  expect_true(wait_until(function() info()[["executing"]] == 1L, 10))
  big <- mirai(1, x = raw(2e6))
  s <- nextget("stream")
  expect_null(try_mirai(1))
  expect_identical(nextget("stream"), s)
  expect_identical(nextstream(), s)
  expect_identical(nextget("stream"), parallel::nextRNGStream(s))
  big[]
})

test_that("profile creation advances the host RNG by one draw and restores its kind", {
  daemons(0)
  set.seed(42)
  kind <- RNGkind()
  daemons(sync = TRUE)
  daemons(0)
  x <- runif(1)
  set.seed(42)
  stats::rexp(1)
  expect_identical(runif(1), x)
  expect_identical(RNGkind(), kind)
  set.seed(5)
  daemons(sync = TRUE)
  s1 <- nextget("stream")
  daemons(0)
  set.seed(5)
  daemons(sync = TRUE)
  expect_identical(nextget("stream"), s1)
  daemons(0)
})

test_that("seed = NULL: one stream per daemon, from s0", {
  daemons(1)
  s0 <- nextget("stream")
  expect_identical(mirai(.Random.seed)[], parallel::nextRNGStream(s0))
  daemons(0)
  daemons(1, dispatcher = FALSE)
  # the launch command of the first daemon carried s0; the profile stream moved on
  expect_identical(parallel::nextRNGStream(mirai(.Random.seed)[]), nextget("stream"))
  daemons(0)
})
