# R-level benchmarks for `cargo xtask bench`: this package against base R's PSOCK cluster (and
# `future` when installed), measured in one R process, interleaved round by round.
# Environment: MIRAI_BENCH_CSV (output file), MIRAI_BENCH_ROUNDS, MIRAI_BENCH_TRIPS, MIRAI_BENCH_TASKS.
suppressPackageStartupMessages({ library(mirai); library(parallel) })
csv <- Sys.getenv("MIRAI_BENCH_CSV", "r-bench.csv")
rounds <- as.integer(Sys.getenv("MIRAI_BENCH_ROUNDS", "5"))
trips <- as.integer(Sys.getenv("MIRAI_BENCH_TRIPS", "200"))
ntasks <- as.integer(Sys.getenv("MIRAI_BENCH_TASKS", "10000"))
now <- function() proc.time()[["elapsed"]]
stopifnot(utils::packageDescription("mirai")$Version >= "2.7")

rows <- list()
add <- function(measure, system, unit, x, higher_better = FALSE)
  rows[[length(rows) + 1L]] <<- data.frame(measure = measure, system = system, unit = unit,
    median = stats::median(x), min = min(x), max = max(x), higher_better = higher_better)

# --- round trip: mirai(1)[] on 1 daemon vs clusterCall on a 1-node PSOCK cluster -------------
daemons(1, .compute = "rt")
cl1 <- makePSOCKcluster(1)
for (i in seq_len(50)) { mirai(1, .compute = "rt")[]; clusterCall(cl1, function() 1) }  # warm-up
# proc.time has 1 ms resolution: time blocks of trips; each block gives one sample.
block <- function(f) { t <- now(); for (i in seq_len(trips)) f(); (now() - t) / trips * 1e6 }
b_mirai <- b_psock <- numeric()
for (r in seq_len(rounds)) {
  b_mirai <- c(b_mirai, block(function() mirai(1, .compute = "rt")[]))
  b_psock <- c(b_psock, block(function() clusterCall(cl1, function() 1)))
}
add("round trip mirai(1)[]", "mirai (this package)", "us", b_mirai)
add("round trip mirai(1)[]", "PSOCK clusterCall", "us", b_psock)
daemons(0, .compute = "rt"); stopCluster(cl1)

# --- 10,000 trivial tasks over 2 daemons ------------------------------------------------------
daemons(2, .compute = "tp")
cl2 <- makePSOCKcluster(2)
tp_one <- tp_map <- tp_psock <- numeric()
for (r in seq_len(max(1L, rounds %/% 2L))) {
  t <- now(); ms <- lapply(seq_len(ntasks), function(i) mirai(i, i = i, .compute = "tp")); x <- collect_mirai(ms)
  tp_one <- c(tp_one, ntasks / (now() - t)); stopifnot(identical(unlist(x), seq_len(ntasks)))
  t <- now(); x <- with_daemons("tp", mirai_map(seq_len(ntasks), identity)[])
  tp_map <- c(tp_map, ntasks / (now() - t)); stopifnot(identical(unlist(x), seq_len(ntasks)))
  t <- now(); x <- clusterApplyLB(cl2, seq_len(ntasks), identity)
  tp_psock <- c(tp_psock, ntasks / (now() - t)); stopifnot(identical(unlist(x), seq_len(ntasks)))
}
add("10k tasks, 2 daemons", "mirai, one by one", "tasks/s", tp_one, TRUE)
add("10k tasks, 2 daemons", "mirai_map", "tasks/s", tp_map, TRUE)
add("10k tasks, 2 daemons", "PSOCK clusterApplyLB", "tasks/s", tp_psock, TRUE)
daemons(0, .compute = "tp"); stopCluster(cl2)

if (requireNamespace("future", quietly = TRUE)) {
  cat("future: installed, not yet part of this benchmark\n")
} else cat("future: not installed, skipped\n")
cat("CRAN mirai: cannot be installed beside this package under the same name here, skipped\n")

res <- do.call(rbind, rows)
ref <- ifelse(grepl("^round", res$measure), "PSOCK clusterCall", "PSOCK clusterApplyLB")
base <- vapply(seq_len(nrow(res)), function(i) res$median[res$measure == res$measure[i] & res$system == ref[i]], 0)
res$vs_psock <- ifelse(res$higher_better, res$median / base, base / res$median)
utils::write.csv(res, csv, row.names = FALSE)
cat(sprintf("\n%-24s %-24s %12s %24s %10s\n", "measure", "system", "median", "min - max", "vs PSOCK"))
for (i in seq_len(nrow(res))) with(res[i, ], cat(sprintf("%-24s %-24s %9.1f %-2s %11.1f - %-10.1f %8.2fx\n",
  measure, system, median, if (unit == "us") "us" else "", min, max, vs_psock)))
cat("vs PSOCK: how many times faster than PSOCK (>1 is faster)\n")
