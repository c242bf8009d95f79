pair_up <- function(proto1 = "pair", proto2 = proto1) {
  a <- socket(proto1, listen = "tcp://127.0.0.1:0")
  b <- socket(proto2, dial = a$listener[[1L]]$url, autostart = NA)
  list(a = a, b = b)
}

test_that("serial and raw round trips", {
  p <- pair_up()
  a <- p$a; b <- p$b
  expect_identical(send(a, list(a = 1), block = 1000), 0L)
  expect_identical(recv(b, block = 1000), list(a = 1))
  rt <- function(x, mode) {
    expect_identical(send(a, x, mode = "raw", block = 1000), 0L)
    recv(b, mode = mode, block = 1000)
  }
  expect_identical(rt(c("a", "", "b", ""), "character"), c("a", "", "b", ""))
  expect_identical(rt(c(TRUE, NA, FALSE), "logical"), c(TRUE, NA, FALSE))
  expect_identical(rt(c(7L, NA), "integer"), c(7L, NA))
  expect_identical(rt(1 + 2i, "complex"), 1 + 2i)
  expect_identical(rt(c(1.5, -2), "double"), c(1.5, -2))
  expect_identical(rt(c(1.5, -2), "numeric"), c(1.5, -2))
  expect_identical(rt(NULL, "raw"), raw(0))
  expect_identical(rt(NULL, "character"), character(0))
  expect_identical(rt(NULL, "double"), numeric(0))
  expect_identical(rt(NULL, "string"), "")
  expect_identical(rt(3L, 8L), as.raw(c(3, 0, 0, 0)))
  expect_identical(rt("ab", "raw"), as.raw(c(0x61, 0x62, 0)))
  expect_identical(rt(NA_character_, "string"), "NA")
  expect_identical(rt(factor(c("x", "y")), "integer"), 1:2)
  expect_identical(rt(c(a = 1L), "integer"), 1L)
  expect_identical(rt("hello", "string"), "hello")
  expect_identical(rt(serialize(1:3, NULL), "serial"), 1:3)
  expect_identical(rt(serialize(1:3, NULL, ascii = TRUE), 1L), 1:3)
  close(a); close(b)
})

test_that("bytes that do not fit the mode come back raw with an immediate warning", {
  p <- pair_up()
  a <- p$a; b <- p$b
  send(a, as.raw(1:3), mode = "raw", block = 1000)
  expect_warning(r <- recv(b, "double", block = 1000), "received data could not be converted to double", fixed = TRUE)
  expect_identical(r, as.raw(1:3))
  send(a, "abc", mode = "raw", block = 1000)
  expect_warning(r <- recv(b, block = 1000), "received data could not be unserialized", fixed = TRUE)
  expect_identical(r, as.raw(c(0x61, 0x62, 0x63, 0)))
  send(a, c("ab", "cd"), mode = "raw", block = 1000)
  expect_warning(r <- recv(b, "string", block = 1000), "data could not be converted to a character string", fixed = TRUE)
  expect_identical(r, as.raw(c(0x61, 0x62, 0, 0x63, 0x64, 0)))
  for (m in c("integer", "logical", "complex", "numeric")) {
    send(a, as.raw(1:3), mode = "raw", block = 1000)
    expect_warning(recv(b, m, block = 1000), sprintf("received data could not be converted to %s", m), fixed = TRUE)
  }
  w <- NULL
  send(a, as.raw(1:3), mode = "raw", block = 1000)
  withCallingHandlers(recv(b, "double", block = 1000), warning = function(x) { w <<- x; invokeRestart("muffleWarning") })
  expect_null(conditionCall(w))
  # Passes the sniff but is truncated: an R error.
  send(a, serialize(1:100, NULL, xdr = FALSE)[1:20], mode = "raw", block = 1000)
  expect_error(recv(b, block = 1000))
  close(a); close(b)
})

test_that("argument errors", {
  s <- socket("pair")
  expect_error(send(s, 1, mode = "ser"), "`mode` should be one of: serial, raw", fixed = TRUE)
  expect_error(send(s, list(1), mode = "raw"), "`data` must be an atomic vector type or NULL to send in mode 'raw'", fixed = TRUE)
  expect_error(recv(s, mode = "int"), "`mode` should be one of: serial, character, complex, double, integer, logical, numeric, raw, string", fixed = TRUE)
  expect_error(recv(s, mode = "logica"), "`mode` should be one of", fixed = TRUE)
  expect_error(send(1, 1), "`con` is not a valid Socket, Context or Stream", fixed = TRUE)
  expect_error(recv("x"), "`con` is not a valid Socket, Context or Stream", fixed = TRUE)
  close(s)
})

test_that("block semantics: non-blocking 8, bounded 5, recv-timeout for TRUE", {
  s <- socket("pair")
  for (b in list(NULL, FALSE, NA, 0L, -5)) expect_identical(unclass(recv(s, block = b)), 8L)
  t0 <- Sys.time()
  expect_identical(unclass(recv(s, block = 80)), 5L)
  expect_gte(as.numeric(Sys.time() - t0, units = "secs"), 0.07)
  expect_identical(unclass(send(s, "x")), 8L)
  expect_identical(unclass(send(s, "x", block = 50)), 5L)
  close(s)
  expect_identical(unclass(send(s, 1)), 7L)
  expect_identical(unclass(recv(s)), 7L)
})

test_that(".mark() prefixes serial sends with the header, which receivers skip", {
  p <- pair_up()
  a <- p$a; b <- p$b
  expect_true(.mark())
  on.exit(.mark(FALSE))
  send(a, 42, block = 1000)
  r <- recv(b, mode = "raw", block = 1000)
  expect_identical(r[1:8], as.raw(c(7, 0, 0, 1, 0, 0, 0, 0)))
  send(a, 42, block = 1000)
  expect_identical(recv(b, block = 1000), 42)
  expect_false(.mark(FALSE))
  send(a, 42, block = 1000)
  expect_identical(recv(b, mode = "raw", block = 1000)[1:2], as.raw(c(0x42, 0x0a)))
  close(a); close(b)
})

test_that("poly sends to one pipe; push/pull and pub/sub directions", {
  a <- socket("poly", listen = "tcp://127.0.0.1:0")
  u <- a$listener[[1L]]$url
  b <- socket("poly", dial = u, autostart = NA)
  c2 <- socket("poly", dial = u, autostart = NA)
  send(b, "from b", block = 1000)
  expect_identical(recv(a, block = 1000), "from b")
  close(b); close(c2); close(a)
  p <- pair_up("push", "pull")
  expect_identical(unclass(recv(p$a)), 9L)
  expect_identical(unclass(send(p$b, 1)), 9L)
  send(p$a, 1:3, block = 1000)
  expect_identical(recv(p$b, block = 1000), 1:3)
  close(p$a); close(p$b)
})
