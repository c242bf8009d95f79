# Core async (spec 2.1, 3.1) with a dispatcher profile of 2 local daemons.

daemons(0)
daemons(2)

test_that("validation errors are exact", {
  expect_error(mirai(), "missing expression, perhaps wrap in {}?", fixed = TRUE)
  expect_error(try_mirai(), "missing expression, perhaps wrap in {}?", fixed = TRUE)
  expect_error(mirai(1, 2), "all `...` arguments must be named, unless supplying an environment", fixed = TRUE)
  expect_error(mirai(1, a = 1, 2), "all `...` arguments must be named", fixed = TRUE)
  expect_error(mirai(1, .args = list(1)), "all items in `.args` must be named, unless supplying an environment", fixed = TRUE)
  expect_error(mirai(1, .args = c(a = 1, 2)), "all items in `.args` must be named", fixed = TRUE)
  e <- tryCatch(mirai(1, 2), error = identity)
  expect_identical(conditionCall(e), quote(mirai(1, 2)))
})

test_that("round trip, `...` versus `.args` scoping", {
  expect_identical(mirai(a + b, a = 1, .args = list(b = 2))[], 3)
  expect_identical(mirai(ls(), .args = list(x = 1))[], "x")
  expect_false(mirai(exists("x", envir = globalenv(), inherits = FALSE), .args = list(x = 1))[])
  expect_true(mirai(exists("x", envir = globalenv(), inherits = FALSE), x = 1)[])
  expect_identical(mirai(f(2), f = function(x) g(x) * 2, g = function(x) x + 1)[], 6)
  env <- new.env()
  env$a <- 1
  env$.b <- 2
  env$.Random.seed <- 1:3
  expect_identical(mirai(c(a + .b, identical(.Random.seed, 1:3)), env)[], c(3, FALSE))
  expect_setequal(mirai(ls(all.names = TRUE), .args = env)[], c(".b", ".Random.seed", "._expr_.", "a"))
  wrap <- function(...) mirai(func(...), func = function(x, y) x * y, .args = environment())
  expect_identical(wrap(3, 4)[], 12)
  e <- quote(a + b)
  expect_identical(mirai(e, .args = list(a = 1, b = 2))[], 3)
  ex <- expression(z <- 1, z + 1)
  expect_identical(mirai(ex)[], 2)
  # globals are cleaned up after each task
  mirai(1, leftover = 1)[]
  expect_false(any(unlist(collect_mirai(lapply(1:4, function(i) mirai(exists("leftover"))))))) 
})

test_that("the mirai object: class, id, $data, $value, printing", {
  m <- mirai({Sys.sleep(0.5); 1})
  expect_s3_class(m, c("mirai", "recvAio"), exact = TRUE)
  expect_true(is.environment(m))
  expect_true(is_mirai(m))
  expect_true(unresolved(m))
  expect_true(unresolved(m$data))
  expect_s3_class(m$data, "unresolvedValue")
  expect_identical(capture.output(print(m)), "< mirai [] >")
  expect_null(m$value)
  expect_true(unresolved(list(1, m)))
  expect_identical(m[], 1)
  expect_false(unresolved(m))
  expect_identical(m$data, 1)
  expect_identical(m$value, 1)
  expect_identical(capture.output(print(m)), "< mirai [$data] >")
  expect_identical(m[99], 1)
  ids <- vapply(list(mirai(1), mirai(2), m), function(x) attr(x, "id"), integer(1))
  expect_true(ids[2] > ids[1])
  expect_true(attr(mirai(1), "id") > ids[2])
  expect_false(unresolved(1))
  expect_false(is_mirai(list()))
})

test_that("on_daemon() and error values from daemons", {
  expect_true(mirai(mirai::on_daemon())[])
  expect_false(on_daemon())
  f <- function(x) if (x > 0) stop("positive")
  e <- mirai({f(-1); f(1)}, f = f)[]
  expect_identical(.subset(e, 1L), "Error in f(1): positive")
  expect_identical(e$stack.trace, list(quote(stop("positive")), quote(f(1))))
  expect_identical(e$condition.class, c("simpleError", "error", "condition"))
  skip_if_not_installed("rlang")
  expect_true(is_mirai_interrupt(mirai(rlang::interrupt())[]))
  e <- mirai(rlang::abort("ab", meta_uid = "UID001"))[]
  expect_identical(e$meta_uid, "UID001")
})

test_that("call_mirai, collect_mirai and race_mirai", {
  ms <- list(a = mirai({Sys.sleep(0.2); 1}), b = mirai(2), c = "x")
  expect_identical(call_mirai(ms), ms)
  expect_false(unresolved(ms))
  expect_identical(collect_mirai(ms), list(a = 1, b = 2, c = "x"))
  expect_identical(collect_mirai(mirai(5)), 5)
  expect_identical(collect_mirai(ms$a), 1)
  r <- list(mirai({Sys.sleep(1); 1}), mirai(2), 3)
  i <- race_mirai(r)
  expect_identical(i, 2L)
  call_mirai(r)
  expect_identical(race_mirai(list()), 0L)
  expect_identical(race_mirai(list(1, "a")), 0L)
  r <- list(mirai({Sys.sleep(0.3); "slow"}), mirai({Sys.sleep(0.1); "fast"}))
  seen <- character()
  while (length(r)) {
    i <- race_mirai(r)
    seen <- c(seen, r[[i]]$data)
    r <- r[-i]
  }
  expect_identical(seen, c("fast", "slow"))
  expect_error(race_mirai(list(), .compute = "nonexistent"), "daemons must be set to use this function", fixed = TRUE)
})

test_that(".timeout resolves to 5 and cancels at the dispatcher", {
  m <- mirai({Sys.sleep(5); 1}, .timeout = 200)
  v <- m[]
  expect_identical(unclass(v), 5L)
  expect_identical(capture.output(print(v)), "'errorValue' int 5 | Timed out")
  expect_true(wait_until(function() info()[["executing"]] == 0L, 10))
  expect_identical(mirai(1)[], 1)
})

test_that("everywhere() runs on every daemon and sets the cleanup baseline", {
  everywhere({}, shared_xyz = 42)
  expect_identical(unlist(collect_mirai(lapply(1:6, function(i) mirai(shared_xyz)))), rep(42, 6))
  everywhere(library(tools))
  expect_true(all(unlist(collect_mirai(lapply(1:4, function(i) mirai("package:tools" %in% search()))))))
  e <- everywhere(Sys.getpid(), .min = 2)
  expect_s3_class(e, "mirai_map")
  expect_length(e, 2L)
  expect_length(unique(unlist(e[])), 2L)
  expect_error(everywhere(), "missing expression", fixed = TRUE)
  expect_error(everywhere(1, .compute = "nonexistent"), "No daemons set for the 'nonexistent' compute profile.", fixed = TRUE)
})

test_that("a user interrupt abandons the wait only, never the task", {
  skip_on_os("windows")
  m <- mirai({Sys.sleep(1); 5})
  system2("sh", c("-c", shQuote(sprintf("sleep 0.3; kill -INT %d", Sys.getpid()))), wait = FALSE)
  r <- tryCatch(m[], interrupt = function(e) "interrupted")
  expect_identical(r, "interrupted")
  expect_identical(m[], 5)
})

test_that("stop_mirai on anything else is FALSE", {
  expect_false(stop_mirai(NULL))
  expect_false(stop_mirai(1))
  m <- mirai(1)
  m[]
  expect_false(stop_mirai(m))
  expect_identical(m[], 1)
  expect_identical(stop_mirai(list(m, 2)), c(FALSE, FALSE))
})

daemons(0)
