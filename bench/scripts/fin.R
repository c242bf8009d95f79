# Host cost per mirai of the keyed task's finalizer (mirai-r/src/handles.rs), no daemon:
# (a) created and dropped unsettled: the collector keeps each dead mirai for one more collection
#     to run its finalizer; (b) created, stopped and read (settled), then dropped: settling ran
#     the finalizer already. Microseconds per mirai, 6 rounds of 20,000, collection included.
suppressPackageStartupMessages(library(mirai))
daemons(url = local_url(), .compute = "q")
n <- 20000
round_us <- function(f) { gc(); t <- proc.time()[[3]]; f(); gc(); (proc.time()[[3]] - t) / n * 1e6 }
a <- replicate(6, round_us(function() for (i in seq_len(n)) mirai(1, .compute = "q")))
b <- replicate(6, round_us(function() {
  ms <- vector("list", n)
  for (i in seq_len(n)) ms[[i]] <- mirai(1, .compute = "q")
  stop_mirai(ms)
  for (m in ms) m$data
}))
cat(sprintf("unsettled, dropped: %s us\nstopped, read, dropped: %s us\n", paste(round(a, 2), collapse = " "), paste(round(b, 2), collapse = " ")))
daemons(0, .compute = "q")
