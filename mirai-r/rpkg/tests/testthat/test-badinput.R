# Bad input to every R-facing function (the 41 exports, the S3 methods users call) and to the
# `.Call` routines of the bridge: wrong types, wrong lengths, NA, NULL, empty vectors, huge
# values. Each call must give the spec's exact error, or a clear error naming what is wrong, or
# a documented valid result; never a crash of the R session.
#
# The calls run in child R processes (one per group), so that a segfault or an abort shows up as
# a failed test naming the call it happened in, instead of killing testthat. Each case is a
# quoted expression with its expectation; the child evaluates them one by one, writing the name
# of the case about to run to a progress file first, and saves what happened.

skip_on_os("windows") # POSIX shell (ulimit), /proc, signals

# A case: `expr` (quoted) must signal exactly `error`, or an error whose message contains every
# string of `has` (fixed), or return a value for which `check` (an expression in `.value`) is
# TRUE. With none of those, any error or value will do: only surviving it is asserted.
case <- function(expr, error = NULL, has = NULL, check = NULL) {
  list(expr = substitute(expr), error = error, has = has, check = substitute(check))
}

# The child: evaluates `setup`, then each case in a fresh environment, and saves the outcomes.
child_code <- '
dir <- commandArgs(TRUE)[1L]
inp <- readRDS(file.path(dir, "in.rds"))
suppressPackageStartupMessages(library(mirai))
prog <- file(file.path(dir, "progress"), "w")
writeLines("<setup>", prog); flush(prog)
eval(inp$setup, globalenv())
out <- list()
for (nm in names(inp$cases)) {
  writeLines(nm, prog); flush(prog)
  cs <- inp$cases[[nm]]
  env <- new.env(parent = globalenv())
  warn <- character()
  r <- withCallingHandlers(
    tryCatch(list(ok = TRUE, value = eval(cs$expr, env)),
             error = function(e) list(ok = FALSE, message = conditionMessage(e),
                                      call = paste(deparse(conditionCall(e)), collapse = " "))),
    warning = function(w) { warn <<- c(warn, conditionMessage(w)); invokeRestart("muffleWarning") }
  )
  if (r$ok && !is.null(cs$check)) {
    r$check <- tryCatch(isTRUE(eval(cs$check, list(.value = r$value), env)),
                        error = function(e) paste("check failed:", conditionMessage(e)))
  }
  r$value <- NULL
  r$warnings <- warn
  out[[nm]] <- r
}
writeLines("<done>", prog)
close(prog)
saveRDS(out, file.path(dir, "out.rds"))
'

# Runs `cases` after `setup` in a child Rscript (address space limited to `vmem_kb` KiB, so
# that a runaway allocation fails fast); its exit status, the last case started and the outcomes.
run_child <- function(cases, setup = NULL, timeout = 60, vmem_kb = 8e6) {
  dir <- tempfile("badinput-")
  dir.create(dir)
  on.exit(unlink(dir, recursive = TRUE))
  saveRDS(list(setup = setup, cases = cases), file.path(dir, "in.rds"))
  writeLines(child_code, file.path(dir, "child.R"))
  sh <- sprintf("ulimit -v %d; exec %s %s %s", as.integer(vmem_kb), shQuote(rscript),
                shQuote(file.path(dir, "child.R")), shQuote(dir))
  status <- suppressWarnings(system2("/bin/sh", c("-c", shQuote(sh)), stdout = file.path(dir, "stdout"),
                                     stderr = file.path(dir, "stderr"), timeout = timeout))
  prog <- if (file.exists(file.path(dir, "progress"))) readLines(file.path(dir, "progress")) else character()
  list(status = status, last = if (length(prog)) prog[length(prog)] else "<not started>",
       results = if (file.exists(file.path(dir, "out.rds"))) readRDS(file.path(dir, "out.rds")),
       stderr = readLines(file.path(dir, "stderr"), warn = FALSE))
}

# Asserts that the child exited normally after every case, and each case's expectation.
expect_cases <- function(cases, run) {
  tail_err <- paste(utils::tail(run$stderr, 30L), collapse = "\n")
  expect_identical(run$status, 0L, info = sprintf("child R process died during case '%s':\n%s", run$last, tail_err))
  expect_identical(run$last, "<done>", info = tail_err)
  if (is.null(run$results)) return(invisible())
  for (nm in names(cases)) {
    cs <- cases[[nm]]
    r <- run$results[[nm]]
    if (is.null(r)) {
      fail(sprintf("case '%s' did not run", nm))
      next
    }
    what <- if (r$ok) "a value" else sprintf("error '%s' (call: %s)", r$message, r$call)
    if (!is.null(cs$error)) {
      expect(!r$ok && identical(r$message, cs$error),
             sprintf("%s: expected error '%s', got %s", nm, cs$error, what))
    } else if (!is.null(cs$has)) {
      expect(!r$ok && all(vapply(cs$has, grepl, logical(1L), x = r$message, fixed = TRUE)),
             sprintf("%s: expected an error mentioning %s, got %s", nm, paste(sQuote(cs$has, FALSE), collapse = " and "), what))
    } else if (!is.null(cs$check)) {
      expect(r$ok && isTRUE(r$check),
             sprintf("%s: expected a value passing `%s`, got %s%s", nm, deparse(cs$check)[1L], what,
                     if (is.character(r$check)) paste0(" (", r$check, ")") else ""))
    } else {
      succeed()
    }
  }
}

# Plain (non-cli) messages, as the spec gives them, in every child.
plain <- quote(assign("cli", FALSE, envir = get(".opts", envir = asNamespace("mirai"))))

msg_n_numeric <- "`n` must be numeric, did you mean to provide `url`?"
msg_not_set <- "daemons must be set to use this function"
msg_no_daemons <- "No daemons set.\nUse e.g. mirai::daemons(6) to set 6 local daemons."

