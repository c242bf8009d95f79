# Promises over Aios (spec section 2.4), on the internal timer Aio.
timer <- function(...) nanonext:::.timer_aio(...)

run_until <- function(done, secs = 5) {
  t0 <- mclock()
  while (!done() && mclock() - t0 < secs * 1000) later::run_now(0.05)
  done()
}

test_that(".keep resolves in ctx through later, also after completion", {
  skip_if_not_installed("later")
  got <- NULL
  ctx <- new.env()
  ctx$resolve <- function(v) got <<- v
  r <- timer(50, "v1")
  expect_null(.keep(r, ctx))
  expect_identical(parent.env(r), ctx)
  expect_true(run_until(function() !is.null(got)))
  expect_identical(got, "v1")
  got <- NULL
  done <- timer(1, "v2")
  msleep(100)
  expect_false(.unresolved(done))
  .keep(done, ctx)
  expect_true(run_until(function() !is.null(got)))
  expect_identical(got, "v2")
  expect_null(.keep(timer(1, send = TRUE), ctx))
  expect_null(.keep("x", ctx))
  observed <- timer(1, 1)
  call_aio(observed)
  got <- NULL
  .keep(observed, ctx)
  later::run_now(0.1)
  expect_null(got)
})

test_that("as.promise resolves recvAio values and rejects errorValues", {
  skip_if_not_installed("promises")
  skip_if_not_installed("later")
  val <- NULL
  err <- NULL
  r <- timer(50, list(a = 1))
  p <- promises::as.promise(r)
  expect_true(promises::is.promise(p))
  expect_identical(promises::as.promise(r), p)
  promises::then(p, function(v) val <<- v)
  e <- timer(20, error = 5L)
  promises::catch(promises::as.promise(e), function(x) err <<- conditionMessage(x))
  expect_true(run_until(function() !is.null(val) && !is.null(err)))
  expect_identical(val, list(a = 1))
  expect_identical(err, "5 | Timed out")
  val <- NULL
  promises::then(promises::as.promise(r), function(v) val <<- v)
  expect_true(run_until(function() !is.null(val)))
  expect_identical(val, list(a = 1))
})
