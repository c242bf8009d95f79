# promises integration (spec 2.9): as.promise() / is.promising() for mirai and mirai_map,
# settled event-driven through later's C interface on R's main thread.

skip_if_not_installed("promises")
skip_if_not_installed("later")
source(test_path("output-dir.R"), local = TRUE)

# Runs the later event loop (blocking in run_now(), never sleeping) until `p` settles; returns an
# environment holding `value` or `error`. `timeout` only guards against a hang.
settle <- function(p, timeout = 30, loop = later::current_loop()) {
  out <- new.env()
  promises::then(p, onFulfilled = function(v) out$value <- list(v), onRejected = function(e) out$error <- e)
  t0 <- Sys.time()
  while (is.null(out$value) && is.null(out$error) && difftime(Sys.time(), t0, units = "secs") < timeout)
    later::run_now(0.5, loop = loop)
  if (!is.null(out$value)) out$value <- out$value[[1L]]
  out
}

value_of <- function(p) {
  r <- settle(p)
  if (!is.null(r$error)) stop("rejected: ", conditionMessage(r$error))
  r$value
}

error_of <- function(p) {
  r <- settle(p)
  if (is.null(r$error)) stop("expected a rejection, got a value")
  r$error
}

# Runs the event loop until its queue is empty (a polling implementation would never let it
# empty); leftovers of earlier tests (e.g. promises rejected by a reset) settle here.
drain <- function(loop = later::current_loop(), max = 1000L) {
  i <- 0L
  while (!later::loop_empty(loop) && i < max) {
    later::run_now(0.1, loop = loop)
    i <- i + 1L
  }
  later::loop_empty(loop)
}

test_that("is.promising methods are registered for mirai and mirai_map", {
  daemons(sync = TRUE)
  on.exit(daemons(0))
  m <- mirai(1)
  table <- get(".__S3MethodsTable__.", envir = asNamespace("promises"))
  for (cls in c("mirai", "mirai_map")) {
    f <- get(paste0("is.promising.", cls), envir = table)
    expect_true(f(m))
  }
  # promises >= 1.3 dispatches is.promising(); older releases (Debian bookworm's 1.2) only test
  # for their own classes, which is why the tests below hand those versions as.promise(m) where
  # a promise must come back from a callback.
  if (any(grepl("UseMethod", deparse(promises::is.promising)))) {
    expect_true(promises::is.promising(m))
    expect_true(promises::is.promising(mirai_map(1:2, identity)))
  }
  expect_false(promises::is.promising(1))
})

test_that("as.promise fulfils with the value, once per mirai, pending or already resolved", {
  daemons(1)
  on.exit(daemons(0))
  m <- mirai({Sys.sleep(0.2); list(a = 7, b = "x")})
  p <- promises::as.promise(m)
  expect_true(promises::is.promise(p))
  expect_identical(promises::as.promise(m), p)
  expect_identical(m$promise, p)
  expect_identical(value_of(p), list(a = 7, b = "x"))
  # the value is still there for ordinary collection
  expect_identical(m[], list(a = 7, b = "x"))
  done <- mirai(8L)
  call_mirai(done)
  expect_identical(value_of(promises::as.promise(done)), 8L)
  # resolved but never read: the promise takes the value itself
  late <- mirai(9)
  expect_true(wait_until(function() !unresolved(late)))
  expect_identical(value_of(late), 9)
  expect_identical(late$data, 9)
})

test_that("as.promise works for sync and ephemeral mirai", {
  daemons(sync = TRUE)
  m <- mirai(x + 1, x = 1)
  expect_identical(value_of(m), 2)
  daemons(0)
  e <- mirai(Sys.getpid())
  pid <- value_of(e)
  expect_true(is.integer(pid) && pid != Sys.getpid())
})