test_that("daemons(): bad n, url, dispatcher, seed, memory, serial, tls, pass, ... and .compute", {
  cases <- list(
    n_chr = case(daemons("a"), error = msg_n_numeric),
    n_lgl_na = case(daemons(NA), error = msg_n_numeric),
    n_list = case(daemons(list(1)), error = msg_n_numeric),
    n_true = case(daemons(TRUE), error = msg_n_numeric),
    n_na = case(daemons(NA_real_), has = "`n` must be a single number"),
    n_nan = case(daemons(NaN), has = "`n` must be a single number"),
    n_len2 = case(daemons(1:2), has = "`n` must be a single number"),
    n_empty = case(daemons(numeric(0)), has = "`n` must be a single number"),
    n_neg = case(daemons(-1), error = "the number of daemons must be zero or greater"),
    n_neginf = case(daemons(-Inf), error = "the number of daemons must be zero or greater"),
    n_huge = case(daemons(1e10), has = c("`n`", ".Machine$integer.max")),
    n_inf = case(daemons(Inf), has = c("`n`", ".Machine$integer.max")),
    n_missing = case(daemons(), error = 'argument "n" is missing, with no default'),
    n_zero_unset = case(daemons(0), check = identical(.value, FALSE)),
    n_null_unset = case(daemons(NULL), check = identical(.value, FALSE)),
    n_fraction_resets = case(daemons(0.5), check = identical(.value, FALSE)),
    url_dbl = case(daemons(url = 1), error = "`url` must be of type character, not double"),
    url_list = case(daemons(url = list("a")), error = "`url` must be of type character, not list"),
    url_null_n_missing = case(daemons(url = NULL), error = 'argument "n" is missing, with no default'),
    url_empty = case(daemons(url = character(0)), has = "`url`"),
    url_na = case(daemons(url = NA_character_), has = "`url`"),
    url_blank = case(daemons(url = ""), has = "`url`"),
    url_scheme = case(daemons(url = "foo://bar"), has = c("invalid URL", "foo")),
    url_port = case(daemons(url = "tcp://127.0.0.1:99999"), has = "99999"),
    dispatcher_chr = case(daemons(1, dispatcher = "a"), error = "`dispatcher` must be TRUE or FALSE"),
    dispatcher_na = case(daemons(url = local_url(), dispatcher = NA), error = "`dispatcher` must be TRUE or FALSE"),
    dispatcher_len2 = case(daemons(1, dispatcher = c(TRUE, FALSE)), error = "`dispatcher` must be TRUE or FALSE"),
    seed_chr = case(daemons(url = local_url(), seed = "a"), has = "`seed`"),
    seed_huge = case(daemons(url = local_url(), seed = 1e10), has = "`seed`"),
    seed_na = case(daemons(url = local_url(), seed = NA), has = "`seed`"),
    seed_len2 = case(daemons(url = local_url(), seed = c(1, 2)), has = "`seed`"),
    memory_chr = case(daemons(url = local_url(), memory = "a"), has = "`memory`"),
    serial_chr = case(daemons(1, serial = "a"), has = c("`serial`", "serial_config()")),
    serial_shape = case(daemons(1, serial = list("a", list(1), list(2))), has = "`serial`"),
    tls_num = case(daemons(url = "tls+tcp://127.0.0.1:0", tls = 1), has = "`tls`"),
    tls_na = case(daemons(url = "tls+tcp://127.0.0.1:0", tls = NA_character_), has = "`tls`"),
    tls_not_pem = case(daemons(url = "tls+tcp://127.0.0.1:0", tls = c("a", "b")), has = "PEM"),
    pass_num = case(daemons(url = "tls+tcp://127.0.0.1:0", tls = c("a", "b"), pass = 1), has = "`pass`"),
    remote_chr = case(daemons(url = local_url(), remote = "a"), has = "`remote`"),
    compute_num = case(daemons(1, .compute = 1), has = "`.compute`"),
    compute_na = case(daemons(url = local_url(), .compute = NA_character_), has = "`.compute`"),
    compute_blank = case(daemons(0, .compute = ""), has = "`.compute`"),
    compute_len2 = case(daemons(NULL, .compute = c("a", "b")), has = "`.compute`"),
    compute_list = case(daemons(url = local_url(), .compute = list("a")), has = "`.compute`"),
    # daemon arguments a daemon would refuse at start-up: it would never connect, and
    # daemons(n) would wait for it forever
    dots_idletime = case(daemons(1, idletime = -1), has = "`idletime`"),
    dots_maxtasks = case(daemons(1, maxtasks = -Inf), has = "`maxtasks`"),
    dots_output = case(daemons(1, output = NA), has = "`output`"),
    dots_cleanup = case(daemons(1, cleanup = NA), has = "`cleanup`"),
    dots_asyncdial = case(daemons(1, asyncdial = NA), has = "`asyncdial`"),
    dots_tlscert = case(daemons(1, tlscert = 1), has = "`tlscert`"),
    dots_rs = case(daemons(1, rs = 1:7), has = "`rs`"),
    dots_partial_url = case(daemons(1, dispatcher = FALSE, d = 1), has = "`d`"),
    dots_dup = case(daemons(1, maxtasks = 1, maxtasks = 2), has = "`maxtasks`"),
    dots_other_types_dropped = case({
      daemons(url = local_url(), cleanup = "yes", foo = list(1), .compute = "dd")
      on.exit(daemons(0, .compute = "dd"))
      nextget("dots", .compute = "dd")
    }, check = identical(.value, "")),
    dots_rendered = case({
      daemons(url = local_url(), autoexit = NA, maxtasks = 1e6, walltime = Inf, idletime = NA_real_, .compute = "dr")
      on.exit(daemons(0, .compute = "dr"))
      nextget("dots", .compute = "dr")
    }, check = identical(.value, ",autoexit=NA,maxtasks=1e+06,walltime=Inf,idletime=NA")),
    nested_map_guard = case({
      daemons(sync = TRUE, .compute = "nm")
      on.exit(daemons(0, .compute = "nm"))
      mirai_map(1, function(x) daemons(1), .compute = "nm")[[1L]][]
    }, check = is_mirai_error(.value) && .value$message == "cannot create local daemons from within mirai map"),
    nothing_left_set = case(vapply(c("default", "dd", "dr", "nm"), daemons_set, logical(1L)),
                            check = !any(.value))
  )
  expect_cases(cases, run_child(cases, plain))
})

test_that("a validation error never tears down the existing profile", {
  bad <- list(
    quote(daemons("a")), quote(daemons(NA_real_)), quote(daemons(1:2)), quote(daemons(1e10)),
    quote(daemons(-1)), quote(daemons(url = 1)), quote(daemons(url = character(0))),
    quote(daemons(url = NA_character_)), quote(daemons(1, dispatcher = NA)),
    quote(daemons(url = local_url(), seed = "a")), quote(daemons(url = local_url(), memory = "a")),
    quote(daemons(url = local_url(), serial = 1)), quote(daemons(url = local_url(), remote = 1)),
    quote(daemons(url = "tls+tcp://127.0.0.1:0", tls = 1)), quote(daemons(1, idletime = -1)),
    quote(daemons(1, output = NA)), quote(daemons(1, tlscert = 1)), quote(daemons(1, rs = 1))
  )
  cases <- list()
  for (i in seq_along(bad)) {
    cases[[paste0("still_set_", i)]] <- list(
      expr = bquote({
        url <- nextget("url")
        e <- tryCatch(.(bad[[i]]), error = function(e) e)
        inherits(e, "error") && daemons_set() && identical(nextget("url"), url) && mirai(1 + 1)[] == 2
      }),
      check = quote(isTRUE(.value))
    )
  }
  setup <- bquote({ .(plain); daemons(url = local_url()); launch_local(1); mirai(0)[] })
  expect_cases(cases, run_child(cases, setup))
})

test_that("profile accessors: status, info, daemons_set, require_daemons, nextget, nextstream, with_daemons, local_daemons", {
  cases <- list()
  bads <- list(num = 1, na_chr = NA_character_, blank = "", len2 = c("a", "b"), lgl_na = NA, list = list("a"), true = TRUE)
  for (nm in names(bads)) {
    b <- bads[[nm]]
    named <- is.character(b) && length(b) == 1L
    no_set <- if (named) sprintf("No daemons set for the '%s' compute profile.\nUse e.g. mirai::daemons(6, .compute = \"%s\") to set 6 local daemons.", b, b) else msg_no_daemons
    cases[[paste0("status_", nm)]] <- list(expr = bquote(status(.(b))), check = quote(identical(.value, list(connections = 0L, daemons = 0L))))
    cases[[paste0("info_", nm)]] <- list(expr = bquote(info(.(b))), check = quote(is.null(.value)))
    cases[[paste0("daemons_set_", nm)]] <- list(expr = bquote(daemons_set(.(b))), check = quote(identical(.value, FALSE)))
    cases[[paste0("require_daemons_", nm)]] <- list(expr = bquote(require_daemons(.(b))), error = no_set)
    cases[[paste0("nextget_", nm)]] <- list(expr = bquote(nextget("url", .(b))), check = quote(is.null(.value)))
    cases[[paste0("nextstream_", nm)]] <- list(expr = bquote(nextstream(.(b))), check = quote(is.null(.value)))
    cases[[paste0("with_daemons_", nm)]] <- list(expr = bquote(with_daemons(.(b), 1)), error = no_set)
    cases[[paste0("local_daemons_", nm)]] <- list(expr = bquote(local_daemons(.(b))), error = no_set)
    cases[[paste0("launch_local_", nm)]] <- list(expr = bquote(launch_local(1, .compute = .(b))), error = msg_not_set)
    cases[[paste0("launch_remote_", nm)]] <- list(expr = bquote(launch_remote(1, .compute = .(b))), error = msg_not_set)
    cases[[paste0("race_mirai_", nm)]] <- list(expr = bquote(race_mirai(list(), .compute = .(b))), error = msg_not_set)
    cases[[paste0("mirai_map_", nm)]] <- list(expr = bquote(mirai_map(1, identity, .compute = .(b))), error = no_set)
    cases[[paste0("everywhere_", nm)]] <- list(expr = bquote(everywhere(1, .compute = .(b))), error = no_set)
  }
  cases <- c(cases, list(
    nextget_x_num = case({ daemons(sync = TRUE); on.exit(daemons(0)); nextget(1) }, check = is.null(.value)),
    nextget_x_len2 = case({ daemons(sync = TRUE); on.exit(daemons(0)); nextget(c("url", "n")) }, check = is.null(.value)),
    nextget_x_unknown = case({ daemons(sync = TRUE); on.exit(daemons(0)); nextget("nope") }, check = is.null(.value)),
    with_daemons_null_is_current_default = case({
      daemons(sync = TRUE)
      on.exit(daemons(0))
      with_daemons(NULL, mirai(on_daemon())[])
    }, check = isTRUE(.value)),
    local_daemons_null_is_current_default = case({
      daemons(sync = TRUE)
      on.exit(daemons(0))
      f <- function() { local_daemons(NULL); mirai(on_daemon())[] }
      f()
    }, check = isTRUE(.value)),
    local_daemons_bad_frame = case({
      daemons(sync = TRUE)
      on.exit(daemons(0))
      local_daemons("default", frame = "a")
    }, has = "`frame`"),
    with_miraiDaemons_plain_with = case(with(NULL, 42), check = identical(.value, 42))
  ))
  expect_cases(cases, run_child(cases, plain))
})

