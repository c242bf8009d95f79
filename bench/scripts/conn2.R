suppressPackageStartupMessages({library(mirai); library(parallel)})
a <- b <- numeric()
for (i in 1:8) {
Sys.sleep(0.5); t <- Sys.time(); daemons(4, .compute = "c"); a <- c(a, Sys.time() - t); daemons(0, .compute = "c")
Sys.sleep(0.5); t <- Sys.time(); cl <- makePSOCKcluster(4); b <- c(b, Sys.time() - t); stopCluster(cl)
}
cat(sprintf("mirai median %.0f ms (min %.0f), psock median %.0f ms (min %.0f)\n", median(a)*1000, min(a)*1000, median(b)*1000, min(b)*1000))