test_that("error values reject with the spec's messages; a miraiInterrupt fulfils", {
  daemons(1)
  on.exit(daemons(0))
  f <- function() stop("inner")
  pending <- mirai({Sys.sleep(0.2); f()}, f = f)
  expect_identical(conditionMessage(error_of(pending)), "Error in f(): inner")
  done <- mirai(f(), f = f)
  call_mirai(done)
  e <- error_of(done)
  expect_s3_class(e, "error")
  expect_identical(conditionMessage(e), "Error in f(): inner")
  expect_identical(conditionMessage(error_of(mirai(stop("top")))), "Error: top")
  expect_identical(conditionMessage(error_of(mirai(Sys.sleep(5), .timeout = 100))), "5 | Timed out")
  s <- mirai(Sys.sleep(5))
  p <- promises::as.promise(s)
  stop_mirai(s)
  expect_identical(conditionMessage(error_of(p)), "20 | Operation canceled")
  skip_if_not_installed("rlang")
  v <- value_of(mirai(rlang::interrupt()))
  expect_true(is_mirai_interrupt(v))
  expect_identical(v, structure("", class = c("miraiInterrupt", "errorValue", "try-error")))
})

test_that("a reset profile rejects its pending promises with 19", {
  daemons(1)
  m <- mirai(Sys.sleep(10))
  p <- promises::as.promise(m)
  daemons(0)
  expect_identical(conditionMessage(error_of(p)), "19 | Connection reset")
})

test_that("then() and the pipe operators chain on mirai, including mirai started in a callback", {
  daemons(2)
  on.exit(daemons(0))
  library(promises)
  p <- mirai(2) %...>% (function(x) x * 10) %...>% sqrt
  expect_equal(value_of(p), sqrt(20))
  expect_identical(value_of(promises::then(mirai(3L), function(v) v + 1L)), 4L)
  # a second mirai started when the first settles, on the value of the first
  chained <- promises::then(mirai(5), function(v) promises::as.promise(mirai(v * 2, v = v)))
  expect_identical(value_of(chained), 10)
  caught <- mirai(stop("boom")) %...!% (function(e) paste("caught:", conditionMessage(e)))
  expect_identical(value_of(caught), "caught: Error: boom")
  seen <- new.env()
  tee <- promises::as.promise(mirai(11)) %...T>% (function(x) seen$x <- x) %...>% (function(x) x + 1)
  expect_identical(value_of(tee), 12)
  expect_identical(seen$x, 11)
  fin <- new.env()
  f <- promises::finally(mirai(stop("x")), function() fin$ran <- TRUE)
  expect_s3_class(error_of(f), "error")
  expect_true(fin$ran)
  all <- promises::promise_all(a = mirai(1), b = mirai({Sys.sleep(0.1); 2}))
  expect_identical(value_of(all), list(a = 1, b = 2))
  first <- promises::promise_race(mirai({Sys.sleep(2); "slow"}), mirai("fast"))
  expect_identical(value_of(first), "fast")
})

test_that("settlement is event driven and only ever runs on R's main thread", {
  daemons(1)
  on.exit(daemons(0))
  expect_true(drain())
  seen <- new.env()
  m <- mirai({Sys.sleep(1); Sys.getpid()})
  promises::then(m, function(v) {
    seen$value <- v
    seen$pid <- Sys.getpid()
    seen$calls <- vapply(sys.calls(), function(cl) paste(deparse(cl[[1L]]), collapse = ""), "")
  })
  # No polling: nothing sits in later's queue while the task runs.
  expect_true(unresolved(m))
  expect_true(later::loop_empty())
  Sys.sleep(0.1)
  expect_true(later::loop_empty())
  # Once the task resolves, the engine queues the settle on the loop, from its own thread ...
  call_mirai(m)
  expect_true(wait_until(function() !later::loop_empty(), 10))
  # ... but no R code runs until the main thread runs the loop.
  Sys.sleep(0.2)
  expect_null(seen$value)
  for (i in 1:50) if (is.null(seen$value)) later::run_now(0.5)
  expect_identical(seen$value, m$data)
  expect_false(seen$value == Sys.getpid())
  expect_identical(seen$pid, Sys.getpid())
  # The callback ran nested inside run_now(), on this thread's R evaluation stack.
  expect_true(any(grepl("run_now", seen$calls)))
})