test_that("launching and URLs: launch_local, launch_remote, local_url, host_url, the configs", {
  n_msg <- "`n` must be a single non-negative number of daemons"
  cases <- list(
    ll_chr = case(launch_local("a"), error = n_msg),
    ll_na = case(launch_local(NA), error = n_msg),
    ll_neg = case(launch_local(-1), error = n_msg),
    ll_huge = case(launch_local(1e10), error = n_msg),
    ll_inf = case(launch_local(Inf), error = n_msg),
    ll_len2 = case(launch_local(1:2), error = n_msg),
    ll_null = case(launch_local(NULL), error = n_msg),
    ll_zero = case(launch_local(0), check = identical(.value, 0)),
    ll_bad_dots = case(launch_local(1, maxtasks = -1), has = "`maxtasks`"),
    ll_bad_dots_keeps_tls = case({ try(launch_local(1, tlscert = 1, idletime = -1), silent = TRUE); nextget("tls") }, check = is.null(.value)),
    lr_chr = case(launch_remote("a"), error = n_msg),
    lr_na = case(launch_remote(NA), error = n_msg),
    lr_huge = case(launch_remote(1e10), error = n_msg),
    lr_len2 = case(launch_remote(1:2), error = n_msg),
    lr_remote_chr = case(launch_remote(1, "a"), has = "`remote`"),
    lr_remote_num = case(launch_remote(1, 1), has = "`remote`"),
    lr_remote_null = case(launch_remote(1, NULL), check = inherits(.value, "miraiLaunchCmd") && length(.value) == 1L),
    lr_args_mismatch = case(launch_remote(2, remote_config("echo", args = list(c("a", "."), c("b", "."), c("c", ".")))),
                            error = "`n` must equal the length of `args`, or either must be 1"),
    lr_tunnel = case(launch_remote(1, ssh_config("ssh://h", tunnel = TRUE)),
                     error = "SSH tunnelling requires daemons `url` hostname to be `127.0.0.1`"),
    lr_command_num = case(launch_remote(1, list(command = 1, args = c("."), quote = FALSE)), has = "`remote$command`"),
    lr_cluster_args = case(launch_remote(1, list(command = "sh", args = c("."), quote = NULL)), has = "`args`"),
    lr_args_num = case(launch_remote(1, list(command = "echo", args = 1)), has = "`remote$args`"),
    lu_tcp_chr = case(local_url("a"), error = "`tcp` must be TRUE or FALSE"),
    lu_tcp_na = case(local_url(NA), error = "`tcp` must be TRUE or FALSE"),
    lu_tcp_null = case(local_url(NULL), error = "`tcp` must be TRUE or FALSE"),
    lu_tcp_len2 = case(local_url(c(TRUE, FALSE)), error = "`tcp` must be TRUE or FALSE"),
    lu_port_chr = case(local_url(TRUE, "a"), has = "`port`"),
    lu_port_na = case(local_url(TRUE, NA), has = "`port`"),
    lu_port_neg = case(local_url(TRUE, -1), has = "`port`"),
    lu_port_big = case(local_url(TRUE, 65536), has = "`port`"),
    lu_port_huge = case(local_url(TRUE, 1e10), has = "`port`"),
    lu_port_frac = case(local_url(TRUE, 1.5), has = "`port`"),
    lu_port_len2 = case(local_url(TRUE, 1:2), has = "`port`"),
    lu_port_max = case(local_url(TRUE, 65535), check = identical(.value, "tcp://127.0.0.1:65535")),
    lu_port_unused = case(local_url(FALSE, "a"), check = grepl("^abstract://[0-9a-f]{24}$", .value)),
    hu_port_chr = case(host_url(port = "a"), has = "`port`"),
    hu_port_neg = case(host_url(port = -1), has = "`port`"),
    hu_port_inf = case(host_url(port = Inf), has = "`port`"),
    hu_tls_chr = case(host_url(tls = "a", port = 5555), check = all(grepl("^tcp://.*:5555$", .value))),
    rc_args_null = case(remote_config(args = NULL), error = "`.` must be an element of the character vector(s) supplied to `args`"),
    rc_args_num = case(remote_config(args = 1), error = "`.` must be an element of the character vector(s) supplied to `args`"),
    rc_args_na = case(remote_config(args = NA), error = "`.` must be an element of the character vector(s) supplied to `args`"),
    rc_args_empty_list = case(remote_config(args = list()), error = "`.` must be an element of the character vector(s) supplied to `args`"),
    rc_args_list_missing = case(remote_config(args = list(c("a", "."), "b")), error = "`.` must be an element of the character vector(s) supplied to `args`"),
    rc_command_num = case(remote_config(command = 1), has = "`command`"),
    rc_rscript_na = case(remote_config(rscript = NA_character_), has = "`rscript`"),
    rc_quote_na = case(remote_config(quote = NA), has = "`quote`"),
    ssh_null = case(ssh_config(NULL), has = "`remotes`"),
    ssh_num = case(ssh_config(1), has = "`remotes`"),
    ssh_empty = case(ssh_config(character(0)), has = "`remotes`"),
    ssh_na = case(ssh_config(NA_character_), has = "invalid SSH remote 'NA'"),
    ssh_space = case(ssh_config("ssh://bad host"), has = "invalid SSH remote"),
    ssh_inject = case(ssh_config("ssh://h;rm -rf x"), has = "invalid SSH remote"),
    ssh_timeout_chr = case(ssh_config("ssh://h", timeout = "a"), error = "`timeout` must be a number of seconds"),
    ssh_timeout_na = case(ssh_config("ssh://h", timeout = NA_real_), error = "`timeout` must be a number of seconds"),
    ssh_timeout_neg = case(ssh_config("ssh://h", timeout = -1), error = "`timeout` must be a number of seconds"),
    ssh_command_null = case(ssh_config("ssh://h", command = NULL), has = "`command`"),
    ssh_ok = case(ssh_config("ssh://u@h:2222", tunnel = NA), check = identical(.value$args[[1L]], c("-o ConnectTimeout=10 -fTp 2222", "u@h", ".")) && identical(.value$tunnel, FALSE)),
    cc_null = case(cluster_config(NULL), has = "`command`"),
    cc_empty = case(cluster_config(character(0)), has = "`command`"),
    cc_na = case(cluster_config(NA_character_), has = "`command`"),
    cc_num = case(cluster_config(1), has = "`command`"),
    cc_options_null = case(cluster_config(options = NULL), has = "`options`"),
    cc_options_na = case(cluster_config(options = NA_character_), has = "`options`"),
    cc_options_len2 = case(cluster_config(options = c("a", "b")), has = "`options`"),
    cc_rscript_num = case(cluster_config(rscript = 1), has = "`rscript`"),
    hc_anything = case(http_config(url = 1, method = NA, headers = list(), data = NULL, cookie = 1, token = NA),
                       check = identical(.value$type, "http")),
    hc_launch_bad_data = case(launch_remote(1, http_config(url = "http://127.0.0.1:1", headers = NULL, data = 1)))
  )
  setup <- bquote({ .(plain); daemons(url = local_url()) })
  expect_cases(cases, run_child(cases, setup))
})

test_that("launching on an unset or sync profile gives the spec's errors", {
  cases <- list(
    ll_unset = case(launch_local(1), error = msg_not_set),
    lr_unset = case(launch_remote(1), error = msg_not_set),
    ll_sync = case({ daemons(sync = TRUE); on.exit(daemons(0)); launch_local(1) },
                   error = "daemons cannot be launched for synchronous compute profiles"),
    lr_sync = case({ daemons(sync = TRUE); on.exit(daemons(0)); launch_remote(1) },
                   error = "daemons cannot be launched for synchronous compute profiles"),
    race_unset = case(race_mirai(list()), error = msg_not_set)
  )
  expect_cases(cases, run_child(cases, plain))
})

