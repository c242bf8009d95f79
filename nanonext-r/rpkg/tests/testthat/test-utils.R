# Utilities (spec section 4).

test_that("random gives OS bytes as hex or raw", {
  expect_match(random(), "^[0-9a-f]{2}$")
  expect_identical(nchar(random(16L)), 32L)
  r <- random(7, convert = FALSE)
  expect_identical(typeof(r), "raw")
  expect_length(r, 7L)
  expect_identical(nchar(random(2.9)), 4L)
  expect_identical(nchar(random(1024L)), 2048L)
  expect_identical(nchar(random(3L, convert = NA)), 6L)
  expect_false(identical(random(16L), random(16L)))
  set.seed(1); a <- random(8L); set.seed(1); b <- random(8L)
  expect_false(identical(a, b))
  for (n in list(0, 1025L, "8", NA, NULL, -1, 1e10, NaN, list(8)))
    expect_error(random(n), "`n` must be an integer value between 1 and 1024", fixed = TRUE)
})

test_that("mclock is monotonic and msleep sleeps or returns at once", {
  t0 <- mclock()
  expect_type(t0, "double")
  expect_null(msleep(1))
  expect_invisible(msleep(1L))
  msleep(50)
  expect_gte(mclock() - t0, 45)
  t1 <- mclock()
  for (x in list(-5, "a", NULL, NA, TRUE, NA_integer_, NaN, list(1))) msleep(x)
  expect_lt(mclock() - t1, 40)
})

test_that("parse_url splits URLs", {
  expect_identical(
    parse_url("https://user:pw@Example.COM:8443/a/b?x=1#frag"),
    c(scheme = "https", userinfo = "user:pw", hostname = "example.com", port = "8443",
      path = "/a/b", query = "x=1", fragment = "frag")
  )
  expect_identical(parse_url("wss://h/p")[["port"]], "443")
  expect_identical(parse_url("http://h")[["path"]], "")
  expect_identical(parse_url("tcp://[::1]:80")[["hostname"]], "::1")
  expect_identical(parse_url("tcp://h")[["port"]], "")
  expect_identical(parse_url("inproc://x")[["path"]], "x")
  expect_identical(parse_url("abstract://x")[["path"]], "x")
  expect_identical(parse_url("ipc:///tmp/s")[["path"]], "/tmp/s")
  expect_identical(unname(parse_url("http://")), c("http", "", "", "80", "", "", ""))
  for (u in list("not a url", "", NA_character_, 1, NULL))
    expect_error(parse_url(u), "3 | Invalid argument", fixed = TRUE)
})

test_that("status_code gives reason phrases", {
  expect_identical(status_code(418), "418 | I'm a teapot")
  expect_identical(status_code(999), "999 | Unknown HTTP Status")
  expect_identical(status_code("200"), "200 | OK")
  expect_identical(status_code(404L), "404 | Not Found")
  expect_identical(status_code(511L), "511 | Network Authentication Required")
})

test_that("serial_config validates in order and wraps functions", {
  expect_identical(serial_config("a", identity, identity), list("a", list(identity), list(identity)))
  expect_null(names(serial_config("a", identity, identity)))
  l <- serial_config(c("a", "b"), list(identity, identity), list(identity, identity))
  expect_length(l[[2L]], 2L)
  expect_error(serial_config(c("a", "b"), identity, identity),
               "`class`, `sfunc` and `ufunc` must all be the same length", fixed = TRUE)
  expect_error(serial_config(1, identity, identity), "`class` must be a character vector", fixed = TRUE)
  expect_error(serial_config("a", "f", identity), "`sfunc` must be a function or list of functions", fixed = TRUE)
  expect_error(serial_config("a", identity, "f"), "`ufunc` must be a function or list of functions", fixed = TRUE)
  e <- tryCatch(serial_config(1, identity, identity), error = identity)
  expect_identical(conditionCall(e)[[1L]], quote(serial_config))
})

test_that("ip_addr, nng_version and the class predicates", {
  ip <- ip_addr()
  expect_type(ip, "character")
  expect_false(is.null(names(ip)))
  expect_false(any(ip == "127.0.0.1"))
  expect_true(all(ip == "" | grepl("^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+$", ip)))
  v <- nng_version()
  expect_type(v, "character")
  expect_length(v, 2L)
  expect_false(is_nano(1))
  expect_true(is_nano(structure(1, class = "nanoObject")))
  expect_true(is_nano(structure(1, class = c("nanoSocket", "nano"))))
  expect_false(is_ncurl_session(1))
  expect_true(is_ncurl_session(structure(1, class = "ncurlSession")))
})

test_that(".mark and .advance", {
  expect_true(.mark())
  expect_false(.mark(FALSE))
  expect_identical(.mark(FALSE), FALSE)
  set.seed(7)
  expect_null(.advance())
  x <- runif(1)
  set.seed(7)
  rexp(1)
  expect_identical(runif(1), x)
})

test_that("write_stdout writes past sink()", {
  out <- system2(file.path(R.home("bin"), "Rscript"),
                 c("-e", shQuote("sink(tempfile()); nanonext::write_stdout('past sink'); sink()")),
                 stdout = TRUE, env = paste0("R_LIBS=", paste(.libPaths(), collapse = ":")))
  expect_identical(out, "past sink")
  expect_error(write_stdout(1), "`x` must be a character vector", fixed = TRUE)
})
