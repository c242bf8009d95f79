# Chunked mirai_map() (mirai-r/src/chunk.rs, map.R): large maps travel in fewer payloads, yet every
# element is a task of its own, with its own mirai, value, error, cancellation and counters, and
# FIFO order holds.

daemons(0)
daemons(2)

chunk_sizes <- function(n, d) {
  prof <- new.env()
  prof$sync <- FALSE
  prof$n <- d
  prof$host <- mirai:::..[["default"]]$host
  mirai:::.chunk_sizes(prof, n)
}

test_that("chunk sizes: none for small maps, guided (shrinking to single elements) for large ones", {
  expect_null(chunk_sizes(31L, 2L))
  s <- chunk_sizes(10000L, 2L)
  expect_identical(sum(s), 10000L)
  expect_true(all(s >= 1L & s <= mirai:::.chunk_max))
  expect_false(is.unsorted(rev(s)))
  # the tail is sent element by element, so that no daemon idles while another holds work
  expect_true(all(tail(s, 16L) == 1L))
  expect_identical(sum(chunk_sizes(32L, 2L)), 32L)
})

test_that("a chunked map gives every element its own mirai and value, in order, names kept", {
  n <- 1000L
  x <- mirai_map(setNames(seq_len(n), paste0("e", seq_len(n))), function(i) i * 2L)
  expect_s3_class(x, "mirai_map")
  expect_length(x, n)
  expect_true(all(vapply(x, is_mirai, logical(1))))
  ids <- vapply(x, function(m) attr(m, "id"), integer(1))
  expect_false(is.unsorted(ids, strictly = TRUE))
  out <- x[]
  expect_identical(out, as.list(setNames(seq_len(n) * 2L, paste0("e", seq_len(n)))))
  expect_identical(x[[500]][], 1000L)
  expect_identical(x[[500]]$data, 1000L)
  expect_identical(x[[500]]$value, 1000L)
  expect_identical(capture.output(print(x)), sprintf("< mirai map [%d/%d] >", n, n))
  expect_identical(mirai_map(seq_len(n), function(i) i)[.flat], seq_len(n))
  df <- data.frame(a = seq_len(200), b = seq_len(200) * 10)
  expect_identical(mirai_map(df, function(a, b) a + b)[.flat], seq_len(200) * 11)
})

test_that("errors stay per element: each failing element is its own miraiError", {
  f <- function(i) if (i %% 100L == 0L) stop("bad ", i) else i
  out <- mirai_map(seq_len(1000L), f)[]
  bad <- which(vapply(out, is_mirai_error, logical(1)))
  expect_identical(bad, seq(100L, 1000L, by = 100L))
  expect_identical(out[[300]]$message, "bad 300")
  expect_identical(unlist(out[-bad]), setdiff(seq_len(1000L), bad))
  with_cli(FALSE, {
    e <- tryCatch(mirai_map(seq_len(1000L), f)[.stop], error = identity)
    expect_identical(conditionMessage(e), "In index 100:\nbad 100")
  })
})

test_that("stopping one element resolves it alone; stopping the map cancels every chunk", {
  x <- mirai_map(seq_len(400L), function(i) { Sys.sleep(0.002); i })
  expect_true(stop_mirai(x[[399]]))
  expect_false(stop_mirai(x[[399]]))
  expect_identical(unclass(x[[399]][]), 20L)
  out <- x[]
  expect_identical(unlist(out[-399]), seq_len(400L)[-399])
  # the whole map: unresolved elements resolve to 20 at once and the daemons are freed
  y <- mirai_map(seq_len(200L), function(i) { Sys.sleep(0.5); i })
  r <- stop_mirai(y)
  expect_length(r, 200L)
  expect_true(all(vapply(y, function(m) !unresolved(m), logical(1))))
  expect_true(all(vapply(y[], function(v) identical(unclass(v), 20L), logical(1))))
  t0 <- proc.time()[["elapsed"]]
  expect_identical(mirai(1L)[], 1L)
  expect_lt(proc.time()[["elapsed"]] - t0, 5) # not stuck behind 100 s of cancelled work
  expect_true(wait_until(function() status()$mirai[["executing"]] == 0L))
})

