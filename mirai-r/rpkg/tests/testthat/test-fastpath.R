# The fast paths of the bridge (mirai-r/src/fastser.rs, aio.rs, evaluate.rs): they must give
# exactly what the general paths give.

ser <- function(x, hooks = NULL) .Call(mirai:::mirai_serialize, x, hooks)
unser <- function(r, hooks = NULL) .Call(mirai:::mirai_unserialize, r, hooks)

objects <- list(
  NULL, 1, 1L, TRUE, NA, NA_integer_, NA_real_, NA_character_, c(a = 1, b = 2), "x",
  c("a", NA, "\u00e9", "b"), letters, 1:10, seq(0.5, 10, 0.5), c(NaN, Inf, -Inf, NA), -0,
  .Machine$integer.max, complex(real = 1, imaginary = -2), as.raw(0:255), character(), list(),
  list(1, "a", list(x = NULL, y = list())), quote(f(x, y = 2)), quote(x), quote(x[[1]]$y),
  quote(`my var` + 1), quote(function(x, ...) x + 1), expression(a + 1, b), pairlist(a = 1, 2),
  list(quote(a), quote(a), quote(b), quote(a)), factor(c("u", "v", "u")),
  data.frame(x = 1:3, y = c("a", "b", "c")), matrix(1:6, 2, dimnames = list(NULL, c("a", "b", "c"))),
  array(1:24, 2:4), structure(list(1), class = "foo"), Sys.Date(), as.POSIXct("2024-01-02 03:04:05", tz = "UTC"),
  iconv("caf\xe9", "latin1", "latin1"), `attr<-`(1:3, "extra", list(quote(z), "w")),
  setNames(as.list(1:40), paste0("s", 1:40)), lapply(1:30, function(i) as.name(paste0("v", i))),
  # not covered by the fast path: R's own serializer takes these, with the same result
  function(x) x + 1, new.env(), globalenv(), 1:1e6, methods::new("numeric")
)

test_that("serialization is byte for byte R's own (version 3, native binary)", {
  for (o in objects) {
    expect_identical(ser(o), serialize(o, NULL, xdr = FALSE, version = 3L))
  }
})

test_that("unserialization gives what R's own gives, and reads R's other formats", {
  for (o in objects) {
    b <- serialize(o, NULL, xdr = FALSE, version = 3L)
    u <- unser(b)
    if (is.environment(o) || is.function(o)) {
      expect_identical(typeof(u), typeof(o))
    } else {
      expect_identical(u, unserialize(b))
    }
    expect_identical(unser(serialize(o, NULL)), unserialize(serialize(o, NULL))) # XDR
  }
  s <- unser(ser(list(quote(a), quote(a))))
  expect_true(identical(s[[1]], as.name("a")))
})

test_that("damaged data is an error, never a crash", {
  b <- ser(list(1, "abc", quote(f(x))))
  for (n in c(5L, 20L, length(b) - 1L)) expect_error(unser(b[seq_len(n)]))
  bad <- b
  bad[length(bad) - 3L] <- as.raw(0xff)
  expect_error(unser(bad))
  expect_identical(unser(c(b, as.raw(0))), list(1, "abc", quote(f(x)))) # R ignores trailing bytes
})

test_that("with serialization hooks, plain data travels as plain data with an empty trailer", {
  cfg <- serial_config("foo", function(x) as.raw(1), function(r) "restored")
  r <- ser(list(1, "a"), cfg)
  expect_identical(r[1:4], as.raw(c(0x4d, 0x52, 0x48, 0x01)))
  expect_identical(unser(r, cfg), list(1, "a"))
  obj <- structure(new.env(), class = "foo")
  expect_identical(unser(ser(list(obj, 2), cfg), cfg), list("restored", 2))
})