test_that("the settle goes to the later loop current when as.promise() was called", {
  daemons(1)
  on.exit(daemons(0))
  expect_true(drain())
  lp <- later::create_loop(parent = NULL)
  on.exit(later::destroy_loop(lp), add = TRUE)
  ran <- FALSE
  m <- mirai({Sys.sleep(0.2); 1})
  later::with_loop(lp, promises::then(m, function(v) ran <<- TRUE))
  call_mirai(m)
  expect_true(wait_until(function() !later::loop_empty(lp), 10))
  expect_true(later::loop_empty())
  later::run_now(0.1)
  expect_false(ran)
  for (i in 1:20) if (!ran) later::run_now(0.1, loop = lp)
  expect_true(ran)
})

test_that("a result that cannot be read rejects instead of leaving the promise pending", {
  cfg <- serial_config("eco_unreadable", function(x) as.raw(1:3), function(r) stop("cannot restore eco_unreadable"))
  daemons(1, serial = cfg)
  on.exit(daemons(0))
  # the object only exists on the daemon, so only the host's ufunc (which fails) is called
  m <- mirai({Sys.sleep(0.2); structure(new.env(), class = "eco_unreadable")})
  expect_match(conditionMessage(error_of(m)), "cannot restore eco_unreadable")
})

test_that("mirai_map promises: all values, first rejection, .promise callbacks", {
  daemons(2)
  on.exit(daemons(0))
  expect_identical(value_of(mirai_map(1:3, function(x) x * 2)), list(2, 4, 6))
  expect_identical(value_of(mirai_map(c(a = 1, b = 2), function(x) x + 1)), list(a = 2, b = 3))
  e <- error_of(mirai_map(1:3, function(x) if (x == 2) stop("two") else x))
  expect_match(conditionMessage(e), "^Error in .*: two$")
  seen <- new.env()
  x <- mirai_map(1:3, function(x) x * 10, .promise = function(v) assign(paste0("v", v), v, envir = seen))
  expect_s3_class(x, "mirai_map")
  x[]
  t0 <- Sys.time()
  while (length(ls(seen)) < 3L && difftime(Sys.time(), t0, units = "secs") < 30) later::run_now(0.5)
  expect_identical(mget(c("v10", "v20", "v30"), envir = seen), list(v10 = 10, v20 = 20, v30 = 30))
  ok <- new.env()
  bad <- new.env()
  y <- mirai_map(1:4, function(x) if (x %% 2) stop("odd ", x) else x,
                 .promise = list(function(v) ok[[as.character(v)]] <- v,
                                 function(e) bad[[conditionMessage(e)]] <- TRUE))
  y[]
  t0 <- Sys.time()
  while (length(ls(ok)) + length(ls(bad)) < 4L && difftime(Sys.time(), t0, units = "secs") < 30) later::run_now(0.5)
  expect_setequal(ls(ok), c("2", "4"))
  expect_length(ls(bad), 2L)
  expect_true(all(grepl("^Error in .*: odd [13]$", ls(bad))))
})

test_that("10,000 promises settle through later::run_now()", {
  daemons(2)
  on.exit(daemons(0))
  n <- 10000L
  count <- 0L
  total <- 0
  t0 <- Sys.time()
  ms <- lapply(seq_len(n), function(i) mirai(i, i = i))
  t1 <- Sys.time()
  for (m in ms) promises::then(m, function(v) {
    count <<- count + 1L
    total <<- total + v
  })
  t2 <- Sys.time()
  while (count < n && difftime(Sys.time(), t0, units = "secs") < 300) later::run_now(1)
  t3 <- Sys.time()
  expect_identical(count, n)
  expect_identical(total, sum(as.double(seq_len(n))))
  # nothing keeps rescheduling itself: the queue empties once everything has settled
  expect_true(drain())
  secs <- function(a, b) as.numeric(difftime(b, a, units = "secs"))
  report <- sprintf(
    "10,000 promises: submit %.2f s, as.promise + then %.2f s, settle (run_now) %.2f s after that, total %.2f s (%.0f promises/s end to end)",
    secs(t0, t1), secs(t1, t2), secs(t2, t3), secs(t0, t3), n / secs(t0, t3))
  out <- test_output_dir()
  writeLines(report, file.path(out, "promises-10k.txt"))
  cat("\n", report, "\n", sep = "", file = stderr())
})
