# The queries on another package's Aios (spec sections 2.3, 2.6, 9): objects shaped like a
# mirai, whose handle nanonext reaches only through the shared ABI and whose value is observed
# by reading their own active `data` binding.
foreign <- function(...) nanonext:::.foreign_aio(...)

test_that("the query matrix holds for a foreign Aio", {
  m <- foreign(3000, list(x = 1))
  expect_true(is_aio(m))
  expect_true(unresolved(m))
  expect_true(.unresolved(m))
  expect_true(unresolved(m$data))
  expect_identical(typeof(pipe_id(m)), "externalptr")
  expect_identical(.unresolved(list(m, m)), 2L)
  expect_identical(race_aio(list(m), NULL), 0L)
  stop_aio(m)
  expect_false(.unresolved(m))
  expect_equal(unclass(m$data), 20L)
  expect_true(is_error_value(m$data))
  expect_identical(pipe_id(m), 0L)
})

test_that("completion is seen by .unresolved without observing, then observed", {
  m <- foreign(50, "done")
  msleep(300)
  expect_false(.unresolved(m))
  expect_false("value" %in% ls(m))
  expect_identical(race_aio(list(m), NULL), 1L)
  expect_false(unresolved(m))
  expect_true("value" %in% ls(m))
  expect_identical(m$data, "done")
  expect_true(is.integer(.subset2(m, "aio")))
})

test_that("call_aio, collect_aio and race_aio wait for foreign Aios", {
  x <- cv()
  a <- foreign(100, 1, cv = x)
  b <- foreign(5000)
  expect_identical(race_aio(list(b, a), x), 2L)
  expect_identical(cv_value(x), 1L)
  m <- foreign(50, "v")
  expect_identical(call_aio(m), m)
  expect_identical(m$data, "v")
  l <- list(p = foreign(30, 1), q = foreign(60, 2))
  expect_identical(collect_aio_(l), list(p = 1, q = 2))
  expect_identical(foreign(10, 3)[], 3)
  stop_aio(b)
  expect_false(unresolved(list(a, b, m)))
})

test_that(".keep watches a foreign Aio from the event loop", {
  skip_if_not_installed("later")
  got <- NULL
  ctx <- new.env()
  ctx$resolve <- function(v) got <<- v
  m <- foreign(50, "kept")
  .keep(m, ctx)
  t0 <- mclock()
  while (is.null(got) && mclock() - t0 < 5000) later::run_now(0.05)
  expect_identical(got, "kept")
})
