# Bad input to every tier A export (spec sections 1-4): wrong types, wrong lengths, NA, NULL,
# empty vectors, huge values. Each call must give the spec's error (or a clear one) or a
# documented value, and never crash the session. The calls run in a child Rscript, one case
# after another, writing each case's name to a progress file first, so that a crash shows up
# as a failed test naming the case it happened in.

skip_on_os("windows") # POSIX shell (ulimit)

rscript <- file.path(R.home("bin"), "Rscript")

# A case: `expr` must signal an error containing `error` (fixed), or return a value for which
# `check` (an expression in `.value`) is TRUE.
case <- function(expr, error = NULL, check = NULL)
  list(expr = substitute(expr), error = error, check = substitute(check))

child_code <- '
dir <- commandArgs(TRUE)[1L]
cases <- readRDS(file.path(dir, "in.rds"))
suppressPackageStartupMessages(library(nanonext))
prog <- file(file.path(dir, "progress"), "w")
out <- list()
for (nm in names(cases)) {
  writeLines(nm, prog); flush(prog)
  cs <- cases[[nm]]
  env <- new.env(parent = globalenv())
  r <- suppressWarnings(tryCatch(list(ok = TRUE, value = eval(cs$expr, env)),
                                 error = function(e) list(ok = FALSE, message = conditionMessage(e))))
  if (r$ok && !is.null(cs$check))
    r$check <- tryCatch(isTRUE(eval(cs$check, list(.value = r$value), env)), error = function(e) FALSE)
  r$value <- NULL
  out[[nm]] <- r
}
writeLines("<done>", prog)
close(prog)
saveRDS(out, file.path(dir, "out.rds"))
'

run_cases <- function(cases, timeout = 120) {
  dir <- tempfile("nx-badinput-")
  dir.create(dir)
  on.exit(unlink(dir, recursive = TRUE))
  saveRDS(cases, file.path(dir, "in.rds"))
  writeLines(child_code, file.path(dir, "child.R"))
  sh <- sprintf("ulimit -v 8000000; R_LIBS=%s exec %s %s %s", shQuote(paste(.libPaths(), collapse = ":")),
                shQuote(rscript), shQuote(file.path(dir, "child.R")), shQuote(dir))
  status <- suppressWarnings(system2("/bin/sh", c("-c", shQuote(sh)), stdout = file.path(dir, "stdout"),
                                     stderr = file.path(dir, "stderr"), timeout = timeout))
  prog <- if (file.exists(file.path(dir, "progress"))) readLines(file.path(dir, "progress")) else "<not started>"
  last <- prog[length(prog)]
  err <- paste(utils::tail(readLines(file.path(dir, "stderr"), warn = FALSE), 20L), collapse = "\n")
  expect_identical(status, 0L, info = sprintf("child died during case '%s':\n%s", last, err))
  expect_identical(last, "<done>", info = err)
  res <- if (file.exists(file.path(dir, "out.rds"))) readRDS(file.path(dir, "out.rds")) else list()
  for (nm in names(cases)) {
    cs <- cases[[nm]]
    r <- res[[nm]]
    if (is.null(r)) { fail(sprintf("case '%s' did not run", nm)); next }
    got <- if (r$ok) "a value" else sprintf("error '%s'", r$message)
    if (!is.null(cs$error)) {
      expect(!r$ok && grepl(cs$error, r$message, fixed = TRUE), sprintf("%s: expected error '%s', got %s", nm, cs$error, got))
    } else if (!is.null(cs$check)) {
      expect(r$ok && isTRUE(r$check), sprintf("%s: expected a value passing `%s`, got %s", nm, deparse(cs$check)[1L], got))
    } else {
      expect(TRUE, nm)
    }
  }
}

bad_cv <- "`cv` is not a valid Condition Variable"
bad_n <- "`n` must be an integer value between 1 and 1024"
not_aio <- "object is not an Aio or list of Aios"
invalid <- "3 | Invalid argument"