test_that("mirai(), try_mirai(), everywhere(), mirai_map() and the waiting functions", {
  dots_msg <- "all `...` arguments must be named, unless supplying an environment"
  args_msg <- "all items in `.args` must be named, unless supplying an environment"
  cases <- list(
    m_missing = case(mirai(), error = "missing expression, perhaps wrap in {}?"),
    m_unnamed = case(mirai(1, 2), error = dots_msg),
    m_null_dot = case(mirai(1, NULL), error = dots_msg),
    m_partly_named = case(mirai(1, a = 1, 2), error = dots_msg),
    m_args_num = case(mirai(1, .args = 1), error = args_msg),
    m_args_list = case(mirai(1, .args = list(1)), error = args_msg),
    m_args_partly = case(mirai(1, .args = list(a = 1, 2)), error = args_msg),
    m_args_null = case(mirai(1, .args = NULL)[], check = identical(.value, 1)),
    m_args_named_vec = case(mirai(a + b, .args = c(a = 1, b = 2))[], check = identical(.value, 3)),
    m_timeout_neg = case(mirai(1, .timeout = -1), has = "timeout"),
    m_timeout_len2 = case(mirai(1, .timeout = c(1, 2)), has = "timeout"),
    m_timeout_na = case(mirai(1, .timeout = NA)[], check = identical(.value, 1)),
    m_timeout_inf = case(mirai(1, .timeout = Inf)[], check = identical(.value, 1)),
    m_timeout_huge = case(mirai(1, .timeout = 1e300)[], check = identical(.value, 1)),
    m_timeout_zero = case(mirai({ Sys.sleep(1); 1 }, .timeout = 0)[], check = identical(unclass(.value), 5L)),
    m_compute_num_ephemeral_ok = case(is_mirai(m <- mirai(1, .compute = 1)), check = isTRUE(.value)),
    tm_missing = case(try_mirai(), error = "missing expression, perhaps wrap in {}?"),
    tm_unnamed = case(try_mirai(1, 2), error = dots_msg),
    tm_args = case(try_mirai(1, .args = list(1)), error = args_msg),
    ev_unnamed = case(everywhere(1, 2), error = dots_msg),
    ev_args = case(everywhere(1, .args = 1), error = args_msg),
    ev_min_chr = case(everywhere(1, .min = "a"), has = "min"),
    ev_min_na = case(everywhere(1, .min = NA), has = "min"),
    ev_min_neg = case(everywhere(1, .min = -1), has = "min"),
    ev_min_huge = case(everywhere(1, .min = 1e10), has = "min"),
    ev_min_len2 = case(everywhere(1, .min = 1:2), has = "min"),
    ev_min_zero = case(length(everywhere(1, .min = 0)), check = .value >= 1L),
    map_f_num = case(mirai_map(1, 1), error = "`.f` must be of type function, not double"),
    map_f_null = case(mirai_map(1, NULL), error = "`.f` must be of type function, not NULL"),
    map_f_chr = case(mirai_map(1, "sum"), error = "`.f` must be of type function, not character"),
    map_unnamed = case(mirai_map(1, identity, 2), error = dots_msg),
    # mirai 2.7: unnamed `.args` of mirai_map() are positional arguments after the element.
    map_args = case(mirai_map(1, function(x, y) x + y, .args = list(1))[.flat], check = identical(.value, 2)),
    map_x_null = case(mirai_map(NULL, identity)[], check = identical(.value, list())),
    map_x_empty = case(mirai_map(list(), identity)[.flat], check = is.null(.value)),
    map_promise_num = case(mirai_map(1, identity, .promise = 1)),
    map_flat_types = case(mirai_map(list(1, "a"), identity)[.flat],
                          error = "Cannot flatten outputs of differing type: double / character"),
    map_stop = case(mirai_map(list(1, "a"), function(x) x + 1)[.stop],
                    error = "In index 2:\nnon-numeric argument to binary operator"),
    map_index_ignored = case(mirai_map(1:2, identity)[99], check = identical(.value, list(1L, 2L))),
    collect_bad_option_num = case(collect_mirai(list(1), 1), has = "'1' is not a valid option"),
    collect_bad_option_na = case(collect_mirai(list(1), NA), has = "not a valid option"),
    collect_bad_option_null_elt = case(collect_mirai(list(1), list(NULL)), has = "not a valid option"),
    collect_bad_option_name = case(collect_mirai(list(1), c(.nope = TRUE)), has = "'.nope' is not a valid option"),
    collect_empty_options = case(collect_mirai(list(1), character(0)), check = identical(.value, list(1))),
    collect_x_null = case(collect_mirai(NULL), check = is.null(.value)),
    collect_x_num = case(collect_mirai(1), check = identical(.value, 1)),
    call_x_null = case(call_mirai(NULL), check = is.null(.value)),
    call_x_list = case(call_mirai(list(1, "a", NULL)), check = identical(.value, list(1, "a", NULL))),
    race_x_num = case(race_mirai(1), check = identical(.value, 0L)),
    race_x_null = case(race_mirai(NULL), check = identical(.value, 0L)),
    race_x_list = case(race_mirai(list(1, "a")), check = identical(.value, 0L)),
    stop_x_null = case(stop_mirai(NULL), check = identical(.value, FALSE)),
    stop_x_list = case(stop_mirai(list(1, NULL)), check = identical(.value, c(FALSE, FALSE))),
    stop_x_env = case(stop_mirai(globalenv()), check = identical(.value, FALSE)),
    unresolved_many = case(vapply(list(NULL, 1, NA, list(), globalenv(), list(1, NULL)), unresolved, logical(1L)),
                           check = !any(.value)),
    predicates = case(vapply(list(NULL, 1, NA, "a", list()), function(x)
      c(is_mirai(x), is_mirai_map(x), is_mirai_error(x), is_mirai_interrupt(x), is_error_value(x)), logical(5L)),
      check = !any(.value)),
    on_daemon_arg = case(on_daemon(1), has = "unused argument"),
    daemon_still_serves = case(mirai(Sys.getpid())[], check = is.integer(.value) && .value != Sys.getpid())
  )
  setup <- bquote({ .(plain); daemons(1) })
  expect_cases(cases, run_child(cases, setup))
})

test_that("sync profiles ignore what they must ignore", {
  cases <- list(
    timeout_chr = case(mirai(1, .timeout = "a")[], check = identical(.value, 1)),
    timeout_neg = case(mirai(1, .timeout = -1)[], check = identical(.value, 1)),
    ev_min = case(length(everywhere(1, .min = 1e10)), check = identical(.value, 1L)),
    map_x_fn = case(mirai_map(function() 1, identity)[], check = is.list(.value)),
    map_x_env = case(mirai_map(new.env(), identity)[], check = is.list(.value) && !length(.value)),
    stop_sync = case(stop_mirai(mirai(1)), check = identical(.value, FALSE))
  )
  expect_cases(cases, run_child(cases, bquote({ .(plain); daemons(sync = TRUE) })))
})

