test_that("two R processes talk req/rep over ipc", {
  url <- sprintf("ipc://%s", tempfile("nx-proc-", fileext = ".sock"))
  rscript <- file.path(R.home("bin"), "Rscript")
  code <- sprintf(paste(
    "library(nanonext); s <- socket('rep', listen = '%s'); ctx <- context(s)",
    "for (i in 1:2) reply(ctx, function(x) if (is.numeric(x)) x + 1 else x, timeout = 10000)",
    "reply(ctx, rev, recv_mode = 'raw', send_mode = 'raw', timeout = 10000)",
    "msleep(200); close(s)", sep = "; "), url)
  out <- tempfile()
  system2(rscript, c("-e", shQuote(code)), stdout = out, stderr = out, wait = FALSE,
          env = paste0("R_LIBS=", paste(.libPaths(), collapse = ":")))
  on.exit(unlink(out))
  req <- socket("req")
  # The replier needs a moment to start: dial in the background.
  dial(req, url)
  ctx <- context(req)
  r <- request(ctx, 41, timeout = 10000)
  expect_identical(collect_aio(r), 42)
  r <- request(ctx, list(a = 1:3), timeout = 10000)
  expect_identical(call_aio(r)$data, list(a = 1:3))
  expect_true(pipe_id(r) > 0L)
  r <- request(ctx, as.raw(1:4), send_mode = "raw", recv_mode = "raw", timeout = 10000)
  expect_identical(r[], as.raw(c(4, 3, 2, 1)))
  close(req)
})
