# mirai_map(.args =) (spec 2.2, mirai 2.7): `.args` are constant arguments to `.f`; named ones
# match by name, unnamed ones are positional after the element (or the row's columns).

test_that("unnamed .args are positional after the element (vectors, lists, data frames, matrices)", {
  daemons(2)
  withr::defer(daemons(0))
  x <- mirai_map(1:3, rnorm, .args = list(mean = 20, 2))[]
  expect_identical(lengths(x), 1:3)
  expect_true(all(abs(unlist(x) - 20) < 15))
  expect_identical(mirai_map(data.frame(1:3, 3:1), sum, .args = list(3L))[.flat], c(7L, 7L, 7L))
  expect_identical(mirai_map(list(x = "a"), function(...) do(...), do = function(x, y) paste0(x, y), .args = list("b"))[],
                   list(x = "ab"))
  # Named and unnamed together: the unnamed ones keep their order after the element.
  expect_identical(mirai_map(1:2, function(x, y, z) paste(x, y, z), .args = list(z = "Z", "Y"))[.flat], c("1 Y Z", "2 Y Z"))
  # Matrix rows are matched by column name, then the positional constants.
  m <- matrix(1:4, 2L, dimnames = list(c("r1", "r2"), c("a", "b")))
  expect_identical(mirai_map(m, function(a, b, k) a * 10L + b + k, .args = list(100L))[.flat], c(r1 = 113L, r2 = 124L))
  # A vector works like a list, and values are passed as values (a call is not evaluated).
  expect_identical(mirai_map(1:2, function(x, y) x + y, .args = 10L)[.flat], c(11L, 12L))
  expect_identical(mirai_map(1, function(x, y) class(y), .args = list(quote(a + b)))[.flat], "call")
  # An environment still gives named constants.
  e <- new.env()
  e$y <- 5
  expect_identical(mirai_map(1:2, function(x, y) x * y, .args = e)[.flat], c(5, 10))
})

test_that("chunked maps and sync profiles pass positional .args too", {
  daemons(2)
  withr::defer(daemons(0))
  # 100 elements on 2 daemons are sent in chunks (R/map.R, .chunk_sizes).
  expect_false(is.null(mirai:::.chunk_sizes(mirai:::..[["default"]], 100L)))
  expect_identical(mirai_map(1:100, function(x, y) x + y, .args = list(1000L))[.flat], 1001:1100)
  expect_identical(mirai_map(data.frame(a = 1:40, b = 40:1), function(a, b, k) a + b + k, .args = list(1L))[.flat],
                   rep(42L, 40L))
  daemons(sync = TRUE, .compute = "s")
  withr::defer(daemons(0, .compute = "s"))
  expect_identical(mirai_map(1:3, function(x, y) x - y, .args = list(1L), .compute = "s")[.flat], 0:2)
})
