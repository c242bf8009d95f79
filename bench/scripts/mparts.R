suppressPackageStartupMessages(library(mirai))
daemons(url = local_url(), .compute = "q")
ns <- asNamespace("mirai")
n <- 50000
tm <- function(label, f) { x <- replicate(5, { gc(); t <- proc.time()[[3]]; for (i in seq_len(n)) f(i); (proc.time()[[3]] - t) / n * 1e6 }); cat(sprintf("%-40s %6.2f us (min of 5)\n", label, min(x))) }
f0 <- function(.expr, ..., .args = list(), .timeout = NULL, .compute = NULL) NULL
f1 <- function(.expr, ..., .args = list(), .timeout = NULL, .compute = NULL) { missing(.expr) && stop("x"); expr <- substitute(.expr); NULL }
f2 <- function(.expr, ..., .args = list(), .timeout = NULL, .compute = NULL) { missing(.expr) && stop("x"); expr <- substitute(.expr);
  data <- list(globals = if (...length()) list(...) else list(), args = if (length(.args)) .args else list(), expr = if (is.symbol(expr)) expr else expr); NULL }
environment(f2) <- ns
f3 <- function(.expr, ..., .args = list(), .timeout = NULL, .compute = NULL) { missing(.expr) && stop("x"); expr <- substitute(.expr);
  data <- list(globals = if (...length()) list(...) else list(), args = if (length(.args)) .args else list(), expr = if (is.symbol(expr)) expr else expr);
  prof <- if (is.null(.compute)) ..[[.opts$default]] else .profile(.compute); NULL }
environment(f3) <- ns
f4 <- function(.expr, ..., .args = list(), .timeout = NULL, .compute = NULL) { missing(.expr) && stop("x"); expr <- substitute(.expr);
  data <- list(globals = if (...length()) list(...) else list(), args = if (length(.args)) .args else list(), expr = if (is.symbol(expr)) expr else expr);
  prof <- if (is.null(.compute)) ..[[.opts$default]] else .profile(.compute);
  timeout <- if (!is.null(.timeout)) as.double(.timeout)
  if (!is.null(prof) && !prof$sync && !prof$gate && is.null(prof$seed)) NULL; NULL }
environment(f4) <- ns
tm("f0 call", function(i) f0(1, .compute = "q"))
tm("f1 missing+substitute", function(i) f1(1, .compute = "q"))
tm("f2 list", function(i) f2(1, .compute = "q"))
tm("f3 profile", function(i) f3(1, .compute = "q"))
tm("f4 checks", function(i) f4(1, .compute = "q"))
tm("mirai(1)", function(i) mirai(1, .compute = "q"))
tm("f2 list dots", function(i) f2(i, i = i, .compute = "q"))
tm("mirai(i, i=i)", function(i) mirai(i, i = i, .compute = "q"))
prof <- ns$..[["q"]]; d <- list(globals = list(i = 1L), args = list(), expr = quote(i))
tm("mirai_async", function(i) .Call(ns$mirai_async, prof$host, d, NULL, NULL))
tm("globals()", function(i) ns$.globals(list(i = i), NULL))
daemons(0, .compute = "q")
