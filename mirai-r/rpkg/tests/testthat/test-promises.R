# promises integration (spec 2.9).

skip_if_not_installed("promises")
skip_if_not_installed("later")

settle <- function(p) {
  out <- new.env()
  promises::then(p, onFulfilled = function(v) out$value <- v, onRejected = function(e) out$error <- e)
  wait_until(function() {
    later::run_now(0.05)
    !is.null(out$value) || !is.null(out$error)
  }, 30)
  out
}

test_that("as.promise settles with values and rejects error values", {
  daemons(1)
  on.exit(daemons(0))
  m <- mirai({Sys.sleep(0.2); 7})
  p <- promises::as.promise(m)
  expect_true(promises::is.promise(p))
  expect_identical(promises::as.promise(m), p)
  expect_identical(m$promise, p)
  expect_identical(settle(p)$value, 7)
  done <- mirai(8)
  done[]
  expect_identical(settle(promises::as.promise(done))$value, 8)
  f <- function() stop("inner")
  r <- settle(mirai(f(), f = f))
  expect_identical(conditionMessage(r$error), "Error in f(): inner")
  r <- settle(mirai(Sys.sleep(5), .timeout = 100))
  expect_identical(conditionMessage(r$error), "5 | Timed out")
  skip_if_not_installed("rlang")
  r <- settle(mirai(rlang::interrupt()))
  expect_true(is_mirai_interrupt(r$value))
})

test_that("mirai_map promises and .promise callbacks", {
  daemons(1)
  on.exit(daemons(0))
  r <- settle(mirai_map(1:3, function(x) x * 2))
  expect_identical(r$value, list(2, 4, 6))
  seen <- new.env()
  x <- mirai_map(1:2, function(x) x, .promise = function(v) assign(paste0("v", v), v, envir = seen))
  x[]
  expect_true(wait_until(function() {
    later::run_now(0.05)
    length(ls(seen)) == 2L
  }))
})