test_that("FIFO: a map's elements start in order, after earlier tasks and before later ones", {
  dir <- tempfile("fifo")
  dir.create(dir)
  stamp <- function(tag) { writeLines(sprintf("%.6f %d", as.numeric(Sys.time()), Sys.getpid()), file.path(dir, tag)); tag }
  before <- mirai(stamp("before"), stamp = stamp, dir = dir)
  x <- mirai_map(sprintf("m%04d", seq_len(300L)), function(tag) { stamp(tag); Sys.sleep(0.001); tag }, stamp = stamp, dir = dir)
  after <- mirai(stamp("after"), stamp = stamp, dir = dir)
  expect_identical(after[], "after")
  invisible(x[])
  tags <- c("before", sprintf("m%04d", seq_len(300L)), "after")
  rec <- vapply(tags, function(f) as.numeric(strsplit(readLines(file.path(dir, f)), " ")[[1L]]), c(0, 0))
  unlink(dir, recursive = TRUE)
  t <- rec[1L, ]
  pid <- rec[2L, ]
  # the map travels in chunks
  expect_identical(sum(chunk_sizes(300L, 2L)), 300L)
  # Order only, no time margins: a loaded machine may stall either daemon at any point, so
  # starts on different daemons are not ordered. Every element is a task of its own, and the
  # queue is served from its head in order ("before", the elements, "after"), in batches of
  # consecutive tasks that each daemon runs one by one: so each daemon starts what it is given
  # in queue order, "before" ahead of its elements and "after" behind them.
  expect_length(unique(pid), 2L)
  for (p in unique(pid)) expect_false(is.unsorted(t[pid == p], strictly = TRUE))
})

test_that("every element sees a clean daemon: globals, search path and options are restored between elements", {
  out <- mirai_map(seq_len(500L), function(i) {
    leaked <- exists("leak", envir = .GlobalEnv)
    assign("leak", i, envir = .GlobalEnv)
    opt <- getOption("mirai.test.opt")
    options(mirai.test.opt = i)
    c(leaked, !is.null(opt))
  }, .args = list())[]
  expect_false(any(unlist(out)))
  # globals passed in `...` are there for every element
  expect_identical(mirai_map(seq_len(300L), function(i) i + k, k = 1L)[.flat], seq_len(300L) + 1L)
})

test_that("counters count elements, not chunks", {
  base <- status()$mirai
  invisible(mirai_map(seq_len(640L), function(i) i)[])
  now <- status()$mirai
  expect_identical(now[["completed"]] - base[["completed"]], 640L)
  expect_identical(now[["awaiting"]], 0L)
  expect_identical(now[["executing"]], 0L)
})

test_that("race_mirai, call_mirai, unresolved and promises work per element", {
  x <- mirai_map(seq_len(300L), function(i) { if (i == 1L) Sys.sleep(0.3); i })
  expect_true(unresolved(x))
  i <- race_mirai(x)
  expect_true(i >= 1L && i <= 300L)
  call_mirai(x)
  expect_false(unresolved(x))
  expect_identical(x[[1]]$data, 1L)
  skip_if_not_installed("promises")
  skip_if_not_installed("later")
  got <- new.env()
  y <- mirai_map(seq_len(100L), function(i) i, .promise = function(v) assign(sprintf("v%d", v), v, envir = got))
  invisible(y[])
  expect_true(wait_until(function() { later::run_now(0.05); length(ls(got)) == 100L }))
})

test_that("a seeded profile gives the same per-element streams chunked or not", {
  daemons(2, seed = 42L, .compute = "seeded")
  withr::defer(daemons(0, .compute = "seeded"))
  a <- mirai_map(seq_len(400L), function(i) runif(1), .compute = "seeded")[.flat]
  daemons(sync = TRUE, seed = 42L, .compute = "seeded_sync")
  withr::defer(daemons(0, .compute = "seeded_sync"))
  b <- mirai_map(seq_len(400L), function(i) runif(1), .compute = "seeded_sync")[.flat]
  expect_identical(a, b)
})

daemons(0)
