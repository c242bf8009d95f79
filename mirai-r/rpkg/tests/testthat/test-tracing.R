# OpenTelemetry from R: a workload in a fresh R process with OTEL_* variables pointing at a small
# OTLP/HTTP receiver (otlp-sink.py); the spans that arrive must form the documented tree: the
# profile's name on `daemons set`, a `mirai_map` span parenting its elements' `mirai` spans, and
# each `daemon eval` (sent by the daemons, other processes) a child of its `mirai` span, with an
# error status for the task that failed.

skip_if(!nzchar(Sys.which("python3")), "python3 is needed for the OTLP test receiver")

test_that("spans from R: profile name, mirai_map parenting its elements, daemon evals under their mirai", {
  dir <- tempfile("otlp-")
  dir.create(dir)
  port_file <- file.path(dir, "port")
  out <- file.path(dir, "spans.jsonl")
  sink <- test_path("otlp-sink.py")
  system2("python3", c(shQuote(sink), shQuote(port_file), shQuote(out)), wait = FALSE,
          stdout = file.path(dir, "sink.out"), stderr = file.path(dir, "sink.err"))
  t0 <- Sys.time()
  while (!file.exists(port_file) && difftime(Sys.time(), t0, units = "secs") < 20) Sys.sleep(0.05)
  expect_true(file.exists(port_file))
  port <- readLines(port_file, warn = FALSE)
  on.exit({
    pid <- system2("sh", c("-c", shQuote(sprintf("ps -eo pid,args | grep '[o]tlp-sink.py %s' | awk '{print $1}'", port_file))), stdout = TRUE)
    for (p in as.integer(pid)) tools::pskill(p, tools::SIGTERM)
    unlink(dir, recursive = TRUE)
  })
  script <- file.path(dir, "work.R")
  writeLines(c(
    "library(mirai)",
    "daemons(2, .compute = 'traced')",
    "r <- mirai_map(1:3, function(x) x * 2L, .compute = 'traced')[.flat]",
    "stopifnot(identical(r, c(2L, 4L, 6L)))",
    "m <- mirai(stop('boom'), .compute = 'traced')",
    "stopifnot(is_mirai_error(m[]))",
    "daemons(0, .compute = 'traced')"
  ), script)
  env <- c(sprintf("OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:%s", port),
           "OTEL_SERVICE_NAME=mirai-r-test", "OTEL_BSP_SCHEDULE_DELAY=50")
  status <- system2(rscript, shQuote(script), env = env, stdout = file.path(dir, "work.out"), stderr = file.path(dir, "work.err"))
  expect_identical(status, 0L)
  read_spans <- function() {
    if (!file.exists(out)) return(list())
    lapply(readLines(out, warn = FALSE), jsonlite::fromJSON, simplifyVector = FALSE)
  }
  # The daemons export their spans as their loops end (after daemons(0)): wait for all 4.
  t0 <- Sys.time()
  repeat {
    spans <- read_spans()
    names <- vapply(spans, `[[`, "", "name")
    if (sum(names == "daemon eval") >= 4L || difftime(Sys.time(), t0, units = "secs") > 30) break
    Sys.sleep(0.1)
  }
  set <- spans[startsWith(names, "daemons set ")]
  expect_length(set, 1L)
  expect_identical(set[[1L]]$attributes[["mirai.compute"]], "traced")
  maps <- spans[names == "mirai_map"]
  expect_length(maps, 1L)
  map <- maps[[1L]]
  expect_identical(map$attributes[["mirai.tasks"]], 3L)
  mirai_spans <- spans[names == "mirai"]
  expect_length(mirai_spans, 4L)
  under_map <- Filter(function(s) identical(s$parent_span_id, map$span_id), mirai_spans)
  expect_length(under_map, 3L)
  for (s in under_map) expect_identical(s$trace_id, map$trace_id)
  evals <- spans[names == "daemon eval"]
  expect_length(evals, 4L)
  ids <- vapply(mirai_spans, `[[`, "", "span_id")
  parents <- vapply(evals, `[[`, "", "parent_span_id")
  expect_setequal(parents, ids)
  failed <- mirai_spans[[match(setdiff(ids, vapply(under_map, `[[`, "", "span_id")), ids)]]
  failed_eval <- evals[[match(failed$span_id, parents)]]
  expect_identical(failed_eval$status_code, 2L)
  expect_identical(failed$status_code, 2L)
})
