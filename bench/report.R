# The report of `cargo xtask bench`: merges the engine, scale and R results of one run into one
# table of medians (min - max) with ratios and the goals of the performance issue, writes it as
# bench/results/summary.csv and summary.md, and draws bench/results/bench.png (base graphics).
#
# Usage: Rscript report.R <results dir> <machine description>
args <- commandArgs(trailingOnly = TRUE)
dir <- args[1L]
machine <- if (length(args) > 1L) args[2L] else "unknown machine"
path <- function(f) file.path(dir, f)
rd <- function(f) if (file.exists(path(f))) utils::read.csv(path(f), stringsAsFactors = FALSE)

eng <- rd("engine.csv")
r <- rd("r.csv")
sc <- rd("scale.csv")
if (!is.null(sc)) sc$all_completed <- tolower(as.character(sc$all_completed)) == "true"

rows <- list()
row <- function(measure, system, unit, median, min, max, ratio = NA_real_, ratio_to = "", goal = "", met = NA)
  rows[[length(rows) + 1L]] <<- data.frame(measure = measure, system = system, unit = unit, median = median,
    min = min, max = max, ratio = ratio, ratio_to = ratio_to, goal = goal, met = met, stringsAsFactors = FALSE)
pick <- function(d, m, s) d[d$measure == m & d$system == s, , drop = FALSE]

# The tracing group (mirai-bench): (a) no OTEL_* variable, (b) OTEL_SDK_DISABLED=true, (c) every
# span exported; ratios to (a). Off costs nothing when (b)'s median is within noise of (a)'s.
trace_goal <- "off costs nothing: (b) <= 1.05 x (a), medians"
if (!is.null(eng)) {
  for (i in seq_len(nrow(eng))) with(eng[i, ], {
    rt <- grepl("^round trip", measure)
    tr <- grepl("tracing", measure)
    goal <- ""; met <- NA
    if (tr && startsWith(system, "(b)")) { goal <- trace_goal; met <- ratio <= 1.05 }
    row(sprintf("engine: %s", measure), system, unit, median, min, max, ratio,
        if (tr) "tracing off by default (a)" else if (rt) "engine floor" else "native engine", goal, met)
  })
}

if (!is.null(r)) {
  ref <- function(m, s) { x <- pick(r, m, s); if (nrow(x)) x$median else NA_real_ }
  for (i in seq_len(nrow(r))) {
    x <- r[i, ]
    m <- x$measure
    goal <- ""; met <- NA; ratio <- NA_real_; to <- ""
    if (grepl("^round trip", m)) {
      fl <- ref(m, "raw unix socket, 2 processes (floor)")
      ps <- ref(m, "PSOCK clusterCall")
      ratio <- x$median / fl; to <- "floor (x, lower is better)"
      if (x$system == "mirai (this package)") {
        # The floor is bimodal on a shared VM (7-9 us when both processes share a CPU, 30-90 us
        # when the wake-up crosses CPUs), and its median can land in either mode: the goal must
        # hold for the medians and for the minimums (each system's fast mode) alike. The fast
        # mode is the lowest floor of the whole run: the R rounds' floor alone may never reach
        # it (07:36 UTC run: its minimum was 23.8 us, the engine rounds' 6.9 us).
        flmin <- min(pick(r, m, "raw unix socket, 2 processes (floor)")$min,
                     if (!is.null(eng)) eng$min[grepl("floor", eng$system)], na.rm = TRUE)
        goal <- "<= 1.5 x floor (medians and minimums) and < PSOCK"
        met <- isTRUE(ratio <= 1.5) && isTRUE(x$min / flmin[1L] <= 1.5) && isTRUE(x$median < ps)
      }
    } else if (grepl("^10k trivial", m)) {
      ps <- ref(m, "PSOCK clusterApplyLB")
      ratio <- x$median / ps; to <- "PSOCK clusterApplyLB (x, higher is better)"
      if (x$system == "mirai, one by one") { goal <- ">= 5 x PSOCK"; met <- ratio >= 5 }
      if (x$system == "mirai_map") { goal <- ">= 10 x PSOCK"; met <- ratio >= 10 }
    } else if (grepl("1 MiB", m)) {
      ps <- ref(m, "PSOCK clusterApplyLB")
      ratio <- x$median / ps; to <- "PSOCK (x, higher is better)"
      if (x$system == "mirai, one by one") { goal <- ">= 2 x PSOCK"; met <- ratio >= 2 }
    } else if (grepl("^time until", m)) {
      ps <- ref(m, "PSOCK makePSOCKcluster(4)")
      ratio <- x$median / ps; to <- "PSOCK (x, lower is better)"
      if (x$system == "mirai daemons(4)") { goal <- "<= PSOCK"; met <- ratio <= 1 }
    } else if (grepl("^host memory", m)) {
      if (grepl("total", x$system)) { goal <- "<= 1024 bytes"; met <- x$median <= 1024 }
    }
    row(m, x$system, x$unit, x$median, x$min, x$max, ratio, to, goal, met)
  }
}

