suppressPackageStartupMessages({library(mirai)})
n <- 10000
mode <- Sys.getenv("MODE", "dispatcher")
daemons(2, dispatcher = mode == "dispatcher")
Sys.sleep(0.5)
pids <- unlist(mirai_map(1:2, function(i) { Sys.sleep(0.3); Sys.getpid() })[])
thr <- function(pid) sapply(list.files(sprintf("/proc/%d/task", pid)), function(t) { s <- strsplit(readLines(sprintf("/proc/%d/task/%s/stat", pid, t)), " ")[[1]]; sum(as.numeric(s[14:15])) / 100 })
all <- function() c(thr(Sys.getpid()), d1 = sum(thr(pids[1])), d2 = sum(thr(pids[2])))
for (r in 1:3) {
  a <- all(); t <- proc.time()[[3]]
  ms <- lapply(seq_len(n), function(i) mirai(i, i = i)); b <- all(); t1 <- proc.time()[[3]]
  x <- collect_mirai(ms); c <- all(); t2 <- proc.time()[[3]]
  cat(sprintf("%s: %.0f tasks/s; submit %.0f ms, collect %.0f ms\n", mode, n / (t2 - t), (t1 - t) * 1000, (t2 - t1) * 1000))
  print(rbind(submit = round((b - a[names(b)]) / n * 1e6, 1), collect = round((c - b[names(c)]) / n * 1e6, 1)))
}
daemons(0)