test_that("errors, serialization, cluster and misc exports with bad input", {
  sc <- function(x) sprintf("`%s` must be a function or list of functions", x)
  cases <- list(
    sc_class_null = case(serial_config(NULL, identity, identity), error = "`class` must be a character vector"),
    sc_class_num = case(serial_config(1, identity, identity), error = "`class` must be a character vector"),
    sc_class_list = case(serial_config(list("a"), identity, identity), error = "`class` must be a character vector"),
    sc_len = case(serial_config(c("a", "b"), identity, identity), error = "`class`, `sfunc` and `ufunc` must all be the same length"),
    sc_sfunc_num = case(serial_config("a", 1, identity), error = sc("sfunc")),
    sc_sfunc_list = case(register_serial("a", list(1), identity), error = sc("sfunc")),
    sc_ufunc_chr = case(register_serial("a", identity, list("x")), error = sc("ufunc")),
    sc_empty = case(serial_config(character(), list(), list()), check = identical(lengths(.value), c(0L, 0L, 0L))),
    rs_null = case(register_serial(NULL, identity, identity), error = "`class` must be a character vector"),
    rs_len = case(register_serial("a", list(identity, identity), identity), error = "`class`, `sfunc` and `ufunc` must all be the same length"),
    rs_empty = case(register_serial(character(), list(), list()), check = is.null(.value)),
    nextcode_null = case(nextcode(NULL), has = "`xc`"),
    nextcode_len2 = case(nextcode(1:2), has = "`xc`"),
    nextcode_na = case(nextcode(NA), check = identical(.value, character())),
    nextcode_chr = case(nextcode("a"), check = identical(.value, character())),
    nextcode_huge = case(nextcode(1e10), check = identical(.value, character())),
    nextcode_neg = case(nextcode(-1), check = identical(.value, character())),
    nextcode_ok = case(nextcode(3), check = identical(.value, "3 | Daemon task limit reached")),
    mc_null = case(make_cluster(NULL), error = msg_n_numeric),
    mc_chr = case(make_cluster("a"), error = msg_n_numeric),
    mc_na_lgl = case(make_cluster(NA), error = msg_n_numeric),
    mc_zero = case(make_cluster(0), error = "`n` must be 1 or greater"),
    mc_neg = case(make_cluster(-1), error = "`n` must be 1 or greater"),
    mc_na = case(make_cluster(NA_real_), error = "`n` must be 1 or greater"),
    mc_len2 = case(make_cluster(1:2), has = "`n`"),
    mc_huge = case(make_cluster(1e10), has = c("`n`", ".Machine$integer.max")),
    mc_url_num = case(make_cluster(url = 1), error = "`url` must be of type character, not double"),
    mc_url_n_chr = case(make_cluster("a", url = local_url()), error = msg_n_numeric),
    sc_null = case(stop_cluster(NULL), has = "`cl`"),
    sc_num = case(stop_cluster(1), has = "`cl`"),
    sc_list = case(stop_cluster(list()), has = "`cl`"),
    sc_default_untouched = case({ daemons(sync = TRUE); on.exit(daemons(0)); try(stop_cluster(NULL), silent = TRUE); daemons_set() },
                                check = isTRUE(.value)),
    dollar_num = case(mirai:::`$.miraiError`(structure("e", class = "miraiError", message = "m"), 1), has = "'which'"),
    dollar_missing = case(mirai:::`$.miraiError`(structure("e", class = "miraiError"), "nope"), check = is.null(.value)),
    dollarnames = case(mirai:::.DollarNames.miraiError(structure("e", class = "miraiError", message = "m"), 1), check = identical(.value, character())),
    cond_msg = case(conditionMessage(structure(1, class = "miraiError")), check = is.null(.value)),
    cond_call = case(conditionCall(structure(list(), class = "miraiError")), check = is.null(.value)),
    print_mirai_error_list = case(mirai:::print.miraiError(structure(list(), class = "miraiError"))),
    print_mirai_error_num = case(print(structure(1, class = c("miraiError", "errorValue"))), check = inherits(.value, "miraiError")),
    print_ev_chr = case(capture.output(print(structure("a", class = "errorValue"))), check = identical(.value, "'errorValue' int -2147483648 | Unknown error #-214748364")),
    print_ev_null = case(capture.output(getS3method("print", "errorValue")(NULL)), check = identical(.value, "'errorValue' int -2147483648 | Unknown error #-214748364")),
    print_ev_list = case(capture.output(print(structure(list(identity), class = "errorValue"))), check = identical(.value, "'errorValue' int -2147483648 | Unknown error #-214748364")),
    print_ev_huge = case(capture.output(print(structure(1e10, class = "errorValue"))), check = identical(.value, "'errorValue' int -2147483648 | Unknown error #-214748364")),
    print_ev_code = case(capture.output(print(mirai:::.error_value(31L))), check = identical(.value, "'errorValue' int 31 | Connection shutdown")),
    print_unresolved = case(capture.output(print(structure(1:3, class = "unresolvedValue"))), check = identical(.value, "'unresolved' logi NA")),
    print_interrupt = case(capture.output(print(structure(1, class = "miraiInterrupt"))), check = identical(.value, "'miraiInterrupt' chr \"\"")),
    print_map_num = case(capture.output(print(structure(1:3, class = "mirai_map"))), check = identical(.value, "< mirai map [3/3] >")),
    print_map_mixed = case(capture.output(print(structure(list(1, NULL, globalenv()), class = "mirai_map"))), check = identical(.value, "< mirai map [3/3] >")),
    print_cluster_num = case(capture.output(print(structure(1, class = "miraiCluster")))),
    print_node_num = case(capture.output(print(structure(1, class = "miraiNode")))),
    print_launch_num = case(capture.output(print(structure(1:2, class = "miraiLaunchCmd"))), check = identical(.value, c("[1]", "1", "", "[2]", "2", ""))),
    print_daemons_null = case(capture.output(mirai:::print.miraiDaemons(NULL)), check = identical(.value, "NULL")),
    print_fake_mirai_env = case(capture.output(print(structure(new.env(), class = "mirai"))), check = identical(.value, "< mirai [$data] >")),
    print_fake_mirai_num = case(print(structure(1, class = "mirai"))),
    bracket_mirai_num = case(mirai:::`[.mirai`(1), has = "`x` must be a mirai"),
    bracket_mirai_fake = case(structure(new.env(), class = "mirai")[], check = is.null(.value)),
    bracket_map_num = case(mirai:::`[.mirai_map`(1:3, .flat), check = identical(.value, 1:3)),
    bracket_map_null = case(mirai:::`[.mirai_map`(NULL, .stop), check = identical(.value, list())),
    bracket_map_mixed = case(structure(list(1, "a"), class = "mirai_map")[.flat],
                             error = "Cannot flatten outputs of differing type: double / character"),
    bracket_map_error_value = case(structure(list(1, mirai:::.error_value(19L)), class = "mirai_map")[.stop],
                                   error = "In index 2:\n19 | Connection reset"),
    bracket_map_unknown_opt = case(structure(list(1), class = "mirai_map")[.nope, 1, "x"], check = identical(.value, list(1))),
    with_daemons_obj = case(mirai:::with.miraiDaemons(1, 2), check = identical(.value, 2))
  )
  expect_cases(cases, run_child(cases, plain))
})

test_that("daemon(): bad arguments are errors before or at the dial, never a crash", {
  cases <- list(
    url_null = case(daemon(NULL), has = "`url`"),
    url_na = case(daemon(NA), has = "`url`"),
    url_num = case(daemon(1), has = "Invalid argument"),
    url_len2 = case(daemon(c("tcp://127.0.0.1:1", "x")), error = "6 | Connection refused"),
    refused = case(daemon(refused), error = "6 | Connection refused"),
    asyncdial_chr = case(daemon(refused, asyncdial = "a"), error = "6 | Connection refused"),
    autoexit_chr = case(daemon(refused, autoexit = "a"), error = "6 | Connection refused"),
    autoexit_num = case(daemon(refused, autoexit = 2L), error = "6 | Connection refused"),
    cleanup_chr = case(daemon(refused, cleanup = "a"), error = "6 | Connection refused"),
    idletime_neg = case(daemon(refused, idletime = -1), has = "`idletime`"),
    idletime_null = case(daemon(refused, idletime = NULL), has = "`idletime`"),
    idletime_len2 = case(daemon(refused, idletime = 1:2), has = "`idletime`"),
    walltime_neg = case(daemon(refused, walltime = -Inf), has = "`walltime`"),
    maxtasks_neg = case(daemon(refused, maxtasks = -1), has = "`maxtasks`"),
    maxtasks_null = case(daemon(refused, maxtasks = NULL), has = "`maxtasks`"),
    idletime_huge = case(daemon(refused, idletime = 1e300), error = "6 | Connection refused"),
    rs_chr = case(daemon(refused, rs = "a"), error = "6 | Connection refused"),
    tlscert_num = case(daemon("tls+tcp://127.0.0.1:1", tlscert = 1), has = "`tlscert`"),
    tlscert_na = case(daemon("tls+tcp://127.0.0.1:1", tlscert = NA_character_), has = "`tlscert`"),
    tlscert_not_pem = case(daemon("tls+tcp://127.0.0.1:1", tlscert = "notafile"), has = "PEM"),
    sinks_restored = case(sink.number(), check = identical(.value, 0L)),
    not_on_daemon = case(on_daemon(), check = identical(.value, FALSE))
  )
  expect_cases(cases, run_child(cases, bquote({ .(plain); refused <- "tcp://127.0.0.1:1" })))
})

test_that("daemon(): non-logical output / autoexit give errors naming the argument", {
  cases <- list(
    output_na = case(daemon(refused, output = NA), has = "`output`"),
    output_chr = case(daemon(refused, output = "a"), has = "`output`"),
    output_null = case(daemon(refused, output = NULL), has = "`output`"),
    autoexit_null = case(daemon(refused, autoexit = NULL), has = "`autoexit`")
  )
  expect_cases(cases, run_child(cases, bquote({ .(plain); refused <- "tcp://127.0.0.1:1" })))
})

test_that("mirai(.timeout =) and everywhere(.min =) errors name the user's argument", {
  cases <- list(
    timeout_chr = case(mirai(1, .timeout = "a"), has = "`.timeout`"),
    timeout_neg = case(mirai(1, .timeout = -1), has = "`.timeout`"),
    min_chr = case(everywhere(1, .min = "a"), has = "`.min`")
  )
  expect_cases(cases, run_child(cases, bquote({ .(plain); daemons(url = local_url()) })))
})

test_that("unresolved() of a non-environment with class 'mirai' is FALSE", {
  cases <- list(fake = case(unresolved(structure(1, class = "mirai")), check = identical(.value, FALSE)))
  expect_cases(cases, run_child(cases, plain))
})

test_that("everywhere(.min = .Machine$integer.max) is an error, not an abort", {
  cases <- list(
    r_level = case(everywhere(1, .min = .Machine$integer.max), has = "min"),
    bridge = case(.Call(mirai:::mirai_everywhere, nextget("dispatcher"), 1, 2^31 - 1, NULL), has = "`min`")
  )
  expect_cases(cases, run_child(cases, bquote({ .(plain); daemons(url = local_url()) }), vmem_kb = 4e6))
})

# The bridge: each routine with handles of the wrong kind, freed (unserialized) handles, a
# reset host, wrong types and lengths. Every one must raise an R error (or give its documented
# value); none may crash.
bridge_setup <- quote({
  assign("cli", FALSE, envir = get(".opts", envir = asNamespace("mirai")))
  C <- function(name, ...) .Call(get(name, envir = asNamespace("mirai")), ...)
  h <- C("mirai_host_start", local_url(), TRUE, NA_real_, NULL, NULL, NULL)
  t <- C("mirai_submit", h, list(globals = list(), args = list(), expr = 1), NULL, NULL)
  hr <- C("mirai_host_start", local_url(), TRUE, NA_real_, NULL, NULL, NULL)
  tr <- C("mirai_submit", hr, 1, NULL, NULL)
  C("mirai_host_reset", hr, FALSE)
  freed <- unserialize(serialize(h, NULL))
  freedt <- unserialize(serialize(t, NULL))
  ns <- asNamespace("mirai")
  refused <- "tcp://127.0.0.1:1"
})

