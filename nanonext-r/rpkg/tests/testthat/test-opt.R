test_that("opt() gets and opt<- sets, with the type rules and errors", {
  s <- socket("pair")
  expect_identical(opt(s, "send-timeout"), -1L)
  expect_identical(opt(s, "recv-size-max"), 0L)
  expect_identical(opt(s, "socket-name"), as.character(s$id))
  opt(s, "recv-timeout") <- 60L
  expect_identical(opt(s, "recv-timeout"), 60L)
  expect_identical(unclass(recv(s, block = TRUE)), 5L)
  opt(s, "send-timeout") <- 25.9
  expect_identical(opt(s, "send-timeout"), 25L)
  expect_identical(`opt<-`(s, "socket-name", "nm"), s)
  expect_identical(opt(s, "socket-name"), "nm")
  expect_identical(stat(s, "name"), "nm")
  opt(s, "recv-size-max") <- 1024
  expect_identical(opt(s, "recv-size-max"), 1024L)
  opt(s, "recv-buffer") <- 4L
  expect_identical(opt(s, "recv-buffer"), 4L)
  expect_error(opt(s, "no-such-opt"), "9 | Not supported", fixed = TRUE)
  expect_error(opt(s, "no-such-opt") <- 1L, "9 | Not supported", fixed = TRUE)
  expect_error(opt(s, "recv-buffer") <- "a", "30 | Incorrect type", fixed = TRUE)
  expect_error(opt(s, "recv-buffer") <- 10000L, "30 | Incorrect type", fixed = TRUE)
  expect_error(opt(s, "recv-buffer") <- -1L, "30 | Incorrect type", fixed = TRUE)
  expect_error(opt(s, "socket-name") <- NULL, "3 | Invalid argument", fixed = TRUE)
  expect_error(opt(s, "x") <- list(1), "type of `value` not supported", fixed = TRUE)
  expect_error(opt(s, "serial"), "9 | Not supported", fixed = TRUE)
  expect_error(opt(s, "req:resend-time"), "9 | Not supported", fixed = TRUE)
  expect_error(opt("x", "send-timeout"), "`object` is not a valid Socket, Context, Stream, Listener, or Dialer", fixed = TRUE)
  expect_error(`opt<-`("x", "send-timeout", 1L), "`object` is not a valid Socket, Context, Stream, Listener or Dialer", fixed = TRUE)
  close(s)
  expect_error(opt(s, "send-timeout"), "7 | Object closed", fixed = TRUE)
})

test_that("protocol options, contexts, endpoint options", {
  r <- socket("req")
  expect_identical(opt(r, "req:resend-time"), 60000L)
  opt(r, "req:resend-time") <- 5000L
  expect_identical(opt(r, "req:resend-time"), 5000L)
  opt(r, "send-timeout") <- 300L
  ctx <- context(r)
  expect_identical(opt(ctx, "send-timeout"), 300L)
  opt(ctx, "send-timeout") <- 10L
  expect_identical(opt(r, "send-timeout"), 300L)
  expect_error(opt(ctx, "socket-name"), "9 | Not supported", fixed = TRUE)
  sv <- socket("surveyor")
  expect_identical(opt(sv, "surveyor:survey-time"), 1000L)
  expect_invisible(survey_time(sv, 400))
  expect_identical(opt(sv, "surveyor:survey-time"), 400L)
  sb <- socket("sub")
  expect_true(opt(sb, "sub:prefnew"))
  opt(sb, "sub:prefnew") <- FALSE
  expect_false(opt(sb, "sub:prefnew"))
  expect_error(opt(sb, "sub:prefnew") <- 1L, "30 | Incorrect type", fixed = TRUE)
  listen(r, "tcp://127.0.0.1:0")
  l <- r$listener[[1L]]
  expect_identical(opt(l, "tcp-bound-port"), as.integer(sub(".*:", "", l$url)))
  expect_identical(opt(l, "url"), l$url)
  expect_identical(stat(l, "url"), "tcp://127.0.0.1:0")
  expect_error(opt(l, "url") <- "x", "24 | Read only resource", fixed = TRUE)
  expect_true(opt(l, "tcp-nodelay"))
  opt(l, "recv-size-max") <- 100L
  expect_identical(opt(l, "recv-size-max"), 100L)
  dial(r, "tcp://127.0.0.1:1", autostart = FALSE)
  d <- r$dialer[[1L]]
  expect_true(opt(d, "tcp-nodelay"))
  expect_false(opt(d, "tcp-keepalive"))
  opt(d, "reconnect-time-min") <- 200L
  expect_identical(opt(d, "reconnect-time-min"), 200L)
  expect_identical(opt(d, "url"), "tcp://127.0.0.1:1")
  u <- sprintf("ipc://%s", tempfile("nx-", fileext = ".sock"))
  listen(r, u, autostart = FALSE)
  l2 <- r$listener[[2L]]
  opt(l2, "ipc:permissions") <- 384L
  start(l2)
  expect_identical(file.info(sub("^ipc://", "", u))$mode, as.octmode("600"))
  lapply(list(r, sv, sb), close)
})

