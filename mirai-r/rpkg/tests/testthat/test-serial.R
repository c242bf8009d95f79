# serial_config() and register_serial() (spec 2.7).

test_that("serial_config validates exactly and returns an unnamed list", {
  cfg <- serial_config("cls", function(x) serialize(x, NULL), unserialize)
  expect_null(names(cfg))
  expect_null(attributes(cfg))
  expect_length(cfg, 3L)
  expect_identical(cfg[[1L]], "cls")
  expect_true(is.list(cfg[[2L]]) && is.function(cfg[[2L]][[1L]]))
  expect_error(serial_config(1, identity, identity), "`class` must be a character vector", fixed = TRUE)
  expect_error(serial_config(c("a", "b"), identity, identity), "`class`, `sfunc` and `ufunc` must all be the same length", fixed = TRUE)
  expect_error(serial_config("a", "f", identity), "`sfunc` must be a function or list of functions", fixed = TRUE)
  expect_error(serial_config("a", identity, list(1)), "`ufunc` must be a function or list of functions", fixed = TRUE)
  two <- serial_config(c("a", "b"), list(identity, identity), list(identity, identity))
  expect_identical(two[[1L]], c("a", "b"))
})

test_that("hooks apply to reference objects in tasks and results", {
  sfunc <- function(x) charToRaw(get("v", envir = x))
  ufunc <- function(r) {
    e <- new.env()
    e$v <- paste("restored", rawToChar(r))
    class(e) <- "hooked"
    e
  }
  daemons(1, serial = serial_config("hooked", sfunc, ufunc))
  on.exit(daemons(0))
  obj <- new.env()
  obj$v <- "abc"
  class(obj) <- "hooked"
  r <- mirai(list(get("v", envir = x), x), x = obj)[]
  expect_identical(r[[1L]], "restored abc")
  expect_identical(get("v", envir = r[[2L]]), "restored restored abc")
  bad <- serial_config("hooked", function(x) "not raw", ufunc)
  daemons(1, serial = bad)
  expect_error(mirai(1, x = obj), "Serialization function for `hooked` did not return a raw vector", fixed = TRUE)
})

test_that("register_serial appends to the registry used by later daemons()", {
  reg <- get(".opts", envir = asNamespace("mirai"))
  prev <- reg$serial
  on.exit(reg$serial <- prev)
  reg$serial <- NULL
  expect_null(register_serial("c1", identity, identity))
  register_serial(c("c2", "c1"), list(identity, identity), list(identity, identity))
  expect_identical(reg$serial[[1L]], c("c1", "c2", "c1"))
  expect_length(reg$serial[[2L]], 3L)
  expect_length(reg$serial[[3L]], 3L)
})
