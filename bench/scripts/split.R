# 10,000 mirai(i, i = i) one by one over 2 daemons, timing the submit and collect phases apart,
# against PSOCK clusterApplyLB in the same process, 6 rounds.
suppressPackageStartupMessages(library(mirai))
n <- 10000
daemons(2); Sys.sleep(0.5)
cl <- parallel::makePSOCKcluster(2)
for (k in 1:6) {
  t0 <- proc.time()[[3]]; ms <- lapply(seq_len(n), function(i) mirai(i, i = i)); t1 <- proc.time()[[3]]
  st <- status()$mirai
  x <- collect_mirai(ms); t2 <- proc.time()[[3]]
  t3 <- proc.time()[[3]]; y <- parallel::clusterApplyLB(cl, seq_len(n), function(i) i); t4 <- proc.time()[[3]]
  cat(sprintf("submit %.0f ms (done by then %d), collect %.0f ms, total %.0f tasks/s; PSOCK %.0f tasks/s; ratio %.2f\n", (t1-t0)*1e3, st[["completed"]], (t2-t1)*1e3, n/(t2-t0), n/(t4-t3), (t4-t3)/(t2-t0)))
  rm(ms, x); 
}
parallel::stopCluster(cl)
daemons(0)