test_that("tasks built by the fast path evaluate as the documented payload would", {
  daemons(1, .compute = "fp")
  on.exit(daemons(0, .compute = "fp"))
  expect_identical(mirai(1, .compute = "fp")[], 1)
  expect_null(mirai(NULL, .compute = "fp")[])
  expect_identical(mirai(x + 1L, x = 1L, .compute = "fp")[], 2L)
  expect_identical(mirai(a + b, .args = list(a = 1, b = 2), .compute = "fp")[], 3)
  expect_identical(mirai(c(a, b), a = "g", .args = c(b = "l"), .compute = "fp")[], c("g", "l"))
  e <- quote(p * q)
  expect_identical(mirai(e, .args = list(p = 2, q = 3), .compute = "fp")[], 6)
  # a symbol bound to a language object through an unforced promise or an active binding: R
  # decides (the lookup runs R code)
  f <- function(x) mirai(x, .args = list(a = 1, b = 2), .compute = "fp")
  expect_identical(f(quote(a + b))[], 3)
  env <- new.env()
  makeActiveBinding("ab", function() quote(1 + 1), env)
  expect_identical(evalq(mirai(ab, .compute = "fp"), env)[], 2)
  k <- 5L
  expect_identical(mirai(k, k = 7L, .compute = "fp")[], 7L) # not language: the symbol is sent
  expect_identical(mirai({ y <- 2; y * k }, k = 21, .compute = "fp")[], 42)
  # the task's globals and what it leaves are gone for the next task
  expect_identical(mirai(exists("x", envir = .GlobalEnv), .compute = "fp")[], FALSE)
  expect_identical(mirai({ options(mirai.fp.test = 1); assign("left", 1, .GlobalEnv) }, .compute = "fp")[], 1)
  expect_identical(mirai(list(getOption("mirai.fp.test"), exists("left")), .compute = "fp")[], list(NULL, FALSE))
  expect_identical(mirai({ attach(list(zz = 1), name = "fp_attached"); "ok" }, .compute = "fp")[], "ok")
  expect_false(mirai("fp_attached" %in% search(), .compute = "fp")[])
  # errors, calls and stack traces as documented
  f <- function(x) g(x)
  g <- function(x) stop("deep ", x)
  err <- mirai(f(2), f = f, g = g, .compute = "fp")[]
  expect_s3_class(err, "miraiError")
  expect_identical(unclass(err)[[1]], "Error in g(x): deep 2")
  expect_identical(err$stack.trace, list(quote(stop("deep ", x)), quote(g(x)), quote(f(2))))
  expect_identical(unclass(mirai(stop("top"), .compute = "fp")[])[[1]], "Error: top")
  expect_identical(mirai(log(-1), .compute = "fp")[], NaN) # a warning is not an error
  cond <- mirai(stop(structure(class = c("custom", "error", "condition"), list(message = "own", call = NULL, extra = 7))), .compute = "fp")[]
  expect_identical(cond$extra, 7)
  expect_identical(cond$condition.class, c("custom", "error", "condition"))
})

test_that("mirai() falls back to the R path where it must, with the spec's errors", {
  expect_error(mirai(1, 2), "all `...` arguments must be named, unless supplying an environment", fixed = TRUE)
  expect_error(mirai(1, .args = list(1)), "all items in `.args` must be named, unless supplying an environment", fixed = TRUE)
  daemons(1, .compute = "fb")
  on.exit(daemons(0, .compute = "fb"))
  env <- new.env()
  env$v <- 5
  expect_identical(mirai(v * 2, env, .compute = "fb")[], 10)
  expect_identical(mirai(v * 3, .args = env, .compute = "fb")[], 15)
  expect_identical(mirai(1, .timeout = 1000L, .compute = "fb")[], 1)
  ids <- vapply(1:3, function(i) attr(mirai(i, .compute = "fb"), "id"), 1L)
  expect_false(is.unsorted(ids, strictly = TRUE))
})

test_that("a locked global environment on the daemon gives error values, not a crash", {
  daemons(1, .compute = "lk")
  on.exit(daemons(0, .compute = "lk"))
  expect_null(mirai(lockEnvironment(globalenv()), .compute = "lk")[])
  r <- mirai(x, x = 1, .compute = "lk")[]
  expect_true(is_mirai_error(r))
  expect_match(r$message, "locked environment", fixed = TRUE)
  expect_identical(mirai(1 + 1, .compute = "lk")[], 2)
  expect_identical(mirai({ y <- 3; y }, .compute = "lk")[], 3)
})
