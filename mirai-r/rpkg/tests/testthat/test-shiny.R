# A real Shiny app whose render function awaits a mirai (shiny-app/app.R), served by a
# background Rscript on 127.0.0.1 and driven by headless Chromium through the DevTools protocol
# (shiny-driver.R). The page shiny-app/www/pair.html holds two sessions side by side; each
# session's output waits for a 2-second task, and both tasks must run at once on the app's two
# daemons. The screenshot and timings are kept under the test output directory.

source(test_path("output-dir.R"), local = TRUE)
source(test_path("shiny-driver.R"), local = TRUE)

# Skips (outside CI) or fails (in CI, where scripts/deps.sh installs them) when what the test
# needs is missing.
require_or_skip <- function(ok, what) {
  if (ok) return(invisible())
  msg <- sprintf("%s not available (scripts/deps.sh installs it: apt-get install %s)", what,
                 if (what == "chromium") "chromium" else sprintf("r-cran-%s", tolower(what)))
  if (identical(Sys.getenv("CI"), "true")) fail(msg) else skip(msg)
}

# TRUE when `u` answers an HTTP GET.
http_ok <- function(u) {
  con <- url(u)
  on.exit(close(con))
  !inherits(tryCatch(suppressWarnings(readLines(con, warn = FALSE)), error = identity), "error")
}

test_that("a Shiny app awaiting mirai serves two sessions concurrently in headless Chromium", {
  for (p in c("shiny", "promises", "later", "jsonlite", "httpuv"))
    require_or_skip(requireNamespace(p, quietly = TRUE), p)
  chromium <- chromium_path()
  require_or_skip(nzchar(chromium), "chromium")

  work <- tempfile("shiny-test-")
  dir.create(work)
  log_file <- file.path(work, "tasks.log")
  pid_file <- file.path(work, "app.pid")
  port <- httpuv::randomPort(host = "127.0.0.1")
  base <- sprintf("http://127.0.0.1:%d", port)

  # The app: a background Rscript that stops by itself after 180 s at the latest.
  system2(rscript, c(shQuote(normalizePath(test_path("shiny-app", "run-app.R"))), port, shQuote(pid_file), 180),
          env = sprintf("MIRAI_SHINY_LOG=%s", shQuote(log_file)),
          stdout = file.path(work, "app.out"), stderr = file.path(work, "app.err"), wait = FALSE)
  app_pid <- NULL
  browser <- NULL
  on.exit({
    if (!is.null(browser)) cdp_stop(browser)
    if (!is.null(app_pid) && pid_alive(app_pid)) {
      tools::pskill(app_pid, tools::SIGINT)
      if (!wait_until(function() !pid_alive(app_pid), 15)) tools::pskill(app_pid, tools::SIGKILL)
    }
  }, add = TRUE)
  up <- wait_until(function() {
    if (is.null(app_pid) && file.exists(pid_file)) app_pid <<- as.integer(readLines(pid_file, warn = FALSE)[1L])
    !is.null(app_pid) && http_ok(base)
  }, 60)
  expect_true(up, info = paste(readLines(file.path(work, "app.err"), warn = FALSE), collapse = "\n"))
  if (!up) return()

  browser <- cdp_start(chromium, file.path(work, "chromium"), window = "1200,400")
  session <- cdp_open(browser, paste0(base, "/pair.html"))
  done <- wait_until(function() identical(cdp_eval(browser, session, "document.title"), "done"), 60)
  text <- cdp_eval(browser, session, "document.getElementById('summary').textContent")
  out <- test_output_dir("shiny")
  shot <- cdp_screenshot(browser, session, file.path(out, "two-sessions.png"))
  cdp_stop(browser)
  browser <- NULL
  expect_true(done, info = text)

  # The page shows both sessions' results.
  lines <- strsplit(text, "\n", fixed = TRUE)[[1L]]
  expect_match(lines[1L], "^RESULT-A: session A: slow task done by daemon [0-9]+ after 2\\.[0-9] s$")
  expect_match(lines[2L], "^RESULT-B: session B: slow task done by daemon [0-9]+ after 2\\.[0-9] s$")
  png <- readBin(shot, "raw", 8L)
  expect_identical(png, as.raw(c(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)))
  expect_gt(file.size(shot), 5000)

  # What the app recorded when each promise settled (on its main thread): session, daemon pid,
  # task start and end (daemon clock = this machine's), pid of the process that ran the callback.
  tasks <- utils::read.table(log_file, sep = "\t", col.names = c("session", "daemon", "start", "end", "host"))
  expect_setequal(tasks$session, c("A", "B"))
  expect_identical(nrow(tasks), 2L)
  expect_true(tasks$daemon[1L] != tasks$daemon[2L])
  expect_identical(tasks$host, rep(app_pid, 2L))
  expect_false(any(tasks$daemon == app_pid))
  # The page names the daemons that ran the tasks.
  for (i in 1:2) expect_true(grepl(sprintf("session %s: slow task done by daemon %d ", tasks$session[i], tasks$daemon[i]), text, fixed = TRUE))
  # Concurrency: each task started before the other ended, and the two 2-second tasks took
  # well under the 4 s they would take one after the other.
  expect_true(tasks$start[1L] < tasks$end[2L] && tasks$start[2L] < tasks$end[1L])
  span <- max(tasks$end) - min(tasks$start)
  expect_lt(span, 4)
  shown <- as.numeric(sub("^both shown after ([0-9]+) ms$", "\\1", lines[3L])) / 1000
  report <- sprintf(paste0(
    "two sessions, one 2 s mirai each: tasks ran from %.3f s to %.3f s after the first start ",
    "(span %.2f s, serial would be >= 4 s); the page showed both results %.2f s after it loaded; ",
    "screenshot %s"), 0, span, span, shown, normalizePath(shot))
  writeLines(c(report, "", text), file.path(out, "timing.txt"))
  cat("\n", report, "\n", sep = "", file = stderr())

  # The app stops cleanly on SIGINT and its daemons go with it.
  tools::pskill(app_pid, tools::SIGINT)
  expect_true(wait_until(function() !pid_alive(app_pid), 30))
  expect_true(wait_until(function() !any(vapply(tasks$daemon, pid_alive, logical(1L))), 30))
})
