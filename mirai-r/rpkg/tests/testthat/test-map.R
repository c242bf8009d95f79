# mirai_map() shapes and collection options (spec 2.2).

daemons(0)
daemons(2)

test_that("validation", {
  expect_error(mirai_map(1:2, 1), "`.f` must be of type function, not double", fixed = TRUE)
  expect_error(mirai_map(1:2, identity, 1), "all `...` arguments must be named", fixed = TRUE)
  expect_error(mirai_map(1:2, identity, .compute = "nonexistent"), "No daemons set for the 'nonexistent' compute profile.", fixed = TRUE)
})

test_that("vectors and lists: one mirai per element, names, classes survive, .args constant", {
  x <- mirai_map(c(a = 1, b = 2, c = 3), function(x, y) x + y, .args = list(y = 10))
  expect_s3_class(x, "mirai_map")
  expect_true(is_mirai_map(x))
  expect_length(x, 3L)
  expect_true(all(vapply(x, is_mirai, logical(1))))
  out <- x[]
  expect_identical(out, list(a = 11, b = 12, c = 13))
  expect_false(is_mirai_map(out))
  expect_identical(capture.output(print(x)), "< mirai map [3/3] >")
  d <- mirai_map(as.Date(c("2024-01-01", "2024-06-01")), function(d) class(d))[]
  expect_identical(d, list("Date", "Date"))
  f <- mirai_map(factor(c("u", "v")), function(x) as.character(x))[.flat]
  expect_identical(f, c("u", "v"))
  l <- mirai_map(list(quote(a + b), 2), function(x) class(x))[.flat]
  expect_identical(l, c("call", "numeric"))
  g <- mirai_map(1:2, function(x) x * k, k = 3)[.flat]
  expect_identical(g, c(3, 6))
  e <- mirai_map(1:2, function(x) {
    p <- parent.frame()
    c(vapply(c(".f", ".x", ".args", ".mirai_within_map"), exists, logical(1), envir = p, inherits = FALSE),
      get(".mirai_within_map", envir = p))
  })[]
  expect_identical(unname(e[[1]]), rep(TRUE, 5))
})

test_that("data frame rows match arguments by column name; matrix rows by column name", {
  df <- data.frame(b = 1:3, a = c(10, 20, 30))
  expect_identical(mirai_map(df, function(a, b) a - b)[.flat], c(9, 18, 27))
  df2 <- data.frame(a = 1:2, b = 3:4, row.names = c("r1", "r2"))
  expect_identical(mirai_map(df2, function(a, b) a * b)[.flat], c(r1 = 3L, r2 = 8L))
  mat <- matrix(1:4, 2, dimnames = list(c("x", "y"), c("a", "b")))
  expect_identical(mirai_map(mat, function(b, a) a - b)[.flat], c(x = -2L, y = -2L))
  expect_identical(mirai_map(matrix(1:4, 2), function(x, y) x + y)[.flat], c(4L, 6L))
})

test_that("[ never subsets; options in any combination", {
  x <- mirai_map(1:3, function(x) x)
  expect_identical(x[1], list(1L, 2L, 3L))
  expect_identical(x[.flat], 1:3)
  expect_identical(x[mirai::.flat], 1:3)
  expect_identical(x[.stop, .flat], 1:3)
  expect_identical(x[.flat, .stop], 1:3)
  expect_silent(y <- collect_mirai(x, c(".flat", ".stop")))
  expect_identical(y, 1:3)
  expect_identical(collect_mirai(x, list(.stop = TRUE, .flat = TRUE)), 1:3)
  expect_error(collect_mirai(x, "bogus"))
})

test_that(".progress without cli writes the text bar to stderr", {
  with_cli(FALSE, {
    x <- mirai_map(1:2, function(x) x)
    msg <- capture.output(r <- x[.progress, .flat], type = "message")
    expect_identical(r, 1:2)
    expect_identical(paste(msg, collapse = "\n"), "\r[ 0 / 2 .... ]\r[ 1 / 2 .... ]\r[ 2 / 2 done ]")
    msg <- capture.output(invisible(collect_mirai(x, c(.stop = TRUE, .progress = "bar name"))), type = "message")
    expect_match(paste(msg, collapse = ""), "[ 2 / 2 done ]", fixed = TRUE)
  })
})

test_that(".progress with cli shows a cli progress bar and still collects", {
  skip_if_not_installed("cli")
  with_cli(TRUE, {
    x <- mirai_map(1:3, function(x) x)
    expect_identical(x[.progress, .flat], 1:3)
    expect_identical(collect_mirai(x, list(.progress = list(name = "bar", type = "tasks"), .flat = TRUE)), 1:3)
    expect_identical(collect_mirai(x, c(.progress = "named bar")), list(1L, 2L, 3L))
  })
})

test_that(".stop cancels the map and raises the index error (plain and cli)", {
  f <- function(x) if (x == 2) stop("two") else { Sys.sleep(if (x > 2) 30 else 0); x }
  with_cli(FALSE, {
    x <- mirai_map(1:4, f)
    e <- tryCatch(x[.stop], error = identity)
    expect_identical(conditionMessage(e), "In index 2:\ntwo")
    expect_null(conditionCall(e))
    expect_identical(unclass(x[[4]][]), 20L)
    e <- tryCatch(mirai_map(list(1, "a"), function(x) x)[.flat], error = identity)
    expect_identical(conditionMessage(e), "Cannot flatten outputs of differing type: double / character")
    e <- tryCatch(mirai_map(c(a = 2, b = 1), f)[.flat], error = identity)
    expect_identical(conditionMessage(e), "In index 1:\ntwo")
    y <- mirai_map(1:2, function(x) { Sys.sleep(if (x == 2) 30 else 0); x })
    expect_true(stop_mirai(y[[2]]))
    e <- tryCatch(y[.stop], error = identity)
    expect_identical(conditionMessage(e), "In index 2:\n20 | Operation canceled")
  })
  skip_if_not_installed("cli")
  skip_if_not_installed("rlang")
  with_cli(TRUE, {
    e <- tryCatch(mirai_map(c(a = 1, b = 2), f)[.stop], error = identity)
    expect_s3_class(e, "rlang_error")
    expect_identical(conditionCall(e), quote(mirai_map()))
    out <- paste(format(e), collapse = "\n")
    expect_match(out, "In index: 2.", fixed = TRUE)
    expect_match(out, "With name: b.", fixed = TRUE)
    expect_match(out, "two", fixed = TRUE)
    e <- tryCatch(mirai_map(list(1, "a"), function(x) x)[.flat], error = identity)
    expect_match(conditionMessage(e), "cannot flatten outputs of differing type: double / character", fixed = TRUE)
  })
})

test_that("the nested-map guard is seen from functions called by .f", {
  r <- mirai_map(1, function(x) {
    g <- function() tryCatch(mirai::daemons(1), error = conditionMessage)
    g()
  })[.flat]
  expect_identical(r, "cannot create local daemons from within mirai map")
  expect_identical(mirai(tryCatch({mirai::daemons(url = mirai::local_url()); mirai::daemons(0)}, error = conditionMessage))[], FALSE)
})

daemons(0)
