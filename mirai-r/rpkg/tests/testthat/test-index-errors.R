# The index error of `.stop` and `.flat` (spec 2.2): it says where it happened, in the message
# (cli and plain) and, with cli, in the condition's `location` and `name` fields.

test_that("with cli, x[.stop] and x[.flat] errors carry location and name and show them", {
  skip_if_not_installed("cli")
  skip_if_not_installed("rlang")
  daemons(2)
  withr::defer(daemons(0))
  f <- function(x) if (x == 3) stop("three") else x
  with_cli(TRUE, {
    e <- tryCatch(mirai_map(c(a = 1, b = 2, c = 3), f)[.stop], error = identity)
    expect_s3_class(e, c("rlang_error", "error", "condition"))
    expect_identical(e$location, 3L)
    expect_identical(e$name, "c")
    expect_identical(conditionCall(e), quote(mirai_map()))
    out <- paste(format(e), collapse = "\n")
    expect_match(out, "In index: 3.", fixed = TRUE)
    expect_match(out, "With name: c.", fixed = TRUE)
    expect_match(out, "three", fixed = TRUE)
    expect_match(conditionMessage(e), "In index: 3.", fixed = TRUE)
    expect_identical(conditionMessage(e$parent), "three")
    e <- tryCatch(mirai_map(c(a = 1, b = 2, c = 3), f)[.flat], error = identity)
    expect_identical(e$location, 3L)
    expect_identical(e$name, "c")
    expect_match(conditionMessage(e), "With name: c.", fixed = TRUE)
    # Raised at top level in a fresh R session, as a user sees it at the console.
    code <- "library(mirai); daemons(1); mirai_map(c(a = 1, b = 2, c = 3), function(x) if (x == 3) stop('three') else x)[.stop]"
    out <- paste(suppressWarnings(system2(rscript, c("-e", shQuote(code)), stdout = TRUE, stderr = TRUE)), collapse = "\n")
    expect_match(out, "In index: 3.", fixed = TRUE)
    expect_match(out, "With name: c.", fixed = TRUE)
    expect_match(out, "three", fixed = TRUE)
    # No name: `name` is NULL and no name bullet.
    e <- tryCatch(mirai_map(1:3, f)[.stop], error = identity)
    expect_identical(e$location, 3L)
    expect_null(e$name)
    expect_false(grepl("With name", conditionMessage(e), fixed = TRUE))
    # An integer error value has the nng-style text as its parent's message.
    y <- mirai_map(1:2, function(x) { Sys.sleep(if (x == 2) 30 else 0); x })
    stop_mirai(y[[2L]])
    e <- tryCatch(y[.flat], error = identity)
    expect_identical(e$location, 2L)
    expect_identical(conditionMessage(e$parent), "20 | Operation canceled")
  })
})

test_that("without cli, the plain index error keeps the index", {
  daemons(1)
  withr::defer(daemons(0))
  with_cli(FALSE, {
    e <- tryCatch(mirai_map(c(a = 1, b = 2, c = 3), function(x) if (x == 3) stop("three") else x)[.stop], error = identity)
    expect_s3_class(e, "simpleError")
    expect_identical(conditionMessage(e), "In index 3:\nthree")
    expect_null(conditionCall(e))
    e <- tryCatch(mirai_map(list(1, 2, "a"), function(x) x + 1)[.flat], error = identity)
    expect_identical(conditionMessage(e), "In index 3:\nnon-numeric argument to binary operator")
  })
})
