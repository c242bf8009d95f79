# nanonext req/rep between two R processes over ipc, raw mode: 16 B round trips and 1 MiB
# messages echoed (spec issue 13 item 7). Run by `cargo xtask bench` beside the `nng` crate's
# own req/rep (`mirai-bench nng-reqrep`), whose rows go to the same CSV.
#
# Environment: R_LIBS (the library holding nanonext), MIRAI_BENCH_NANONEXT_CSV (rows are
# appended: measure,system,unit,median,min,max,n), MIRAI_BENCH_TRIPS (16 B round trips,
# default 2000), MIRAI_BENCH_BIG (1 MiB round trips, default 100).
# Each round trip is timed alone (mclock()); throughput is the message size over the round
# trip time.

library(nanonext)
csv <- Sys.getenv("MIRAI_BENCH_NANONEXT_CSV", "")
n <- as.integer(Sys.getenv("MIRAI_BENCH_TRIPS", "2000"))
big <- as.integer(Sys.getenv("MIRAI_BENCH_BIG", "100"))
url <- sprintf("ipc://%s", tempfile("nanonext-bench-", fileext = ".sock"))

code <- sprintf(paste(
  "library(nanonext); s <- socket('rep', listen = '%s')",
  "repeat { x <- recv(s, mode = 'raw', block = 10000); if (is_error_value(x)) break",
  "if (is_error_value(send(s, x, mode = 'raw', block = TRUE))) break }", sep = "; "), url)
rscript <- file.path(R.home("bin"), "Rscript")
system2(rscript, c("-e", shQuote(code)), wait = FALSE,
        env = paste0("R_LIBS=", paste(.libPaths(), collapse = ":")))

s <- socket("req")
dial(s, url)
opt(s, "recv-timeout") <- 30000L

trips <- function(size, k) {
  x <- as.raw(rep_len(7L, size))
  out <- numeric(k)
  for (i in seq_len(k)) {
    t <- mclock()
    send(s, x, mode = "raw", block = TRUE)
    r <- recv(s, mode = "raw", block = TRUE)
    out[i] <- (mclock() - t) * 1000
    if (length(r) != size) stop(sprintf("echo of %s for %d bytes", format(r), size))
  }
  out
}

invisible(trips(16L, 200L))
small <- trips(16L, n)
invisible(trips(1048576L, 5L))
large <- trips(1048576L, big)
close(s)

sys <- "nanonext req/rep (R), 2 R processes"
mib <- function(us) 1e6 / us
rows <- c(
  sprintf("\"round trip 16 B, raw, ipc\",\"%s\",us,%.3f,%.3f,%.3f,%d", sys, median(small), min(small), max(small), n),
  sprintf("\"1 MiB echoed, raw, ipc\",\"%s\",MiB/s,%.1f,%.1f,%.1f,%d", sys, mib(median(large)), mib(max(large)), mib(min(large)), big)
)
writeLines(rows)
if (nzchar(csv)) {
  if (!file.exists(csv)) writeLines("measure,system,unit,median,min,max,n", csv)
  cat(rows, file = csv, sep = "\n", append = TRUE)
}
