library(mirai)
ns <- asNamespace("mirai")
objs <- list(NULL, 1, 1L, TRUE, NA, c(a = 1, b = 2), "x", c("a", NA, "\u00e9", "b"), letters, 1:10, seq(0.5, 10, 0.5),
  list(1, "a", list(x = NULL)), quote(f(x, y = 2)), quote(x), expression(a + 1, b), list(globals = list(i = 1L), args = list(), expr = quote(i)),
  factor(c("a", "b", "a")), data.frame(x = 1:3, y = c("a", "b", "c")), as.raw(1:255), complex(real = 1, imaginary = 2),
  structure(list(1), class = "foo"), pairlist(a = 1, 2), quote(function(x) x + 1), matrix(1:6, 2), Sys.Date(), NA_character_,
  iconv("caf\xe9", "latin1", "latin1"), list(quote(a), quote(a), quote(b)), c(TRUE, NA), .Machine$integer.max, -0.0, c(NaN, Inf, -Inf, NA),
  quote(x[[1]]$y), bquote(.(1) + .(2)), as.name("if"), quote(`my var` + 1), list(function(x) x), new.env(), mtcars, 1:3 + 0L, array(1:24, 2:4), bitwAnd(1L,1L))
ok <- TRUE
for (i in seq_along(objs)) {
  o <- objs[[i]]
  a <- .Call(ns$mirai_serialize, o, NULL); b <- serialize(o, NULL, xdr = FALSE, version = 3)
  u <- .Call(ns$mirai_unserialize, b, NULL)
  if (!identical(a, b)) { cat("serialize differs for", i, "\n"); ok <- FALSE }
  if (!identical(u, unserialize(b)) && !is.environment(o) && !is.function(o[[1]])) { cat("unserialize differs for", i, "\n"); str(u); str(o); ok <- FALSE }
}
cat("all identical:", ok, "\n")
d <- list(globals = list(i = 1L), args = list(), expr = quote(i))
t <- proc.time()[[3]]; for (i in 1:100000) .Call(ns$mirai_serialize, d, NULL); cat("fast serialize us:", (proc.time()[[3]]-t)*10, "\n")
r <- .Call(ns$mirai_serialize, d, NULL)
t <- proc.time()[[3]]; for (i in 1:100000) .Call(ns$mirai_unserialize, r, NULL); cat("fast unserialize us:", (proc.time()[[3]]-t)*10, "\n")
t <- proc.time()[[3]]; for (i in 1:100000) serialize(d, NULL, xdr=FALSE); cat("R serialize us:", (proc.time()[[3]]-t)*10, "\n")
t <- proc.time()[[3]]; for (i in 1:100000) unserialize(r); cat("R unserialize us:", (proc.time()[[3]]-t)*10, "\n")