test_that("bridge routines: handles of the wrong kind, freed handles, wrong types", {
  cases <- list()
  add <- function(name, expr, has = NULL, check = NULL, error = NULL) {
    cases[[name]] <<- list(expr = expr, has = has, check = check, error = error)
  }
  bad_host <- list(null = NULL, num = 1, chr = "a", task = quote(t), freed = quote(freed), list = quote(list(h)), env = quote(globalenv()))
  host_calls <- list(
    mirai_host_url = quote(C("mirai_host_url", B)),
    mirai_host_reset = quote(C("mirai_host_reset", B, FALSE)),
    mirai_host_status = quote(C("mirai_host_status", B)),
    mirai_host_wait_connections = quote(C("mirai_host_wait_connections", B, 0, 0)),
    mirai_host_launch = quote(C("mirai_host_launch", B, "true", character())),
    mirai_host_admit = quote(C("mirai_host_admit", B)),
    mirai_host_wait_admit = quote(C("mirai_host_wait_admit", B, 0)),
    mirai_host_exit_daemons = quote(C("mirai_host_exit_daemons", B)),
    mirai_submit = quote(C("mirai_submit", B, 1, NULL, NULL)),
    mirai_everywhere = quote(C("mirai_everywhere", B, 1, 0, NULL)),
    mirai_async = quote(C("mirai_async", B, 1, NULL, NULL)),
    mirai_submit_chunk = quote(C("mirai_submit_chunk", B, list(map = list(1)), NULL, 1)),
    mirai_cancel = quote(C("mirai_cancel", B, t))
  )
  for (r in names(host_calls)) for (b in names(bad_host))
    add(paste0(r, "_host_", b), do.call(substitute, list(host_calls[[r]], list(B = bad_host[[b]]))),
        error = "`host` is not a valid mirai host handle")
  bad_task <- list(null = NULL, num = 1, host = quote(h), freed = quote(freedt), list = quote(list(t)))
  task_calls <- list(
    mirai_resolved = quote(C("mirai_resolved", B)),
    mirai_take = quote(C("mirai_take", B, NULL, NULL)),
    mirai_cancel = quote(C("mirai_cancel", h, B)),
    mirai_later = quote(C("mirai_later", B, identity, 0L))
  )
  for (r in names(task_calls)) for (b in names(bad_task))
    add(paste0(r, "_task_", b), do.call(substitute, list(task_calls[[r]], list(B = bad_task[[b]]))),
        error = "`task` is not a valid mirai task handle")
  # the collection routines skip anything that is not a handle (documented)
  add("wait_skips", quote(C("mirai_wait", list(1, NULL, freedt, h), 0)), check = quote(isTRUE(.value)))
  add("race_skips", quote(C("mirai_race", list(1, NULL, freedt, h), 0)), check = quote(identical(.value, 0L)))
  add("wait_non_list", quote(C("mirai_wait", "a", 0)), check = quote(isTRUE(.value)))
  add("collect_skips", quote(C("mirai_collect", list(1, freedt), TRUE)), check = quote(length(.value) == 2L))
  add("stop_non_mirai", quote(C("mirai_stop", h)), check = quote(identical(.value, FALSE)))
  # host_start
  add("start_url_null", quote(C("mirai_host_start", NULL, TRUE, NA_real_, NULL, NULL, NULL)), has = "`url`")
  add("start_url_na", quote(C("mirai_host_start", NA_character_, TRUE, NA_real_, NULL, NULL, NULL)), has = "`url`")
  add("start_url_len2", quote(C("mirai_host_start", c("a", "b"), TRUE, NA_real_, NULL, NULL, NULL)), has = "`url`")
  add("start_url_bad", quote(C("mirai_host_start", "a", TRUE, NA_real_, NULL, NULL, NULL)), has = "invalid URL")
  add("start_url_bad_port", quote(C("mirai_host_start", "tcp://127.0.0.1:70000", TRUE, NA_real_, NULL, NULL, NULL)), has = "70000")
  add("start_dispatcher_chr", quote(C("mirai_host_start", local_url(), "a", NA_real_, NULL, NULL, NULL)), has = "`dispatcher`")
  add("start_dispatcher_na", quote(C("mirai_host_start", local_url(), NA, NA_real_, NULL, NULL, NULL)), has = "`dispatcher`")
  add("start_memory_chr", quote(C("mirai_host_start", local_url(), TRUE, "a", NULL, NULL, NULL)), has = "`memory`")
  add("start_memory_len2", quote(C("mirai_host_start", local_url(), TRUE, c(1, 2), NULL, NULL, NULL)), has = "`memory`")
  add("start_memory_huge", quote({ x <- C("mirai_host_start", local_url(), TRUE, 1e300, NULL, NULL, NULL); C("mirai_host_reset", x, FALSE) }), check = quote(is.null(.value)))
  add("start_stream_short", quote(C("mirai_host_start", local_url(), TRUE, NA_real_, 1:3, NULL, NULL)), has = "`stream`")
  add("start_stream_chr", quote(C("mirai_host_start", local_url(), TRUE, NA_real_, letters[1:7], NULL, NULL)), has = "`stream`")
  add("start_stream_nan", quote(C("mirai_host_start", local_url(), TRUE, NA_real_, c(1:6, NaN), NULL, NULL)), has = "`stream`")
  add("start_serial_chr", quote(C("mirai_host_start", local_url(), TRUE, NA_real_, NULL, "a", NULL)), has = "`serial`")
  add("start_opts_chr", quote(C("mirai_host_start", local_url(), TRUE, NA_real_, NULL, NULL, "a")), has = "`opts`")
  add("start_opts_unknown", quote(C("mirai_host_start", local_url(), TRUE, NA_real_, NULL, NULL, list(retries = 1))), has = "unknown profile option 'retries'")
  add("start_opts_retry_neg", quote(C("mirai_host_start", local_url(), TRUE, NA_real_, NULL, NULL, list(retry = -1))), has = "`retry`")
  add("start_opts_retry_frac", quote(C("mirai_host_start", local_url(), TRUE, NA_real_, NULL, NULL, list(retry = 1.5))), has = "`retry`")
  add("start_opts_retry_chr", quote(C("mirai_host_start", local_url(), TRUE, NA_real_, NULL, NULL, list(retry = "1"))), has = "`retry`")
  add("start_opts_repair_na", quote(C("mirai_host_start", local_url(), TRUE, NA_real_, NULL, NULL, list(repair = NA))), has = "`repair`")
  add("start_opts_compute_num", quote(C("mirai_host_start", local_url(), TRUE, NA_real_, NULL, NULL, list(compute = 1))), has = "`compute`")
  add("start_tls_num", quote(C("mirai_host_start", structure("tls+tcp://127.0.0.1:0", tls = 1), TRUE, NA_real_, NULL, NULL, NULL)), has = "`tls`")
  add("start_tls_cert_num", quote(C("mirai_host_start", structure("tls+tcp://127.0.0.1:0", tls = list(cert = 1)), TRUE, NA_real_, NULL, NULL, NULL)), has = "`tls$cert`")
  add("start_tls_not_pem", quote(C("mirai_host_start", structure("tls+tcp://127.0.0.1:0", tls = list(cert = c("x", "y"))), TRUE, NA_real_, NULL, NULL, NULL)), has = "PEM")
  add("start_tls_pass_num", quote(C("mirai_host_start", structure("tls+tcp://127.0.0.1:0", tls = list(cert = c("x", "y"), pass = 1)), TRUE, NA_real_, NULL, NULL, NULL)), has = "`tls$pass`")
  # other host routines' arguments
  add("wait_conn_n_neg", quote(C("mirai_host_wait_connections", h, -1, 0)), has = "`n`")
  add("wait_conn_n_na", quote(C("mirai_host_wait_connections", h, NA, 0)), has = "`n`")
  add("wait_conn_n_chr", quote(C("mirai_host_wait_connections", h, "a", 0)), has = "`n`")
  add("wait_conn_n_huge", quote(C("mirai_host_wait_connections", h, 1e300, 0)), check = quote(identical(.value, FALSE)))
  add("wait_conn_timeout_chr", quote(C("mirai_host_wait_connections", h, 0, "a")), has = "`timeout`")
  add("wait_conn_timeout_huge", quote(C("mirai_host_wait_connections", h, 0, 1e300)), check = quote(isTRUE(.value)))
  add("launch_program_null", quote(C("mirai_host_launch", h, NULL, character())), has = "`program`")
  add("launch_program_na", quote(C("mirai_host_launch", h, NA_character_, character())), has = "`program`")
  add("launch_args_num", quote(C("mirai_host_launch", h, "true", 1)), has = "`args`")
  add("launch_args_na", quote(C("mirai_host_launch", h, "true", NA_character_)), has = "`args`")
  add("launch_missing_program", quote(C("mirai_host_launch", h, "/nonexistent/mirai-hard-xyz", character())))
  add("wait_admit_timeout_chr", quote(C("mirai_host_wait_admit", h, "a")), has = "`timeout`")
  add("reset_exit_chr", quote(C("mirai_host_reset", C("mirai_host_start", local_url(), TRUE, NA_real_, NULL, NULL, NULL), "a")), has = "`exit`")
  # tasks
  add("submit_timeout_neg", quote(C("mirai_submit", h, 1, -1, NULL)), has = "`timeout`")
  add("submit_timeout_chr", quote(C("mirai_submit", h, 1, "a", NULL)), has = "`timeout`")
  add("submit_timeout_len2", quote(C("mirai_submit", h, 1, c(1, 2), NULL)), has = "`timeout`")
  add("submit_hooks_chr", quote(C("mirai_submit", h, 1, NULL, "a")), has = "`hooks`")
  add("submit_hooks_shape", quote(C("mirai_submit", h, 1, NULL, list("a", list(1), list(2)))), has = "`hooks`")
  add("submit_hooks_len", quote(C("mirai_submit", h, 1, NULL, list(c("a", "b"), list(identity), list(identity)))), has = "`hooks`")
  add("submit_hook_not_raw", quote(C("mirai_submit", h, structure(new.env(), class = "foo"), NULL,
                                     serial_config("foo", function(x) "not raw", identity))),
      error = "Serialization function for `foo` did not return a raw vector")
  add("submit_hook_errors", quote(C("mirai_submit", h, structure(new.env(), class = "foo"), NULL,
                                    serial_config("foo", function(x) stop("hook boom"), identity))), has = "hook boom")
  add("everywhere_min_neg", quote(C("mirai_everywhere", h, 1, -1, NULL)), has = "`min`")
  add("everywhere_min_na", quote(C("mirai_everywhere", h, 1, NA, NULL)), has = "`min`")
  add("everywhere_min_chr", quote(C("mirai_everywhere", h, 1, "a", NULL)), has = "`min`")
  add("take_hooks_chr_keeps_outcome", quote({
    e <- tryCatch(C("mirai_take", tr, "a", NULL), error = conditionMessage)
    c(e, format(C("mirai_take", tr, NULL, NULL)))
  }), check = quote(grepl("`hooks`", .value[1L], fixed = TRUE) && .value[2L] == "19"))
  add("take_pending_sentinel", quote(C("mirai_take", t, NULL, "pending")), check = quote(identical(.value, "pending")))
  add("wait_timeout_chr", quote(C("mirai_wait", list(), "a")), has = "`timeout`")
  add("wait_timeout_len2", quote(C("mirai_wait", t, c(1, 2))), has = "`timeout`")
  add("race_timeout_chr", quote(C("mirai_race", list(t), "a")), has = "`timeout`")
  add("race_timeout_na_resolved", quote(C("mirai_race", list(1, tr), NA)), check = quote(identical(.value, 2L)))
  add("wait_timeout_na_resolved", quote(C("mirai_wait", tr, NA)), check = quote(isTRUE(.value)))
  add("later_fun_num", quote(C("mirai_later", t, 1, 0L)), has = "`fun`")
  add("later_loop_na", quote(C("mirai_later", t, identity, NA)), has = "`loop_id`")
  add("later_loop_chr", quote(C("mirai_later", t, identity, "a")), has = "`loop_id`")
  add("later_loop_unknown", quote({ loadNamespace("later"); C("mirai_later", tr, function() NULL, 99999L); later::run_now(0.1); "alive" }),
      check = quote(identical(.value, "alive")))
  add("serialize_hooks_num", quote(C("mirai_serialize", 1, 1)), has = "`hooks`")
  add("unserialize_chr", quote(C("mirai_unserialize", "a", NULL)), has = "`raw`")
  add("unserialize_null", quote(C("mirai_unserialize", NULL, NULL)), has = "`raw`")
  add("unserialize_empty", quote(C("mirai_unserialize", raw(0), NULL)))
  add("wrap_num", quote(C("mirai_wrap", 1, NULL)), has = "`aio`")
  add("wrap_freed", quote(C("mirai_wrap", freedt, NULL)), has = "`aio`")
  add("data_null", quote(C("mirai_data", NULL)), has = "`frame`")
  add("data_num", quote(C("mirai_data", 1)), has = "`frame`")
  add("data_emptyenv", quote(C("mirai_data", emptyenv())))
  add("data_globalenv", quote(C("mirai_data", globalenv())))
  add("value_num", quote(C("mirai_value", 1)), has = "`x` must be a mirai")
  add("value_fake_mirai", quote(C("mirai_value", structure(new.env(), class = "mirai"))), check = quote(is.null(.value)))
  add("value_fake_aio", quote(C("mirai_value", local({ m <- structure(new.env(), class = "mirai"); m$.aio <- 1; m$.idx <- "x"; m }))), check = quote(is.null(.value)))
  add("stop_fake_idx", quote(C("mirai_stop", local({ m <- structure(new.env(), class = "mirai"); m$.aio <- freedt; m$.idx <- 99L; m }))), check = quote(identical(.value, FALSE)))
  add("collect_values_chr", quote(C("mirai_collect", list(1), "a")), has = "`values`")
  add("chunk_n_zero", quote(C("mirai_submit_chunk", h, list(map = list(1)), NULL, 0)), has = "`n`")
  add("chunk_n_na", quote(C("mirai_submit_chunk", h, list(map = list(1)), NULL, NA)), has = "`n`")
  add("chunk_n_huge", quote(C("mirai_submit_chunk", h, list(map = list(1)), NULL, 1e10)), has = "`n`")
  add("chunk_n_chr", quote(C("mirai_submit_chunk", h, list(map = list(1)), NULL, "a")), has = "`n`")
  add("eval_data_num", quote(C("mirai_eval", 1, NULL, NULL, ns)), has = "`data`")
  add("eval_ns_num", quote(C("mirai_eval", list(expr = 1), NULL, NULL, 1)), has = "`ns`")
  add("eval_error_value", quote(C("mirai_eval", list(expr = quote(stop("boom"))), NULL, NULL, ns)),
      check = quote(is_mirai_error(.value) && .value$message == "boom"))
  add("eval_odd_fields", quote(C("mirai_eval", list(globals = 1, args = "a", expr = quote(1 + 1), map = "x", seeds = 1), NULL, NULL, ns)),
      check = quote(identical(.value, 2)))
  add("eval_map_bad_seeds", quote({
    v <- C("mirai_eval", list(expr = quote(.x), map = list(1, 2), seeds = list("a")), list(), identity, ns)
    rm(".Random.seed", envir = globalenv())
    v
  }),
      check = quote(is.list(.value) && length(.value) == 2L))
  add("dirty_chr", quote(C("mirai_dirty", "a")), check = quote(isTRUE(.value)))
  add("clean_bad_base", quote(C("mirai_clean", list(1, 2, 3))), check = quote(isTRUE(.value)))
  add("tls_generate_null", quote(C("mirai_tls_generate", NULL)), has = "`cn`")
  add("tls_generate_na", quote(C("mirai_tls_generate", NA_character_)), has = "`cn`")
  add("tls_zero_num", quote(C("mirai_tls_zero_config", 1)), has = "`cn`")
  add("daemon_args_num", quote(C("mirai_daemon_args", 1, "1")), has = "`names`")
  add("daemon_args_values_num", quote(C("mirai_daemon_args", "a", 1)), has = "`values`")
  add("daemon_args_len", quote(C("mirai_daemon_args", c("a", "b"), "1")), has = "same length")
  add("daemon_args_inject", quote(C("mirai_daemon_args", "a", "1); system('x'")), has = "not an R logical or numeric literal")
  add("daemon_args_na", quote(C("mirai_daemon_args", "a", NA_character_)), has = "NA")
  add("daemon_args_blank_name", quote(C("mirai_daemon_args", "", "1")))
  add("launch_cmd_null", quote(C("mirai_launch_command", NULL, "Rscript", NULL)), has = "`spec$url`")
  add("launch_cmd_dispatcher_chr", quote(C("mirai_launch_command", list(url = "tcp://h:1", dispatcher = "a"), "Rscript", NULL)), has = "`spec$dispatcher`")
  add("launch_cmd_dots_num", quote(C("mirai_launch_command", list(url = "tcp://h:1", dispatcher = TRUE, dots = 1), "Rscript", NULL)), has = "`spec$dots`")
  add("launch_cmd_dots_inject", quote(C("mirai_launch_command", list(url = "tcp://h:1", dispatcher = TRUE, dots = ",a=1);x("), "Rscript", NULL)))
  add("launch_cmd_tlscert_num", quote(C("mirai_launch_command", list(url = "tcp://h:1", dispatcher = TRUE, tlscert = 1), "Rscript", NULL)), has = "`spec$tlscert`")
  add("launch_cmd_rs_chr", quote(C("mirai_launch_command", list(url = "tcp://h:1", dispatcher = TRUE, rs = "a"), "Rscript", NULL)), has = "`spec$rs`")
  add("launch_cmd_rscript_na", quote(C("mirai_launch_command", list(url = "tcp://h:1", dispatcher = TRUE), NA_character_, NULL)), has = "`rscript`")
  add("launch_cmd_deploy_num", quote(C("mirai_launch_command", list(url = "tcp://h:1", dispatcher = TRUE), "Rscript", 1)))
  add("launch_cmd_deploy_command_num", quote(C("mirai_launch_command", list(url = "tcp://h:1", dispatcher = TRUE), "Rscript", list(command = 1, args = ".", quote = FALSE))), has = "`remote$command`")
  add("launch_cmd_tunnel_huge", quote(C("mirai_launch_command", list(url = "tcp://h:1", dispatcher = TRUE), "Rscript", list(command = "ssh", args = ".", quote = TRUE, tunnel = 1e10))), has = "tunnel")
  add("daemon_run_url_null", quote(C("mirai_daemon_run", NULL, FALSE, TRUE, Inf, Inf, Inf, identity, identity)), has = "`url`")
  add("daemon_run_asyncdial_chr", quote(C("mirai_daemon_run", refused, "a", TRUE, Inf, Inf, Inf, identity, identity)), has = "`asyncdial`")
  add("daemon_run_asyncdial_na", quote(C("mirai_daemon_run", refused, NA, TRUE, Inf, Inf, Inf, identity, identity)), has = "`asyncdial`")
  add("daemon_run_autoexit_chr", quote(C("mirai_daemon_run", refused, FALSE, "a", Inf, Inf, Inf, identity, identity)), has = "`autoexit`")
  add("daemon_run_idletime_neg", quote(C("mirai_daemon_run", refused, FALSE, TRUE, -1, Inf, Inf, identity, identity)), has = "`idletime`")
  add("daemon_run_walltime_chr", quote(C("mirai_daemon_run", refused, FALSE, TRUE, Inf, "a", Inf, identity, identity)), has = "`walltime`")
  add("daemon_run_maxtasks_neg", quote(C("mirai_daemon_run", refused, FALSE, TRUE, Inf, Inf, -1, identity, identity)), has = "`maxtasks`")
  add("daemon_run_init_num", quote(C("mirai_daemon_run", refused, FALSE, TRUE, Inf, Inf, Inf, 1, identity)), has = "`init`")
  add("daemon_run_eval_num", quote(C("mirai_daemon_run", refused, FALSE, TRUE, Inf, Inf, Inf, identity, 1)), has = "`eval`")
  add("daemon_run_tlscert_num", quote(C("mirai_daemon_run", structure(refused, tlscert = 1), FALSE, TRUE, Inf, Inf, Inf, identity, identity)), has = "`tlscert`")
  add("daemon_run_refused", quote(C("mirai_daemon_run", refused, FALSE, TRUE, Inf, Inf, Inf, identity, identity)), error = "6 | Connection refused")
  add("arity", quote(.Call(get("mirai_host_url", envir = ns))), has = "mirai_host_url")
  add("arity_extra", quote(.Call(get("mirai_resolved", envir = ns), t, t)), has = "mirai_resolved")
  # a reset host: submissions are errors, waits end, values are 19
  reset_msg <- "the compute profile has been reset"
  add("reset_submit", quote(C("mirai_submit", hr, 1, NULL, NULL)), error = reset_msg)
  add("reset_async", quote(C("mirai_async", hr, 1, NULL, NULL)), error = reset_msg)
  add("reset_everywhere", quote(C("mirai_everywhere", hr, 1, 2, NULL)), error = reset_msg)
  add("reset_chunk", quote(C("mirai_submit_chunk", hr, list(map = list(1)), NULL, 1)), error = reset_msg)
  add("reset_launch", quote(C("mirai_host_launch", hr, "true", character())), error = reset_msg)
  add("reset_again", quote(C("mirai_host_reset", hr, TRUE)), check = quote(is.null(.value)))
  add("reset_status", quote(C("mirai_host_status", hr)$counters), check = quote(length(.value) == 5L))
  add("reset_url", quote(C("mirai_host_url", hr)), check = quote(is.character(.value)))
  add("reset_wait_connections", quote(C("mirai_host_wait_connections", hr, 1, 50)), check = quote(identical(.value, FALSE)))
  add("reset_wait_admit", quote(C("mirai_host_wait_admit", hr, 50)), check = quote(is.logical(.value)))
  add("reset_exit_daemons", quote(C("mirai_host_exit_daemons", hr)), check = quote(is.null(.value)))
  add("reset_take", quote(C("mirai_take", tr, NULL, NULL)), check = quote(identical(unclass(.value), 19L)))
  add("reset_wait_forever", quote(C("mirai_wait", tr, -1)), check = quote(isTRUE(.value)))
  add("reset_cancel", quote(C("mirai_cancel", hr, tr)), check = quote(identical(.value, FALSE)))
  add("cross_host_cancel", quote({
    h2 <- C("mirai_host_start", local_url(), TRUE, NA_real_, NULL, NULL, NULL)
    t2 <- C("mirai_submit", h2, 2, NULL, NULL)
    c(C("mirai_cancel", h2, t), C("mirai_resolved", t), C("mirai_resolved", t2))
  }), check = quote(identical(.value, c(FALSE, FALSE, FALSE))))
  add("host_survives", quote(C("mirai_host_status", h)$counters[3L]), check = quote(.value >= 1L))
  expect_cases(cases, run_child(cases, bridge_setup))
})