test_that("tcp-nodelay and tcp-keepalive are set before start and kept by the endpoints", {
  a <- socket("pair")
  b <- socket("pair")
  listen(a, "tcp://127.0.0.1:0", autostart = FALSE)
  l <- a$listener[[1L]]
  opt(l, "tcp-nodelay") <- FALSE
  opt(l, "tcp-keepalive") <- TRUE
  expect_error(opt(l, "tcp-keepalive") <- 1L, "30 | Incorrect type", fixed = TRUE)
  start(l)
  expect_false(opt(l, "tcp-nodelay"))
  expect_true(opt(l, "tcp-keepalive"))
  expect_error(opt(l, "tcp-nodelay") <- TRUE, "11 | Incorrect state", fixed = TRUE)
  dial(b, l$url, autostart = FALSE)
  d <- b$dialer[[1L]]
  opt(d, "tcp-keepalive") <- TRUE
  opt(d, "tcp-nodelay") <- FALSE
  start(d)
  expect_false(opt(d, "tcp-nodelay"))
  expect_true(opt(d, "tcp-keepalive"))
  expect_error(opt(d, "tcp-keepalive") <- FALSE, "11 | Incorrect state", fixed = TRUE)
  expect_identical(send(b, "hi", block = 1000), 0L)
  expect_identical(recv(a, block = 1000), "hi")
  expect_identical(stat(l, "pipes"), 1)
  expect_error(opt(d, "ipc:permissions"), "9 | Not supported", fixed = TRUE)
  lapply(list(a, b), close)
})

test_that("stat() on sockets, listeners and dialers", {
  a <- socket("pair", listen = "tcp://127.0.0.1:0")
  b <- socket("pair", dial = a$listener[[1L]]$url, autostart = NA)
  Sys.sleep(0.05)
  expect_identical(stat(a, "pipes"), 1)
  expect_identical(stat(b, "pipes"), 1)
  expect_identical(stat(a, "protocol"), "pair")
  expect_identical(stat(a, "listeners"), 1)
  expect_identical(stat(b, "dialers"), 1)
  expect_identical(stat(a, "id"), as.double(a$id))
  expect_null(stat(a, "nonsense"))
  expect_identical(stat(a$listener[[1L]], "accept"), 1)
  expect_identical(stat(b$dialer[[1L]], "connect"), 1)
  expect_identical(stat(b$dialer[[1L]], "socket"), as.double(b$id))
  expect_error(stat("x", "pipes"), "`object` is not a valid Socket, Listener or Dialer", fixed = TRUE)
  expect_error(stat(context(socket("req")), "pipes"), "`object` is not a valid Socket, Listener or Dialer", fixed = TRUE)
  close(a); close(b)
  expect_null(stat(a, "pipes"))
})

test_that("pub/sub topics", {
  pub <- socket("pub", listen = "tcp://127.0.0.1:0")
  sub <- socket("sub", dial = pub$listener[[1L]]$url, autostart = NA)
  expect_identical(subscribe(sub, "news"), sub)
  expect_invisible(subscribe(sub, "news"))
  Sys.sleep(0.05)
  send(pub, c("news", "item"), mode = "raw", block = 1000)
  send(pub, c("other", "item"), mode = "raw", block = 1000)
  expect_identical(recv(sub, "character", block = 1000), c("news", "item"))
  expect_identical(unclass(recv(sub, "character", block = 100)), 5L)
  expect_error(unsubscribe(sub, "never"), "12 | Entry not found", fixed = TRUE)
  expect_identical(unsubscribe(sub, "news"), sub)
  expect_error(subscribe(pub, "x"), "9 | Not supported", fixed = TRUE)
  expect_error(subscribe("x", "x"), "`object` is not a valid Socket or Context", fixed = TRUE)
  expect_identical(unclass(recv(pub)), 9L)
  expect_identical(unclass(send(sub, 1)), 9L)
  subscribe(sub)
  send(pub, 1:2, mode = "raw", block = 1000)
  expect_identical(recv(sub, "integer", block = 1000), 1:2)
  close(pub); close(sub)
})
