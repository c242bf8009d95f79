# Pipelining on and off side by side (the option mirai.pipeline is read when a profile starts), with PSOCK
# clusterApplyLB as the reference: 10,000 mirai(i, i = i) one by one over 2 daemons, 7 rounds.
suppressPackageStartupMessages({library(mirai); library(parallel)})
n <- 10000
options(mirai.pipeline = TRUE); daemons(2, .compute = "on")
options(mirai.pipeline = FALSE); daemons(2, .compute = "off")
cl <- makePSOCKcluster(2)
Sys.sleep(0.5)
res <- list()
run <- function(p) { t <- proc.time()[[3]]; ms <- lapply(seq_len(n), function(i) mirai(i, i = i, .compute = p)); x <- collect_mirai(ms); stopifnot(identical(unlist(x), seq_len(n))); n/(proc.time()[[3]]-t) }
for (r in 1:7) {
  for (p in sample(c("on", "off"))) res[[p]] <- c(res[[p]], run(p))
  t <- proc.time()[[3]]; x <- clusterApplyLB(cl, seq_len(n), identity); res$psock <- c(res$psock, n/(proc.time()[[3]]-t))
}
for (k in names(res)) cat(sprintf("%-6s median %6.0f tasks/s  [%s]\n", k, median(res[[k]]), paste(round(res[[k]]), collapse=" ")))
cat(sprintf("on/psock %.2f  off/psock %.2f  on/off %.2f\n", median(res$on)/median(res$psock), median(res$off)/median(res$psock), median(res$on)/median(res$off)))
daemons(0, .compute = "on"); daemons(0, .compute = "off"); stopCluster(cl)