test_that("bridge: corrupt and truncated payloads are errors", {
  cases <- list(
    random = case({
      set.seed(42)
      for (i in 1:200) tryCatch(C("mirai_unserialize", as.raw(sample(0:255, sample(1:300, 1L), TRUE)), NULL), error = function(e) NULL)
      "alive"
    }, check = identical(.value, "alive")),
    random_with_header = case({
      set.seed(7)
      heads <- list(charToRaw("B\n"), charToRaw("X\n"), charToRaw("A\n"), charToRaw("MRH\001"))
      for (i in 1:200) tryCatch(C("mirai_unserialize", c(heads[[i %% 4L + 1L]], as.raw(sample(0:255, sample(1:300, 1L), TRUE))),
                                  serial_config("foo", identity, identity)), error = function(e) NULL)
      "alive"
    }, check = identical(.value, "alive")),
    truncated = case({
      # (a closure without srcref: the test file's source would make the payload large)
      good <- C("mirai_serialize", list(a = 1:10, b = "x", f = as.function(alist(x = , x + 1))), NULL)
      msgs <- vapply(unique(c(seq_len(min(200L, length(good) - 1L)), length(good) - 1:50)), function(k)
        tryCatch({ C("mirai_unserialize", good[seq_len(k)], NULL); "no error" }, error = conditionMessage), "")
      unique(msgs)
    }, check = !"no error" %in% .value),
    hook_trailer = case({
      cfg <- serial_config("foo", function(x) as.raw(1:3), function(r) r)
      obj <- structure(new.env(), class = "foo")
      sg <- C("mirai_serialize", list(obj, obj), cfg)
      n <- length(sg)
      bad <- list(sg[1:4], sg[seq_len(n - 1L)], replace(sg, (n - 7L):n, as.raw(255)),
                  replace(sg, (n - 15L):(n - 8L), as.raw(255)), c(charToRaw("MRH\001"), raw(16)))
      vapply(bad, function(b) tryCatch({ C("mirai_unserialize", b, cfg); "no error" }, error = conditionMessage), "")
    }, check = !"no error" %in% .value),
    hook_format_without_hooks = case({
      cfg <- serial_config("foo", function(x) as.raw(1:3), function(r) r)
      C("mirai_unserialize", C("mirai_serialize", structure(new.env(), class = "foo"), cfg), NULL)
    }, has = "foo"),
    huge_length_claim = case(C("mirai_unserialize", c(charToRaw("B\n"), as.raw(c(3, 0, 0, 0, 0, 2, 4, 0, 0, 5, 3, 0)),
                                                      as.raw(c(5, 0, 0, 0)), charToRaw("UTF-8"),
                                                      as.raw(c(24, 0, 0, 0)), as.raw(c(255, 255, 255, 127))), NULL))
  )
  expect_cases(cases, run_child(cases, bridge_setup))
})
