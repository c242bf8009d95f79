# R-level benchmarks for `cargo xtask bench`: this package against base R's PSOCK cluster,
# `future` multisession (when installed) and CRAN mirai (when installed), measured in one R
# process, the systems interleaved round by round so that drift on a shared machine hits all of
# them alike. Writes one CSV row per (measure, system): median, min and max over the samples.
#
# Environment: MIRAI_BENCH_CSV (output file), MIRAI_BENCH_ROUNDS, MIRAI_BENCH_TRIPS (round trips
# per round and system), MIRAI_BENCH_TASKS (tasks per throughput sample), MIRAI_BENCH_FUTURE_TASKS
# (the same for `future`, which is two orders of magnitude slower), MIRAI_BENCH_MIB_TASKS,
# MIRAI_BENCH_MEM_N (unresolved mirai for the memory measure), MIRAI_BENCH_FLOOR (the
# `mirai-bench` binary, for interleaved raw-socket floor samples), MIRAI_BENCH_CRAN_LIB (a
# library holding CRAN mirai, if any).
suppressPackageStartupMessages({ library(mirai); library(parallel) })
env_int <- function(name, default) as.integer(Sys.getenv(name, default))
csv <- Sys.getenv("MIRAI_BENCH_CSV", "r-bench.csv")
rounds <- env_int("MIRAI_BENCH_ROUNDS", "5")
trips <- env_int("MIRAI_BENCH_TRIPS", "500")
ntasks <- env_int("MIRAI_BENCH_TASKS", "10000")
nfuture <- env_int("MIRAI_BENCH_FUTURE_TASKS", "500")
nmib <- env_int("MIRAI_BENCH_MIB_TASKS", "200")
nmem <- env_int("MIRAI_BENCH_MEM_N", "100000")
floor_bin <- Sys.getenv("MIRAI_BENCH_FLOOR", "")
now <- function() as.numeric(Sys.time())
stopifnot(utils::packageDescription("mirai")$Version >= "2.7")

rows <- list()
add <- function(measure, system, unit, x, higher_better = FALSE)
  rows[[length(rows) + 1L]] <<- data.frame(measure = measure, system = system, unit = unit,
    median = stats::median(x), min = min(x), max = max(x), n = length(x), higher_better = higher_better)
samples <- new.env()
keep <- function(key, x) samples[[key]] <- c(samples[[key]], x)

# --- peers ------------------------------------------------------------------------------------
has_future <- requireNamespace("future", quietly = TRUE)
cat(if (has_future) sprintf("future %s: multisession, measured\n", utils::packageVersion("future"))
    else "future: not installed (Debian: r-cran-future), skipped\n")
cran_lib <- Sys.getenv("MIRAI_BENCH_CRAN_LIB", "")
cran_ok <- nzchar(cran_lib) && file.exists(file.path(cran_lib, "mirai", "DESCRIPTION")) &&
  identical(read.dcf(file.path(cran_lib, "mirai", "DESCRIPTION"), "Repository")[[1L]], "CRAN")
if (cran_ok) {
  cat(sprintf("CRAN mirai: found in %s, measured in a child R process per round\n", cran_lib))
} else {
  cat("CRAN mirai: not installed (no CRAN mirror here; it cannot share this package's name in one",
      "library: set MIRAI_BENCH_CRAN_LIB to a library holding it), skipped\n")
}

