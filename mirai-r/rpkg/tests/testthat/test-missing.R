# mirai(substitute()): a task whose value is the empty symbol resolves to it, as upstream does.

expect_empty_symbol <- function(m) {
  res <- m[]
  expect_true(missing(res))
  expect_identical(typeof(m$data), "symbol")
  expect_false(unresolved(m))
  expect_false(is_error_value(m$data))
  expect_identical(capture.output(print(m)), "< mirai [$data] >")
}

test_that("the empty symbol comes back from an ephemeral daemon", {
  expect_false(daemons_set())
  expect_empty_symbol(mirai(substitute()))
})

test_that("the empty symbol comes back from daemons, with and without dispatcher, and sync", {
  daemons(1)
  withr::defer(daemons(0))
  expect_empty_symbol(mirai(substitute()))
  expect_empty_symbol(mirai(quote(expr = )))
  r <- mirai_map(1:2, function(x) substitute())[]
  expect_length(r, 2L)
  expect_identical(typeof(r[[1L]]), "symbol")
  expect_identical(r[[2L]], quote(expr = ))
  daemons(1, dispatcher = FALSE, .compute = "direct")
  withr::defer(daemons(0, .compute = "direct"))
  expect_empty_symbol(mirai(substitute(), .compute = "direct"))
  daemons(sync = TRUE, .compute = "sync")
  withr::defer(daemons(0, .compute = "sync"))
  expect_empty_symbol(mirai(substitute(), .compute = "sync"))
})

test_that("collecting with options keeps empty-symbol values, and flattens them like unlist()", {
  daemons(1)
  withr::defer(daemons(0))
  mp <- mirai_map(c(a = 1, b = 2), function(x) substitute())
  r <- mp[.flat]
  expect_identical(r, unlist(list(a = quote(expr = ), b = quote(expr = )), recursive = FALSE))
  expect_identical(names(r), c("a", "b"))
  s <- mirai_map(1:2, function(x) substitute())[.stop, .progress]
  expect_identical(typeof(s[[2L]]), "symbol")
  # An empty symbol beside a number is a differing type, reported as such.
  expect_error(mirai_map(1:2, function(x) if (x == 1) substitute() else x)[.flat], "differing type")
})
