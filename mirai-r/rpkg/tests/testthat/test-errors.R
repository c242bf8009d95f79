# Error values and their methods (spec 2.3, 3.2, 2.10). Built through a sync profile, which
# evaluates with the same machinery as a daemon.

test_that("miraiError carries the string, condition fields, call and stack trace", {
  daemons(sync = TRUE)
  on.exit(daemons(0))
  f <- function(x) if (x > 0) stop("positive")
  e <- mirai({f(-1); f(1)}, f = f)[]
  expect_s3_class(e, c("miraiError", "errorValue", "try-error"), exact = TRUE)
  expect_identical(.subset(e, 1L), "Error in f(1): positive")
  expect_identical(e$message, "positive")
  expect_identical(e$call, quote(f(1)))
  expect_identical(e$condition.class, c("simpleError", "error", "condition"))
  expect_identical(e$stack.trace, list(quote(stop("positive")), quote(f(1))))
  expect_identical(conditionMessage(e), "positive")
  expect_identical(conditionCall(e), quote(f(1)))
  expect_true(is_mirai_error(e))
  expect_true(is_error_value(e))
  expect_false(is_mirai_interrupt(e))
  expect_true(inherits(e, "try-error"))
  expect_identical(capture.output(print(e)), "'miraiError' chr Error in f(1): positive")
  capture.output(vis <- withVisible(print(e)))
  expect_false(vis$visible)
})

test_that("top-level errors give 'Error: <message>' and the evaluation call", {
  daemons(sync = TRUE)
  on.exit(daemons(0))
  e <- mirai(stop("top"))[]
  expect_identical(.subset(e, 1L), "Error: top")
  expect_identical(e$stack.trace, list(quote(stop("top"))))
  expect_identical(e$call, quote(eval(._mirai_.[["._expr_."]], envir = ._mirai_., enclos = globalenv())))
  e <- mirai(undefined_object_xyz)[]
  expect_identical(.subset(e, 1L), "Error: object 'undefined_object_xyz' not found")
  expect_identical(e$stack.trace, list())
  e <- mirai(1 + "a")[]
  expect_identical(.subset(e, 1L), "Error in 1 + \"a\": non-numeric argument to binary operator")
})

test_that("custom condition fields are readable with $ and .DollarNames", {
  skip_if_not_installed("rlang")
  daemons(sync = TRUE)
  on.exit(daemons(0))
  e <- mirai(rlang::abort("ab", meta_uid = "UID001"))[]
  expect_identical(e$meta_uid, "UID001")
  expect_identical(e$message, "ab")
  expect_true("rlang_error" %in% e$condition.class)
  expect_identical(utils::.DollarNames(e, "meta"), "meta_uid")
  expect_true(all(c("message", "call", "condition.class", "stack.trace") %in% utils::.DollarNames(e, "")))
})

test_that("interrupts become miraiInterrupt", {
  skip_if_not_installed("rlang")
  daemons(sync = TRUE)
  on.exit(daemons(0))
  i <- mirai(rlang::interrupt())[]
  expect_s3_class(i, c("miraiInterrupt", "errorValue", "try-error"), exact = TRUE)
  expect_identical(.subset(i, 1L), "")
  expect_null(attr(i, "condition.class"))
  expect_true(is_mirai_interrupt(i))
  expect_true(is_error_value(i))
  expect_false(is_mirai_error(i))
  expect_identical(capture.output(print(i)), "'miraiInterrupt' chr \"\"")
})

test_that("integer error values and the unresolved sentinel print as specified", {
  ev <- mirai:::.error_value(20L)
  expect_s3_class(ev, c("errorValue", "try-error"), exact = TRUE)
  expect_true(is_error_value(ev))
  expect_false(is_mirai_error(ev))
  expect_identical(capture.output(print(ev)), "'errorValue' int 20 | Operation canceled")
  expect_identical(capture.output(print(mirai:::.error_value(5L))), "'errorValue' int 5 | Timed out")
  expect_identical(capture.output(print(mirai:::.error_value(7L))), "'errorValue' int 7 | Object closed")
  expect_identical(capture.output(print(mirai:::.error_value(19L))), "'errorValue' int 19 | Connection reset")
  expect_identical(capture.output(print(mirai:::.error_value(6L))), "'errorValue' int 6 | Connection refused")
  u <- mirai:::.unresolved
  expect_identical(capture.output(print(u)), "'unresolved' logi NA")
  expect_true(unresolved(u))
  expect_false(is_error_value(u))
  expect_false(is_error_value(1L))
  expect_false(is_mirai_error("Error"))
})

test_that("error texts come from the engine's one table of codes, NNG's words included", {
  ev <- function(code) capture.output(print(mirai:::.error_value(code)))
  expect_identical(ev(20L), "'errorValue' int 20 | Operation canceled")
  expect_identical(ev(31L), "'errorValue' int 31 | Connection shutdown")
  expect_identical(ev(0L), "'errorValue' int 0 | Hunky dory")
  expect_identical(ev(1000L), "'errorValue' int 1000 | Internal error detected")
  expect_identical(ev(32L), "'errorValue' int 32 | Unknown error #32")
  # NA prints as nanonext prints it (its print method, nanonext-api §1.3)
  expect_identical(ev(NA), "'errorValue' int -2147483648 | Unknown error #-214748364")
})
