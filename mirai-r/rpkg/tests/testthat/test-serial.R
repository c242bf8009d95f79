# serial_config() and register_serial() (spec 2.7): per-class hooks applied through R's
# persistent-reference hook, on the host and on daemons, to tasks and results.

test_that("serial_config validates exactly and returns an unnamed list", {
  cfg <- serial_config("cls", function(x) serialize(x, NULL), unserialize)
  expect_null(names(cfg))
  expect_null(attributes(cfg))
  expect_length(cfg, 3L)
  expect_identical(cfg[[1L]], "cls")
  expect_true(is.list(cfg[[2L]]) && is.function(cfg[[2L]][[1L]]))
  expect_true(is.list(cfg[[3L]]) && identical(cfg[[3L]][[1L]], unserialize))
  expect_error(serial_config(1, identity, identity), "`class` must be a character vector", fixed = TRUE)
  expect_error(serial_config(c("a", "b"), identity, identity), "`class`, `sfunc` and `ufunc` must all be the same length", fixed = TRUE)
  expect_error(serial_config("a", list(identity, identity), identity), "`class`, `sfunc` and `ufunc` must all be the same length", fixed = TRUE)
  expect_error(serial_config("a", "f", identity), "`sfunc` must be a function or list of functions", fixed = TRUE)
  # serial_config() is nanonext's (re-exported), which takes any list: register_serial() and
  # daemons() refuse hooks that are not functions
  expect_identical(serial_config, nanonext::serial_config)
  expect_error(register_serial("a", list("f"), identity), "`sfunc` must be a function or list of functions", fixed = TRUE)
  expect_error(register_serial("a", identity, list(1)), "`ufunc` must be a function or list of functions", fixed = TRUE)
  expect_error(daemons(1, serial = serial_config("a", list("f"), identity)), "`serial` must be NULL or a configuration made by serial_config()", fixed = TRUE)
  expect_error(daemons(1, serial = serial_config("a", identity, list(1))), "`serial` must be NULL or a configuration made by serial_config()", fixed = TRUE)
  two <- serial_config(c("a", "b"), list(identity, identity), list(identity, identity))
  expect_identical(two[[1L]], c("a", "b"))
  expect_length(two[[2L]], 2L)
  expect_length(two[[3L]], 2L)
})

test_that("register_serial validates and appends to the registry, duplicates kept", {
  reg <- get(".opts", envir = asNamespace("mirai"))
  prev <- reg$serial
  on.exit(reg$serial <- prev)
  reg$serial <- NULL
  expect_error(register_serial(1, identity, identity), "`class` must be a character vector", fixed = TRUE)
  expect_null(reg$serial)
  expect_invisible(register_serial("c1", identity, identity))
  expect_null(register_serial("c1", identity, identity))
  register_serial(c("c2", "c3"), list(identity, identity), list(identity, identity))
  expect_identical(reg$serial[[1L]], c("c1", "c1", "c2", "c3"))
  expect_length(reg$serial[[2L]], 4L)
  expect_length(reg$serial[[3L]], 4L)
})

# --- A class whose data lives behind an external pointer -----------------------------------
#
# A tiny C library, compiled for this test, keeps a byte buffer in malloc'd memory behind an
# external pointer, as torch tensors, Arrow tables and Polars frames do. R's own serialization
# writes an external pointer as a null pointer, so the data is lost unless a hook carries it.

eco_c <- '
#include <stdlib.h>
#include <string.h>
#include <R.h>
#include <Rinternals.h>

typedef struct { R_xlen_t n; unsigned char *bytes; } eco_buf;

static void eco_finalize(SEXP p) {
  eco_buf *b = (eco_buf *) R_ExternalPtrAddr(p);
  if (b) { free(b->bytes); free(b); R_ClearExternalPtr(p); }
}

