# 4 rounds of 10,000 mirai(i, i = i) one by one over 2 daemons, in one R process: run it
# alternately against two installed builds (R_LIBS=...) to compare them side by side.
suppressPackageStartupMessages({library(mirai)})
n <- 10000
daemons(2); Sys.sleep(0.3)
r <- numeric()
for (k in 1:4) { t <- proc.time()[[3]]; ms <- lapply(seq_len(n), function(i) mirai(i, i = i)); x <- collect_mirai(ms); r[k] <- n/(proc.time()[[3]]-t) }
cat(round(r), "\n")
daemons(0)
