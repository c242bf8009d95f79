suppressPackageStartupMessages(library(mirai))
n <- 100000
rss <- function() { invisible(gc()); as.numeric(strsplit(readLines("/proc/self/statm"), " ")[[1L]][2L]) * 4096 }
rheap <- function() { g <- gc(); sum(g[, 1L] * c(56, 8)) }
daemons(url = local_url(), .compute = "mem")
invisible(mirai(1, .compute = "mem"))
r0 <- rss(); h0 <- rheap()
ms <- lapply(seq_len(n), function(i) mirai(i, i = i, .compute = "mem"))
r1 <- rss(); h1 <- rheap()
cat(sprintf("total %.0f B/mirai, R heap %.0f B/mirai, Rust+rest %.0f\n", (r1 - r0) / n, (h1 - h0) / n, (r1-r0)/n - (h1-h0)/n))
print(gc())
ns <- asNamespace("mirai")
print(length(.Call(ns$mirai_serialize, list(globals = list(i = 1L), args = list(), expr = quote(i)), NULL)))
daemons(0, .compute = "mem")