if (!is.null(sc)) {
  base <- sc[which.min(sc$daemons), ]
  for (i in seq_len(nrow(sc))) with(sc[i, ], {
    m <- sprintf("scale: %s tasks on one host, Rust echo daemons", format(tasks, big.mark = ","))
    per_task <- run_s / tasks
    growth <- per_task / (base$run_s / base$tasks)
    row(m, sprintf("%d daemons: run time", daemons), "s", run_s, run_s, run_s, growth,
        sprintf("time per task vs %d daemons", base$daemons), "all complete", all_completed)
    row(m, sprintf("%d daemons: connect time", daemons), "s", connect_s, connect_s, connect_s)
    if (!is.null(sc$host_bytes_per_daemon))
      row(m, sprintf("%d daemons: host memory per connected daemon", daemons), "bytes", host_bytes_per_daemon,
          host_bytes_per_daemon, host_bytes_per_daemon)
    row(m, sprintf("%d daemons: host memory growth, all tasks submitted", daemons), "MB", host_peak_growth_mb,
        host_peak_growth_mb, host_peak_growth_mb)
    row(m, sprintf("%d daemons: the same per task", daemons), "bytes", host_bytes_per_task,
        host_bytes_per_task, host_bytes_per_task)
  })
}

res <- do.call(rbind, rows)
utils::write.csv(res, path("summary.csv"), row.names = FALSE)

fmt <- function(x, unit) {
  if (is.na(x)) return("")
  if (unit %in% c("tasks/s", "bytes")) formatC(x, format = "f", digits = 0, big.mark = ",")
  else if (x >= 100) formatC(x, format = "f", digits = 0, big.mark = ",")
  else formatC(x, format = "f", digits = if (x >= 10) 1 else 2)
}
verdict <- function(met) if (is.na(met)) "" else if (isTRUE(as.logical(met))) "met" else "MISSED"
md <- c(sprintf("Machine: %s. Run: %s.", machine, format(Sys.time(), "%Y-%m-%d %H:%M %Z")), "",
        "| measure | system | median | min - max | ratio | goal |", "|---|---|---|---|---|---|")
cat(sprintf("\n%-44s %-42s %12s %24s %9s  %s\n", "measure", "system", "median", "min - max", "ratio", "goal"))
last <- ""
for (i in seq_len(nrow(res))) with(res[i, ], {
  m <- if (measure == last) "" else measure
  last <<- measure
  rng <- if (min == max) "" else sprintf("%s - %s", fmt(min, unit), fmt(max, unit))
  ratio_s <- if (is.na(ratio)) "" else sprintf("%.2fx", ratio)
  goal_s <- if (nzchar(goal)) sprintf("%s: %s", goal, verdict(met)) else ""
  cat(sprintf("%-44s %-42s %9s %-5s %24s %9s  %s\n", substr(m, 1, 44), substr(system, 1, 42), fmt(median, unit),
              unit, rng, ratio_s, goal_s))
  md <<- c(md, sprintf("| %s | %s | %s %s | %s | %s | %s |", m, system, fmt(median, unit), unit, rng, ratio_s, goal_s))
})
cat("ratios: round trips to the raw floor of the same run (the engine's tracing rows to (a)); throughput and connect time to PSOCK; scale rows to the smallest pool\n")
writeLines(md, path("summary.md"))

