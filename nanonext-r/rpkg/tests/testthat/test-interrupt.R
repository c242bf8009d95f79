# Interrupts (spec sections 2.2, 2.5, 3.1): the `_` waits give way to a user interrupt within
# 400 ms, interrupt-mode Aios interrupt running R code on success only, and stop_aio() drops a
# pending interrupt. Run in a child Rscript: interrupts are process-wide.

skip_on_os("windows")

child <- '
library(nanonext)
timer <- nanonext:::.timer_aio
intr <- function(expr) tryCatch({ expr; "finished" }, interrupt = function(e) "interrupted")
out <- list()
# An interrupt-mode Aio interrupts Sys.sleep() when it completes.
t0 <- mclock()
out$sleep <- intr({ r <- timer(200, 1, interrupt = TRUE); Sys.sleep(3) })
out$sleep_ms <- mclock() - t0
out$sleep_value <- r$data
# ... but not when it fails or is stopped.
out$error <- intr({ timer(100, error = 5L, interrupt = TRUE); Sys.sleep(0.5) })
out$stopped <- intr({ s <- timer(200, 1, interrupt = TRUE); stop_aio(s); Sys.sleep(0.5) })
# The interruptible waits give way; the plain ones finish.
long <- timer(10000)
x <- cv()
t0 <- mclock()
out$call_aio_ <- intr({ timer(200, 1, interrupt = TRUE); call_aio_(long) })
out$collect_aio_ <- intr({ timer(200, 1, interrupt = TRUE); collect_aio_(list(long)) })
out$wait_ <- intr({ timer(200, 1, interrupt = TRUE); wait_(x) })
out$until_ <- intr({ timer(200, 1, interrupt = TRUE); until_(x, 10000) })
out$race_aio <- intr({ timer(200, 1, interrupt = TRUE); race_aio(list(long), x) })
out$waits_ms <- mclock() - t0
# call_aio() is not interruptible: it finishes, and the interrupt is acted on later.
out$call_aio <- intr({ timer(100, 1, interrupt = TRUE); out$call_aio_value <- call_aio(timer(400, 2))$data; Sys.sleep(2) })
# stop_aio() clears an interrupt that is pending but not yet acted on.
out$cleared <- intr({ r <- timer(50, 1, interrupt = TRUE); msleep(200); stop_aio(r); Sys.sleep(0.3) })
stop_aio(long)
saveRDS(out, commandArgs(TRUE)[1L])
'

test_that("interrupts reach R as the spec says", {
  f <- tempfile(fileext = ".R")
  o <- tempfile(fileext = ".rds")
  on.exit(unlink(c(f, o)))
  writeLines(child, f)
  status <- system2(file.path(R.home("bin"), "Rscript"), c(shQuote(f), shQuote(o)), stdout = FALSE,
                    stderr = FALSE, env = paste0("R_LIBS=", paste(.libPaths(), collapse = ":")), timeout = 60)
  expect_identical(status, 0L)
  out <- readRDS(o)
  expect_identical(out$sleep, "interrupted")
  expect_lt(out$sleep_ms, 2500)
  expect_identical(out$sleep_value, 1)
  expect_identical(out$error, "finished")
  expect_identical(out$stopped, "finished")
  for (w in c("call_aio_", "collect_aio_", "wait_", "until_", "race_aio"))
    expect_identical(out[[w]], "interrupted", info = w)
  expect_lt(out$waits_ms, 5 * 1000)
  expect_identical(out$call_aio, "interrupted")
  expect_identical(out$call_aio_value, 2)
  expect_identical(out$cleared, "finished")
})