test_that("cv functions: non-cvs, NA, NULL, huge and odd msec", {
  run_cases(list(
    wait_chr = case(wait("a"), bad_cv),
    wait_null = case(wait(NULL), bad_cv),
    wait__na = case(wait_(NA), bad_cv),
    wait_ptr = case(wait(nanonext:::.timer_aio(1)), bad_cv),
    until_chr = case(until("a", 1), bad_cv),
    until__list = case(until_(list(), 1), bad_cv),
    value_num = case(cv_value(1), bad_cv),
    value_env = case(cv_value(new.env()), bad_cv),
    reset_null = case(cv_reset(NULL), bad_cv),
    signal_na = case(cv_signal(NA), bad_cv),
    fwd_lhs = case("a" %~>% cv(), bad_cv),
    fwd_rhs = case(cv() %~>% 1, "`cv2` is not a valid Condition Variable"),
    fwd_rhs_null = case(cv() %~>% NULL, "`cv2` is not a valid Condition Variable"),
    fwd_tls = case(cv() %~>% tls_config(), "`cv2` is not a valid Condition Variable"),
    msec_na = case(until(cv(), NA), check = identical(.value, FALSE)),
    msec_na_int = case(until(cv(), NA_integer_), check = identical(.value, FALSE)),
    msec_nan = case(until_(cv(), NaN), check = identical(.value, FALSE)),
    msec_neg_inf = case(until_(cv(), -Inf), check = identical(.value, FALSE)),
    msec_empty = case(until(cv(), integer(0)), check = identical(.value, FALSE)),
    msec_list = case(until(cv(), list(1)), check = identical(.value, FALSE)),
    msec_huge_signalled = case({ x <- cv(); cv_signal(x); until(x, 1e300) }, check = identical(.value, TRUE)),
    msec_inf_signalled = case({ x <- cv(); cv_signal(x); until_(x, Inf) }, check = identical(.value, TRUE)),
    msec_vec = case(until(cv(), c(1, 1e9)), check = identical(.value, FALSE)),
    cv_args = case(cv(1), "unused argument")
  ))
})

test_that("Aio queries: non-Aios, foreign environments, odd lists", {
  run_cases(list(
    unres_null = case(unresolved(NULL), check = identical(.value, FALSE)),
    unres_env = case(unresolved(new.env()), check = identical(.value, FALSE)),
    unres_aio_chr = case(unresolved(list2env(list(aio = "x", data = 1))), check = identical(.value, FALSE)),
    unres_nested = case(unresolved(list(list(nanonext:::.unresolvedValue))), check = identical(.value, FALSE)),
    unres2_null = case(.unresolved(NULL), check = identical(.value, FALSE)),
    unres2_env = case(.unresolved(globalenv()), check = identical(.value, FALSE)),
    call_null = case(call_aio(NULL), check = is.null(.value)),
    call_env = case(call_aio_(globalenv()), check = identical(.value, globalenv())),
    call_ptr = case(call_aio(list(tls_config(), 1:3, NULL)), check = length(.value) == 3L),
    collect_null = case(collect_aio(NULL), not_aio),
    collect_chr = case(collect_aio_("a"), not_aio),
    collect_global = case(collect_aio(globalenv()), not_aio),
    collect_nested = case(collect_aio(list(list(nanonext:::.timer_aio(1)))), not_aio),
    collect_fake = case(collect_aio(list2env(list(aio = 1L))), not_aio),
    collect_value = case(collect_aio(list2env(list(value = 3))), check = identical(.value, 3)),
    stop_null = case(stop_aio(NULL), check = is.null(.value)),
    stop_env = case(stop_aio(list(new.env(), 1, "a")), check = is.null(.value)),
    race_null_cv = case(race_aio(list(nanonext:::.timer_aio(5000)), "cv"), check = identical(.value, 0L)),
    race_na = case(race_aio(NA, NA), check = identical(.value, 0L)),
    race_env_only = case(race_aio(list(new.env()), NULL), check = identical(.value, 1L)),
    race_missing = case(race_aio(list()), "argument \"cv\" is missing"),
    subset_aio = case(nanonext:::.timer_aio(1)[1, 2], check = is.null(.value)),
    pipe_id_chr = case(pipe_id("a"), "subscript out of bounds"),
    keep_null = case(.keep(NULL, NULL), check = is.null(.value)),
    keep_ctx_chr = case(.keep(nanonext:::.timer_aio(1), "x"), check = is.null(.value)),
    keep_send = case(.keep(nanonext:::.timer_aio(1, send = TRUE), new.env()), check = is.null(.value)),
    keep_fake = case(.keep(list2env(list(aio = 1)), new.env()), check = is.null(.value)),
    timer_neg = case(nanonext:::.timer_aio(-1, 1)[], check = identical(.value, 1)),
    timer_bad = case(nanonext:::.timer_aio("a"), "`ms` must be a single number")
  ))
})

