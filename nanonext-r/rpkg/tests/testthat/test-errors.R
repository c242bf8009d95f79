# Error values and codes (spec section 1).

test_that("nng_error formats codes by the spec's table and rules", {
  expect_identical(nng_error(5L), "5 | Timed out")
  expect_identical(nng_error(0), "0 | Hunky dory")
  expect_identical(nng_error(1000L), "1000 | Internal error detected")
  expect_identical(nng_error(32L), "32 | Unknown error #32")
  expect_identical(nng_error(0x20000003L), "536870915 | Transport error #3")
  expect_identical(nng_error("20"), "20 | Operation canceled")
  expect_identical(nng_error(20.9), "20 | Operation canceled")
  expect_identical(nng_error(TRUE), "1 | Interrupted")
  expect_identical(nng_error(19L), "19 | Connection reset")
  expect_identical(nng_error(NA), "-2147483648 | Unknown error #-214748364")
  expect_identical(nchar(nng_error(NA), "bytes"), 39L)
  expect_identical(nng_error(c(7L, 8L)), "7 | Object closed")
  skip_on_os(c("windows", "mac", "solaris"))
  expect_identical(nng_error(268435458), "268435458 | No such file or directory")
})

test_that("errorValues print, compare and test as the spec says", {
  e <- structure(5L, class = c("errorValue", "try-error"))
  expect_output(expect_invisible(print(e)), "'errorValue' int 5 | Timed out", fixed = TRUE)
  expect_true(e == 5L)
  expect_s3_class(e + 1L, "errorValue")
  expect_true(is_error_value(e))
  expect_true(is_error_value(structure("x", class = c("miraiError", "errorValue", "try-error"))))
  expect_false(is_error_value(5L))
  expect_true(is_nul_byte(as.raw(0L)))
  expect_false(is_nul_byte(as.raw(c(0L, 0L))))
  expect_false(is_nul_byte(as.raw(1L)))
  expect_false(is_nul_byte(0L))
  expect_false(is_nul_byte(NULL))
})

test_that("the unresolved sentinel prints", {
  u <- nanonext:::.unresolvedValue
  expect_output(expect_invisible(print(u)), "'unresolved' logi NA", fixed = TRUE)
  expect_true(unresolved(u))
  expect_identical(class(u), "unresolvedValue")
  expect_true(is.na(u))
})
