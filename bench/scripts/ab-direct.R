# Dispatcher mode (pipelining, depth 2) against direct mode (tasks queue at the daemons without
# bound) and PSOCK clusterApplyLB: 10,000 mirai(i, i = i) one by one over 2 daemons, 11 rounds.
suppressPackageStartupMessages({library(mirai); library(parallel)})
n <- 10000
daemons(2, .compute = "disp"); daemons(2, dispatcher = FALSE, .compute = "direct"); cl <- makePSOCKcluster(2)
Sys.sleep(0.5)
res <- list()
run <- function(p) { t <- proc.time()[[3]]; ms <- lapply(seq_len(n), function(i) mirai(i, i = i, .compute = p)); x <- collect_mirai(ms); n/(proc.time()[[3]]-t) }
for (r in 1:11) {
  for (p in sample(c("disp", "direct"))) res[[p]] <- c(res[[p]], run(p))
  t <- proc.time()[[3]]; x <- clusterApplyLB(cl, seq_len(n), identity); res$psock <- c(res$psock, n/(proc.time()[[3]]-t))
}
for (k in names(res)) cat(sprintf("%-6s median %6.0f  %.2fx psock  [%s]\n", k, median(res[[k]]), median(res[[k]])/median(res$psock), paste(round(res[[k]]/1000), collapse=" ")))
daemons(0, .compute = "disp"); daemons(0, .compute = "direct"); stopCluster(cl)