/* A new pointer of class `cls` holding a copy of raw vector `x`. */
SEXP eco_new(SEXP x, SEXP cls) {
  if (TYPEOF(x) != RAWSXP) error("eco_new: `x` must be raw");
  eco_buf *b = (eco_buf *) malloc(sizeof(eco_buf));
  if (!b) error("eco_new: out of memory");
  b->n = XLENGTH(x);
  b->bytes = (unsigned char *) malloc(b->n ? (size_t) b->n : 1);
  if (!b->bytes) { free(b); error("eco_new: out of memory"); }
  if (b->n) memcpy(b->bytes, RAW(x), (size_t) b->n);
  SEXP p = PROTECT(R_MakeExternalPtr(b, R_NilValue, R_NilValue));
  R_RegisterCFinalizerEx(p, eco_finalize, TRUE);
  setAttrib(p, R_ClassSymbol, cls);
  UNPROTECT(1);
  return p;
}

/* The bytes behind pointer `p` (an error if they were lost). */
SEXP eco_bytes(SEXP p) {
  if (TYPEOF(p) != EXTPTRSXP) error("eco_bytes: not an external pointer");
  eco_buf *b = (eco_buf *) R_ExternalPtrAddr(p);
  if (!b) error("eco_bytes: the data behind this pointer is gone (null pointer)");
  SEXP out = PROTECT(allocVector(RAWSXP, b->n));
  if (b->n) memcpy(RAW(out), b->bytes, (size_t) b->n);
  UNPROTECT(1);
  return out;
}
'

# Compiles the library once per test file run; returns the path of the shared object.
eco_lib <- local({
  so <- NULL
  function() {
    if (is.null(so)) {
      dir <- tempfile("eco-serial-")
      dir.create(dir)
      src <- file.path(dir, "eco.c")
      writeLines(eco_c, src)
      out <- system2(file.path(R.home("bin"), "R"), c("CMD", "SHLIB", "-o", shQuote(file.path(dir, "eco.so")), shQuote(src)),
                     stdout = TRUE, stderr = TRUE)
      path <- file.path(dir, "eco.so")
      if (!file.exists(path)) stop("could not compile the test library:\n", paste(out, collapse = "\n"))
      so <<- path
    }
    so
  }
})

# The test classes' functions, as closures over a small environment that only holds the
# library path (so they serialize small and work on daemons, which load the library on first
# use):
# - "eco_num": numbers behind an external pointer;
# - "eco_txt": text behind an external pointer;
# - "eco_env": an environment-based (R6-like) object.
eco_api <- function() {
  env <- new.env(parent = globalenv())
  env$so <- eco_lib()
  fns <- list(
    load = function() if (!is.loaded("eco_new")) dyn.load(so),
    num = function(x) {
      if (!is.loaded("eco_new")) dyn.load(so)
      .Call("eco_new", writeBin(as.double(x), raw()), "eco_num")
    },
    num_value = function(p) {
      if (!is.loaded("eco_new")) dyn.load(so)
      b <- .Call("eco_bytes", p)
      readBin(b, "double", n = length(b) %/% 8L)
    },
    txt = function(s) {
      if (!is.loaded("eco_new")) dyn.load(so)
      .Call("eco_new", charToRaw(enc2utf8(s)), "eco_txt")
    },
    txt_value = function(p) {
      if (!is.loaded("eco_new")) dyn.load(so)
      rawToChar(.Call("eco_bytes", p))
    },
    envobj = function(v) {
      e <- new.env(parent = emptyenv())
      e$v <- v
      class(e) <- "eco_env"
      e
    },
    # hooks: the external pointers travel as their bytes; the environment as its value, tagged
    # so that the test can tell a hook-restored object from a natively serialized one
    s_ptr = function(p) {
      if (!is.loaded("eco_new")) dyn.load(so)
      .Call("eco_bytes", p)
    },
    u_num = function(r) {
      if (!is.loaded("eco_new")) dyn.load(so)
      .Call("eco_new", r, "eco_num")
    },
    u_txt = function(r) {
      if (!is.loaded("eco_new")) dyn.load(so)
      .Call("eco_new", r, "eco_txt")
    },
    s_env = function(e) serialize(e$v, NULL),
    u_env = function(r) {
      e <- new.env(parent = emptyenv())
      e$v <- unserialize(r)
      e$restored <- TRUE
      class(e) <- "eco_env"
      e
    }
  )
  for (nm in names(fns)) {
    environment(fns[[nm]]) <- env
  }
  fns
}

