suppressPackageStartupMessages({library(mirai)})
n <- 20000
ctx <- function(pid = Sys.getpid()) {
  tids <- list.files(sprintf("/proc/%s/task", pid))
  sapply(tids, function(t) { s <- readLines(sprintf("/proc/%s/task/%s/status", pid, t)); sum(as.numeric(sub(".*:\\s*", "", grep("ctxt_switches", s, value = TRUE)))) })
}
daemons(url = local_url(), .compute = "echo")
system2(Sys.getenv("MIRAI_DAEMON_BIN", "target/release/mirai-daemon"), status(.compute = "echo")$daemons, wait = FALSE)
while (status(.compute = "echo")$connections < 1) Sys.sleep(0.05)
f_echo <- function() mirai(1, .compute = "echo")[]
for (i in 1:100) f_echo()
a <- ctx(); t <- proc.time(); for (i in seq_len(n)) f_echo(); el <- (proc.time() - t)[[3]]; b <- ctx()
print((b - a[names(b)]) / n); cat("us/trip", el / n * 1e6, "\n")
daemons(0, .compute = "echo")
