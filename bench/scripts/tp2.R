suppressPackageStartupMessages({library(mirai); library(parallel)})
n <- 10000
daemons(2, .compute = "d"); daemons(2, dispatcher = FALSE, .compute = "direct"); cl <- makePSOCKcluster(2)
Sys.sleep(0.5)
for (r in 1:3) {
t <- proc.time()[[3]]; ms <- lapply(seq_len(n), function(i) mirai(i, i = i, .compute = "d")); t1 <- proc.time()[[3]]; x <- collect_mirai(ms); t2 <- proc.time()[[3]]
cat(sprintf("dispatcher one-by-one: %.0f tasks/s (submit %.2fs, collect %.2fs)\n", n/(t2-t), t1-t, t2-t1))
t <- proc.time()[[3]]; ms <- lapply(seq_len(n), function(i) mirai(i, i = i, .compute = "direct")); t1 <- proc.time()[[3]]; x <- collect_mirai(ms); t2 <- proc.time()[[3]]
cat(sprintf("direct one-by-one: %.0f tasks/s (submit %.2fs, collect %.2fs)\n", n/(t2-t), t1-t, t2-t1))
t <- proc.time()[[3]]; x <- clusterApplyLB(cl, seq_len(n), identity); cat(sprintf("psock LB: %.0f tasks/s\n", n/(proc.time()[[3]]-t)))
}
daemons(0, .compute = "d"); daemons(0, .compute = "direct"); stopCluster(cl)