# CRAN mirai runs in its own R process (same package name): one round of the round-trip and
# throughput measures, printed as `key value` lines.
cran_round <- function() {
  code <- sprintf('suppressPackageStartupMessages(library(mirai)); now <- function() as.numeric(Sys.time())
    daemons(1, .compute = "rt"); for (i in 1:50) mirai(1, .compute = "rt")[]
    t <- now(); for (i in seq_len(%d)) mirai(1, .compute = "rt")[]; cat("rt", (now() - t) / %d * 1e6, "\\n")
    daemons(0, .compute = "rt"); daemons(2); mirai(1)[]
    t <- now(); ms <- lapply(seq_len(%d), function(i) mirai(i, i = i)); x <- collect_mirai(ms); cat("obo", %d / (now() - t), "\\n")
    t <- now(); x <- mirai_map(seq_len(%d), identity)[]; cat("map", %d / (now() - t), "\\n")
    daemons(0)', trips, trips, ntasks, ntasks, ntasks, ntasks)
  out <- system2(file.path(R.home("bin"), "Rscript"), c("-e", shQuote(code)), stdout = TRUE,
                 env = sprintf("R_LIBS=%s", cran_lib))
  kv <- do.call(rbind, strsplit(trimws(out), " +"))
  stats::setNames(as.numeric(kv[, 2L]), kv[, 1L])
}

# --- set-up: every system's pools, started once ------------------------------------------------
daemons(1, .compute = "rt")
daemons(2, .compute = "tp")
cl1 <- makePSOCKcluster(1)
cl2 <- makePSOCKcluster(2)
if (has_future) {
  oplan <- future::plan(future::multisession, workers = 2)
  invisible(future::value(lapply(1:2, function(i) future::future(i))))
}
for (i in seq_len(100)) { mirai(1, .compute = "rt")[]; clusterCall(cl1, function() 1) } # warm-up
# Round trips are timed one by one; a block's sample is the median of its trips, less the cost
# of reading the clock (measured here), as the floor's blocks are (mirai-bench floor).
blocks <- 5L
per_block <- max(1L, trips %/% blocks)
clock <- stats::median(vapply(seq_len(1000L), function(i) { t <- now(); now() - t }, 0)) * 1e6
block <- function(f, n = per_block) {
  x <- numeric(n)
  for (i in seq_len(n)) { t <- now(); f(); x[i] <- now() - t }
  stats::median(x) * 1e6 - clock
}
floor_block <- function() {
  if (!nzchar(floor_bin)) return(numeric())
  as.numeric(system2(floor_bin, c("floor", "--blocks", blocks, "--trips", per_block), stdout = TRUE))
}
mib <- stats::runif(131072) # 1 MiB of doubles
mibs <- rep(list(mib), nmib)

for (r in seq_len(rounds)) {
  # round trip, 1 daemon: the floor, this package, PSOCK, future, in turn, block by block
  keep("rt.floor", floor_block())
  for (b in seq_len(blocks)) {
    keep("rt.mirai", block(function() mirai(1, .compute = "rt")[]))
    keep("rt.psock", block(function() clusterCall(cl1, function() 1)))
    if (has_future && b == 1L) keep("rt.future", block(function() future::value(future::future(1)), 10L))
  }
  # 10,000 trivial tasks over 2 daemons: one by one, mapped, PSOCK's load-balanced apply
  t <- now(); ms <- lapply(seq_len(ntasks), function(i) mirai(i, i = i, .compute = "tp")); x <- collect_mirai(ms)
  keep("tp.obo", ntasks / (now() - t)); stopifnot(identical(unlist(x), seq_len(ntasks)))
  t <- now(); x <- mirai_map(seq_len(ntasks), identity, .compute = "tp")[]
  keep("tp.map", ntasks / (now() - t)); stopifnot(identical(unlist(x), seq_len(ntasks)))
  t <- now(); x <- clusterApplyLB(cl2, seq_len(ntasks), identity)
  keep("tp.psock", ntasks / (now() - t)); stopifnot(identical(unlist(x), seq_len(ntasks)))
  t <- now(); x <- parLapply(cl2, seq_len(ntasks), identity)
  keep("tp.parlapply", ntasks / (now() - t)); stopifnot(identical(unlist(x), seq_len(ntasks)))
  if (has_future) {
    t <- now(); fs <- lapply(seq_len(nfuture), function(i) future::future(i)); x <- future::value(fs)
    keep("tp.future", nfuture / (now() - t)); stopifnot(identical(unlist(x), seq_len(nfuture)))
  }
  # 200 tasks of 1 MiB in, a double out
  t <- now(); ms <- lapply(mibs, function(x) mirai(sum(x), x = x, .compute = "tp")); x <- collect_mirai(ms)
  keep("mib.mirai", nmib / (now() - t)); stopifnot(all(unlist(x) == sum(mib)))
  t <- now(); x <- clusterApplyLB(cl2, mibs, sum)
  keep("mib.psock", nmib / (now() - t)); stopifnot(all(unlist(x) == sum(mib)))
  if (has_future) {
    t <- now(); fs <- lapply(mibs[seq_len(min(nmib, 50L))], function(x) future::future(sum(x), globals = list(x = x)))
    x <- future::value(fs)
    keep("mib.future", length(fs) / (now() - t)); stopifnot(all(unlist(x) == sum(mib)))
  }
  if (cran_ok) {
    cr <- cran_round()
    keep("rt.cran", cr[["rt"]]); keep("tp.cran_obo", cr[["obo"]]); keep("tp.cran_map", cr[["map"]])
  }
  cat(sprintf("round %d/%d done\n", r, rounds))
}
daemons(0, .compute = "rt"); daemons(0, .compute = "tp")
stopCluster(cl1); stopCluster(cl2)
if (has_future) future::plan(future::sequential)

# --- time until 4 daemons / workers are connected, interleaved --------------------------------
# Each measure starts after a pause, so that the processes of the previous one have exited.
for (r in seq_len(rounds)) {
  Sys.sleep(0.5); t <- now(); daemons(4, .compute = "conn"); keep("conn.mirai", (now() - t) * 1e3)
  daemons(0, .compute = "conn")
  Sys.sleep(0.5); t <- now(); cl <- makePSOCKcluster(4); keep("conn.psock", (now() - t) * 1e3)
  stopCluster(cl)
  if (has_future) {
    Sys.sleep(0.5); t <- now(); future::plan(future::multisession, workers = 4); keep("conn.future", (now() - t) * 1e3)
    future::plan(future::sequential)
  }
}

# --- host memory per unresolved mirai: no daemon ever connects, so all stay queued -------------
# Measured in a fresh R process each round (a process that has already run the other measures
# has a heap grown large enough to hide the growth): resident memory growth over the creation of
# `nmem` mirai, and the part of it that is R's heap in use (gc()).
mem_code <- sprintf('suppressPackageStartupMessages(library(mirai))
  rss <- function() { invisible(gc()); as.numeric(strsplit(readLines("/proc/self/statm"), " ")[[1L]][2L]) * 4096 }
  rheap <- function() { g <- gc(); sum(g[, 1L] * c(56, 8)) }
  daemons(url = local_url(), .compute = "mem"); invisible(mirai(0L, .compute = "mem"))
  r0 <- rss(); h0 <- rheap()
  ms <- lapply(seq_len(%d), function(i) mirai(i, i = i, .compute = "mem"))
  r1 <- rss(); h1 <- rheap()
  stopifnot(unresolved(ms[[1L]]), unresolved(ms[[%d]]))
  cat("total", (r1 - r0) / %d, "\n"); cat("r", (h1 - h0) / %d, "\n")', nmem, nmem, nmem, nmem)
for (r in seq_len(max(1L, rounds %/% 2L))) {
  out <- system2(file.path(R.home("bin"), "Rscript"), c("-e", shQuote(mem_code)), stdout = TRUE)
  kv <- do.call(rbind, strsplit(trimws(out), " +"))
  keep("mem.total", as.numeric(kv[kv[, 1L] == "total", 2L])); keep("mem.r", as.numeric(kv[kv[, 1L] == "r", 2L]))
}

# --- results --------------------------------------------------------------------------------
g <- function(key) samples[[key]]
has <- function(key) length(g(key)) > 0L
rt <- "round trip mirai(1)[], 1 daemon"
if (has("rt.floor")) add(rt, "raw unix socket, 2 processes (floor)", "us", g("rt.floor"))
add(rt, "mirai (this package)", "us", g("rt.mirai"))
add(rt, "PSOCK clusterCall", "us", g("rt.psock"))
if (has("rt.future")) add(rt, "future multisession", "us", g("rt.future"))
if (has("rt.cran")) add(rt, "CRAN mirai", "us", g("rt.cran"))
tp <- "10k trivial tasks, 2 daemons"
add(tp, "mirai, one by one", "tasks/s", g("tp.obo"), TRUE)
add(tp, "mirai_map", "tasks/s", g("tp.map"), TRUE)
add(tp, "PSOCK clusterApplyLB", "tasks/s", g("tp.psock"), TRUE)
add(tp, "PSOCK parLapply (static chunks)", "tasks/s", g("tp.parlapply"), TRUE)
if (has("tp.future")) add(tp, sprintf("future multisession (%d tasks)", nfuture), "tasks/s", g("tp.future"), TRUE)
if (has("tp.cran_obo")) add(tp, "CRAN mirai, one by one", "tasks/s", g("tp.cran_obo"), TRUE)
if (has("tp.cran_map")) add(tp, "CRAN mirai_map", "tasks/s", g("tp.cran_map"), TRUE)
mb <- sprintf("%d x 1 MiB in, a double out, 2 daemons", nmib)
add(mb, "mirai, one by one", "MiB/s", g("mib.mirai"), TRUE)
add(mb, "PSOCK clusterApplyLB", "MiB/s", g("mib.psock"), TRUE)
if (has("mib.future")) add(mb, "future multisession (50 tasks)", "MiB/s", g("mib.future"), TRUE)
cn <- "time until 4 daemons connected"
add(cn, "mirai daemons(4)", "ms", g("conn.mirai"))
add(cn, "PSOCK makePSOCKcluster(4)", "ms", g("conn.psock"))
if (has("conn.future")) add(cn, "future plan(multisession, workers = 4)", "ms", g("conn.future"))
mm <- sprintf("host memory per unresolved mirai (%s)", format(nmem, big.mark = ","))
add(mm, "mirai, total (resident memory)", "bytes", g("mem.total"))
add(mm, "mirai, of which R heap", "bytes", g("mem.r"))

res <- do.call(rbind, rows)
utils::write.csv(res, csv, row.names = FALSE)
cat(sprintf("wrote %s\n", csv))
