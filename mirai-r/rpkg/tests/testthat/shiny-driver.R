# Drives headless Chromium through the DevTools protocol over a pipe (--remote-debugging-pipe:
# the browser reads NUL-terminated JSON commands on fd 3 and writes replies and events on fd 4),
# here two FIFOs opened read-write by the shell so that no open() ever blocks. Needs jsonlite.
# Used by test-shiny.R; every wait has a deadline so that a broken browser fails, not hangs.

chromium_path <- function() {
  for (p in c("chromium", "chromium-browser", "google-chrome")) {
    path <- Sys.which(p)
    if (nzchar(path)) return(unname(path))
  }
  ""
}

cdp_start <- function(chromium, dir, window = "1200,560", timeout = 30) {
  dir.create(dir, recursive = TRUE, showWarnings = FALSE)
  fin <- file.path(dir, "cdp-in")
  fout <- file.path(dir, "cdp-out")
  pid_file <- file.path(dir, "chromium.pid")
  unlink(c(fin, fout, pid_file))
  stopifnot(system2("mkfifo", c(fin, fout)) == 0L)
  flags <- c("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             paste0("--user-data-dir=", file.path(dir, "profile")), paste0("--window-size=", window),
             "--remote-debugging-pipe", "--hide-scrollbars", "about:blank")
  script <- sprintf("echo $$ > %s; exec %s %s 3<>%s 4<>%s", shQuote(pid_file), shQuote(chromium),
                    paste(shQuote(flags), collapse = " "), shQuote(fin), shQuote(fout))
  system2("/bin/sh", c("-c", shQuote(script)), stdout = file.path(dir, "chromium.out"),
          stderr = file.path(dir, "chromium.err"), wait = FALSE)
  b <- new.env()
  b$id <- 0L
  b$buf <- raw()
  b$events <- list()
  b$dir <- dir
  t0 <- Sys.time()
  # The shell opens both FIFOs before exec; until then a non-blocking open for writing fails.
  repeat {
    b$out <- tryCatch(suppressWarnings(fifo(fout, "rb", blocking = FALSE)), error = function(e) NULL)
    b$inp <- if (!is.null(b$out)) tryCatch(suppressWarnings(fifo(fin, "wb", blocking = FALSE)), error = function(e) NULL)
    if (!is.null(b$inp) && file.exists(pid_file) && length(readLines(pid_file, warn = FALSE))) break
    if (!is.null(b$out)) close(b$out)
    if (difftime(Sys.time(), t0, units = "secs") > timeout) stop("chromium did not start")
    Sys.sleep(0.05)
  }
  b$pid <- as.integer(readLines(pid_file, warn = FALSE)[1L])
  b
}

# Sends one command and returns its `result` (an error reply is an R error). Events that arrive
# meanwhile are kept in b$events.
cdp_call <- function(b, method, params = NULL, session = NULL, timeout = 30) {
  b$id <- b$id + 1L
  id <- b$id
  msg <- list(id = id, method = method, params = if (length(params)) params else structure(list(), names = character()))
  if (!is.null(session)) msg$sessionId <- session
  writeBin(c(charToRaw(as.character(jsonlite::toJSON(msg, auto_unbox = TRUE))), as.raw(0L)), b$inp)
  flush(b$inp)
  t0 <- Sys.time()
  repeat {
    for (m in cdp_read(b)) {
      if (identical(m$id, id)) {
        if (!is.null(m$error)) stop(sprintf("DevTools %s: %s", method, m$error$message))
        return(m$result)
      }
      b$events[[length(b$events) + 1L]] <- m
    }
    if (difftime(Sys.time(), t0, units = "secs") > timeout) stop(sprintf("DevTools %s: no reply in %d s", method, timeout))
    if (!pid_alive(b$pid)) stop("chromium exited")
    Sys.sleep(0.02)
  }
}

# The complete messages received so far.
cdp_read <- function(b) {
  repeat {
    # With no data pending, a non-blocking read fails (EAGAIN): that is "nothing yet".
    chunk <- tryCatch(readBin(b$out, "raw", 1048576L), error = function(e) raw())
    if (!length(chunk)) break
    b$buf <- c(b$buf, chunk)
  }
  out <- list()
  while (length(z <- which(b$buf == as.raw(0L)))) {
    out[[length(out) + 1L]] <- jsonlite::fromJSON(rawToChar(b$buf[seq_len(z[1L] - 1L)]), simplifyVector = FALSE)
    b$buf <- b$buf[-seq_len(z[1L])]
  }
  out
}

# Opens `url` in a new page and returns the page's session id.
cdp_open <- function(b, url) {
  target <- cdp_call(b, "Target.createTarget", list(url = "about:blank"))$targetId
  session <- cdp_call(b, "Target.attachToTarget", list(targetId = target, flatten = TRUE))$sessionId
  cdp_call(b, "Page.enable", session = session)
  cdp_call(b, "Page.navigate", list(url = url), session = session)
  session
}

# Evaluates JavaScript `expr` in the page and returns its value.
cdp_eval <- function(b, session, expr) {
  r <- cdp_call(b, "Runtime.evaluate", list(expression = expr, returnByValue = TRUE), session = session)
  r$result$value
}

cdp_screenshot <- function(b, session, file) {
  data <- cdp_call(b, "Page.captureScreenshot", list(format = "png"), session = session)$data
  writeBin(jsonlite::base64_dec(data), file)
  file
}

cdp_stop <- function(b) {
  try(cdp_call(b, "Browser.close", timeout = 5), silent = TRUE)
  if (!wait_until(function() !pid_alive(b$pid), 10)) tools::pskill(b$pid, tools::SIGKILL)
  for (con in list(b$inp, b$out)) try(close(con), silent = TRUE)
  invisible()
}