eco_config <- function(api) {
  serial_config(c("eco_num", "eco_txt", "eco_env"),
                list(api$s_ptr, api$s_ptr, api$s_env),
                list(api$u_num, api$u_txt, api$u_env))
}

test_that("the test class really loses its data under native serialization", {
  api <- eco_api()
  p <- api$num(c(1.5, 2.5))
  expect_s3_class(p, "eco_num")
  expect_identical(typeof(p), "externalptr")
  expect_identical(api$num_value(p), c(1.5, 2.5))
  q <- unserialize(serialize(p, NULL))
  expect_error(api$num_value(q), "the data behind this pointer is gone")
  # and a daemon without hooks cannot read it either
  daemons(1)
  on.exit(daemons(0))
  r <- mirai(num_value(p), p = p, num_value = api$num_value)[]
  expect_true(is_mirai_error(r))
  expect_match(r, "the data behind this pointer is gone")
})

test_that("the bridge's own (un)serialization applies the hooks", {
  api <- eco_api()
  cfg <- eco_config(api)
  x <- list(a = api$num(1:3), b = list(api$txt("héllo"), api$envobj("v")))
  raw <- .Call(mirai:::mirai_serialize, x, cfg)
  y <- .Call(mirai:::mirai_unserialize, raw, cfg)
  expect_identical(api$num_value(y$a), c(1, 2, 3))
  expect_identical(api$txt_value(y$b[[1L]]), "héllo")
  expect_true(y$b[[2L]]$restored)
  expect_identical(y$b[[2L]]$v, "v")
  # without hooks the payload is exactly R's own serialization
  expect_identical(.Call(mirai:::mirai_serialize, 1:3, NULL), serialize(1:3, NULL, xdr = FALSE, version = 3L))
})

test_that("hooks carry external-pointer objects in arguments and results, nested, several classes", {
  api <- eco_api()
  daemons(2, serial = eco_config(api))
  on.exit(daemons(0))
  n <- api$num(c(1, 2, 3))
  t <- api$txt("mirai")
  e <- api$envobj(list(k = 42))
  # `...` globals and `.args` locals, nested inside lists
  m <- mirai(
    {
      vals <- list(
        sum = sum(num_value(data$deep[[1L]][[1L]])),
        txt = txt_value(data$deep[[2L]]),
        env = list(v = loose$v, restored = isTRUE(loose$restored)),
        pid = Sys.getpid()
      )
      # results created on the daemon, nested too
      list(vals = vals, made = list(num(num_value(data$deep[[1L]][[1L]]) * 10), list(txt(toupper(txt_value(data$deep[[2L]]))))),
           env = envobj("from daemon"))
    },
    num_value = api$num_value, txt_value = api$txt_value, num = api$num, txt = api$txt,
    envobj = api$envobj, loose = e,
    .args = list(data = list(deep = list(list(n), t)))
  )
  r <- m[]
  expect_false(is_error_value(r))
  expect_identical(r$vals$sum, 6)
  expect_identical(r$vals$txt, "mirai")
  expect_identical(r$vals$env, list(v = list(k = 42), restored = TRUE))
  expect_false(r$vals$pid == Sys.getpid())
  expect_s3_class(r$made[[1L]], "eco_num")
  expect_identical(api$num_value(r$made[[1L]]), c(10, 20, 30))
  expect_identical(api$txt_value(r$made[[2L]][[1L]]), "MIRAI")
  expect_true(r$env$restored)
  expect_identical(r$env$v, "from daemon")
  # the originals are untouched
  expect_identical(api$num_value(n), c(1, 2, 3))
  expect_null(e$restored)
})