test_that("utilities: wrong types, NA, NULL, huge values", {
  run_cases(list(
    nng_error_null = case(nng_error(NULL), check = is.character(.value)),
    nng_error_list = case(nng_error(list(1)), check = is.character(.value)),
    nng_error_huge = case(nng_error(1e300), check = identical(.value, "-2147483648 | Unknown error #-214748364")),
    nng_error_empty = case(nng_error(integer(0)), check = is.character(.value)),
    random_0 = case(random(0), bad_n),
    random_big = case(random(1025L), bad_n),
    random_chr = case(random("8"), bad_n),
    random_na = case(random(NA_integer_), bad_n),
    random_null = case(random(NULL), bad_n),
    random_inf = case(random(Inf), bad_n),
    random_empty = case(random(integer(0)), bad_n),
    random_convert_null = case(random(2L, NULL), check = nchar(.value) == 4L),
    msleep_huge_neg = case(msleep(-1e300), check = is.null(.value)),
    msleep_empty = case(msleep(numeric(0)), check = is.null(.value)),
    msleep_nan = case(msleep(NaN), check = is.null(.value)),
    parse_url_null = case(parse_url(NULL), invalid),
    parse_url_na = case(parse_url(NA), invalid),
    parse_url_num = case(parse_url(1), invalid),
    parse_url_empty = case(parse_url(character(0)), invalid),
    parse_url_long = case(parse_url(strrep("a", 1e6)), invalid),
    parse_url_long_ok = case(parse_url(paste0("tcp://h/", strrep("a", 1e6)))[["hostname"]], check = identical(.value, "h")),
    status_null = case(status_code(NULL), check = identical(.value, "-2147483648 | Unknown HTTP Status")),
    status_na = case(status_code(NA), check = is.character(.value)),
    serial_null = case(serial_config(NULL, identity, identity), "`class` must be a character vector"),
    serial_missing = case(serial_config("a"), "argument \"sfunc\" is missing"),
    tls_list = case(tls_config(client = list("a")), invalid),
    tls_na = case(tls_config(client = NA_character_), invalid),
    tls_empty = case(tls_config(server = character(0)), invalid),
    tls_auth_na = case(attr(tls_config(auth = NA), "mode"), check = identical(.value, "none")),
    tls_auth_chr = case(tls_config(auth = "x"), "`auth` must be a single logical value"),
    tls_pass_na = case(tls_config(server = write_cert()$server, pass = NA_character_), "`pass`"),
    cert_cn_num = case(write_cert(cn = 1), "`cn` must be a single non-NA character string"),
    cert_valid_na = case(write_cert(valid = NA), "`valid` must be a single non-NA character string"),
    cert_valid_num = case(write_cert(valid = 20301231235959), "`valid` must be a single non-NA character string"),
    cert_cn_empty = case(write_cert(cn = "")$client[2L], check = identical(.value, "")),
    mark_chr = case(.mark("a"), "`bool` must be a single logical value"),
    mark_na = case(.mark(NA), check = is.na(.value)),
    mark_null = case(.mark(NULL), "`bool` must be a single logical value"),
    stdout_null = case(write_stdout(NULL), "`x` must be a character vector"),
    stdout_empty = case(write_stdout(character(0)), "`x` must be a character vector"),
    stdout_na = case(write_stdout(NA_character_), check = is.null(.value)),
    is_aio_null = case(is_aio(NULL), check = identical(.value, FALSE)),
    nul_na = case(is_nul_byte(NA), check = identical(.value, FALSE))
  ))
})