# --- plot -----------------------------------------------------------------------------------
png(path("bench.png"), width = 1600, height = 1000, res = 110)
op <- par(mfrow = c(2, 3), mar = c(4, 17, 3, 1), oma = c(1.5, 0, 0, 0), las = 1, cex.main = 0.9)
bars <- function(d, title, unit, log = "", goal = NULL) {
  if (is.null(d) || !nrow(d)) { plot.new(); title(main = paste(title, "(not measured)")); return(invisible()) }
  d <- d[rev(seq_len(nrow(d))), ]
  cols <- ifelse(grepl("mirai \\(this|^mirai|this package|engine, native", d$system) & !grepl("CRAN", d$system), "#2b6cb0", "grey70")
  lim <- c(if (log == "x") min(d$min) / 2 else 0, max(c(d$max, goal[is.finite(goal)])) * 1.1)
  y <- barplot(d$median, names.arg = d$system, horiz = TRUE, col = cols, xlim = lim, log = log,
               main = title, xlab = unit, cex.names = 0.8)
  goal <- goal[is.finite(goal)]
  if (length(goal)) abline(v = goal, col = "#c53030", lty = 2, lwd = 2)
  w <- d$max > d$min
  if (any(w)) suppressWarnings(arrows(d$min[w], y[w], d$max[w], y[w], angle = 90, code = 3, length = 0.03))
}
if (!is.null(r)) {
  # The engine's round trips without its tracing group (a table of their own).
  eng_rt <- if (!is.null(eng)) grepl("^round trip", eng$measure) & !grepl("tracing", eng$measure)
  rt <- rbind(if (!is.null(eng)) eng[eng_rt, c("system", "median", "min", "max")],
              r[grepl("floor", r$system), c("system", "median", "min", "max")],
              r[grepl("^round trip", r$measure) & !grepl("floor", r$system), c("system", "median", "min", "max")])
  if (!is.null(eng)) rt$system[seq_len(sum(eng_rt))] <- sprintf("%s [Rust run]", rt$system[seq_len(sum(eng_rt))])
  med <- function(m, s) { x <- r[grepl(m, r$measure) & r$system == s, "median"]; if (length(x)) x[1L] else NA_real_ }
  # The line is 1.5 x the floor's fast mode (its minimum): its median may be in either mode.
  flmin <- r[grepl("^round trip", r$measure) & r$system == "raw unix socket, 2 processes (floor)", "min"]
  bars(rt, "Round trip (us); goal: 1.5 x floor (fast mode)", "microseconds", log = "x",
       goal = 1.5 * if (length(flmin)) flmin[1L] else NA_real_)
  bars(r[grepl("^10k", r$measure), ], "10,000 tasks, 2 daemons; goals 5x, 10x PSOCK", "tasks per second", log = "x",
       goal = c(5, 10) * med("^10k", "PSOCK clusterApplyLB"))
  bars(r[grepl("1 MiB", r$measure), ], "1 MiB in, a double out; goal: 2 x PSOCK", "MiB per second",
       goal = 2 * med("1 MiB", "PSOCK clusterApplyLB"))
  bars(r[grepl("^time until", r$measure), ], "Time until 4 daemons connected; goal: PSOCK", "milliseconds",
       goal = med("^time until", "PSOCK makePSOCKcluster(4)"))
  bars(r[grepl("^host memory", r$measure), ], "Host memory per unresolved mirai; goal: 1 KiB", "bytes", goal = 1024)
} else for (k in 1:5) plot.new()
if (!is.null(sc) && nrow(sc)) {
  par(mar = c(4, 5, 3, 5))
  plot(sc$daemons, sc$run_s, type = "b", pch = 19, col = "#2b6cb0", ylim = c(0, max(sc$run_s) * 1.2),
       xlab = "daemons on one host", ylab = "seconds", main = sprintf("Scale: %s tasks, Rust echo daemons", format(sc$tasks[1], big.mark = ",")))
  par(new = TRUE)
  mem <- sc$host_peak_growth_mb + if (is.null(sc$host_bytes_per_daemon)) 0 else sc$host_bytes_per_daemon * sc$daemons / 1e6
  plot(sc$daemons, mem, type = "b", pch = 17, col = "#c05621", axes = FALSE, xlab = "", ylab = "",
       ylim = c(0, max(mem) * 1.2))
  axis(4); mtext("host memory: daemons + tasks (MB)", side = 4, line = 3, las = 0)
  legend("topleft", c("run time", "host memory"), col = c("#2b6cb0", "#c05621"), pch = c(19, 17), bty = "n")
} else plot.new()
mtext(machine, side = 1, outer = TRUE, line = 0.3, cex = 0.75)
par(op)
invisible(dev.off())
cat(sprintf("wrote %s, %s and %s\n", path("summary.csv"), path("summary.md"), path("bench.png")))