test_that("hooks apply per element in mirai_map and on every daemon of everywhere()", {
  api <- eco_api()
  daemons(2, serial = eco_config(api))
  on.exit(daemons(0))
  xs <- list(api$num(1), api$num(c(2, 2)), api$txt("abc"))
  out <- mirai_map(xs, function(p, nv, tv, num) {
    v <- if (inherits(p, "eco_num")) sum(nv(p)) else nchar(tv(p))
    num(v)
  }, .args = list(nv = api$num_value, tv = api$txt_value, num = api$num))[]
  expect_identical(vapply(out, api$num_value, numeric(1L)), c(1, 4, 3))
  everywhere({}, kept = api$txt("persisted"), .args = list())
  got <- mirai(txt_value(kept), txt_value = api$txt_value)[]
  expect_identical(got, "persisted")
})

test_that("an object met twice travels once and comes back as one object", {
  api <- eco_api()
  calls <- new.env()
  calls$n <- 0L
  counting <- function(p) {
    calls$n <- calls$n + 1L
    api$s_ptr(p)
  }
  cfg <- serial_config("eco_num", counting, api$u_num)
  p <- api$num(7)
  raw <- .Call(mirai:::mirai_serialize, list(p, list(p)), cfg)
  expect_identical(calls$n, 1L)
  y <- .Call(mirai:::mirai_unserialize, raw, cfg)
  expect_true(identical(y[[1L]], y[[2L]][[1L]]))
  expect_identical(api$num_value(y[[1L]]), 7)
  daemons(1, serial = serial_config("eco_num", api$s_ptr, api$u_num))
  on.exit(daemons(0))
  expect_true(mirai(identical(x[[1L]], x[[2L]]), x = list(p, p))[])
})

test_that("a config from register_serial() is used by later daemons() calls", {
  api <- eco_api()
  reg <- get(".opts", envir = asNamespace("mirai"))
  prev <- reg$serial
  on.exit(reg$serial <- prev)
  reg$serial <- NULL
  register_serial("eco_num", api$s_ptr, api$u_num)
  register_serial(c("eco_txt", "eco_env"), list(api$s_ptr, api$s_env), list(api$u_txt, api$u_env))
  daemons(1)
  on.exit(daemons(0), add = TRUE)
  r <- mirai(list(num_value(a) + 1, txt(paste(txt_value(b), "!")), e$restored),
             a = api$num(41), b = api$txt("hi"), e = api$envobj(1),
             num_value = api$num_value, txt_value = api$txt_value, txt = api$txt)[]
  expect_identical(r[[1L]], 42)
  expect_identical(api$txt_value(r[[2L]]), "hi !")
  expect_true(r[[3L]])
  # an explicit `serial` wins over the registry
  daemons(1, serial = serial_config("eco_num", api$s_ptr, api$u_num))
  r <- mirai(is.null(e$restored), e = api$envobj(1))[]
  expect_true(r)
})

test_that("hook failures: a non-raw serializer errors at mirai(); a failing unserializer is a miraiError", {
  api <- eco_api()
  bad <- serial_config("eco_num", function(x) "not raw", api$u_num)
  daemons(1, serial = bad)
  on.exit(daemons(0))
  expect_error(mirai(1, x = api$num(1)), "Serialization function for `eco_num` did not return a raw vector", fixed = TRUE)
  # the error leaves nothing behind: the next task runs
  expect_identical(mirai(2)[], 2)
  # the daemon cannot restore the argument: the task answers with a miraiError
  daemons(1, serial = serial_config("eco_num", api$s_ptr, function(r) stop("cannot restore here")))
  r <- mirai(1, x = api$num(1))[]
  expect_true(is_mirai_error(r))
  expect_match(r, "cannot restore here")
  # the host cannot restore a result: reading it raises the error
  daemons(1, serial = serial_config("eco_env", api$s_env, function(r) stop("cannot restore result")))
  m <- mirai(structure(new.env(), class = "eco_env"))
  call_mirai_quietly <- function(x) tryCatch(x[], error = identity)
  e <- call_mirai_quietly(m)
  expect_s3_class(e, "error")
  expect_match(conditionMessage(e), "cannot restore result")
})
