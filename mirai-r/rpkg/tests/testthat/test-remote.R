# Remote launch commands through the R API: hostile inputs, every deployment form with real
# daemons, scheduler scripts (sbatch, qsub for SGE and PBS, bsub). http_config: test-http-config.R.

fake <- function(body) {
  f <- tempfile()
  writeLines(c("#!/bin/sh", body), f)
  Sys.chmod(f, "0755")
  f
}

# A fake Rscript that writes each argument, NUL-terminated, to `out`.
args_recorder <- function(out) fake(sprintf("for a in \"$@\"; do printf '%%s\\0' \"$a\"; done > '%s'", out))
read_args <- function(out) {
  if (!file.exists(out)) return(NULL)
  r <- readBin(out, "raw", file.size(out))
  if (!length(r) || r[length(r)] != as.raw(0L)) return(NULL)
  ends <- which(r == as.raw(0L))
  starts <- c(1L, head(ends, -1L) + 1L)
  mapply(function(a, b) if (b > a) rawToChar(r[a:(b - 1L)]) else "", starts, ends)
}

hostile_url <- "ipc:///tmp/mirai it's a \"dir\" $(touch mirai-pwned) `touch mirai-pwned`"
hostile_ca <- "/tmp/it's a \"ca\" $(touch /tmp/mirai-pwned).pem\nEOF\n"

test_that("hostile URLs, certificate paths and argument names reach the daemon intact through each shell", {
  unlink(c("/tmp/mirai-pwned", "mirai-pwned"))
  daemons(url = hostile_url, dispatcher = FALSE, maxtasks = 5,
          `a'); q('no'); x=('` = 1, `odd name` = TRUE, .compute = "hostile")
  withr::defer(daemons(0, .compute = "hostile"))
  expect_identical(nextget("url", .compute = "hostile"), hostile_url)
  expect_identical(nextget("dots", .compute = "hostile"), ",maxtasks=5,`a'); q('no'); x=('`=1,`odd name`=TRUE")
  # A real daemon dials the hostile URL through two shells and computes.
  launch_remote(1, remote_config("sh", c("-c", "."), rscript = rscript, quote = TRUE), .compute = "hostile")
  expect_true(wait_until(function() status("hostile")$connections == 1L))
  expect_identical(mirai(6 * 7, .compute = "hostile")[], 42)
  out <- tempfile()
  rec <- args_recorder(out)
  check <- function(what) {
    expect_true(wait_until(function() !is.null(read_args(out)), 10), label = what)
    a <- read_args(out)
    unlink(out)
    expect_identical(a[1L], "-e", label = what)
    call <- parse(text = a[2L])[[1L]]
    expect_identical(call[[2L]], hostile_url, label = what)
    expect_identical(eval(call$tlscert), c(hostile_ca, ""), label = what)
    expect_identical(call[["a'); q('no'); x=('"]], 1, label = what)
    expect_true(call[["odd name"]], label = what)
    expect_identical(call$maxtasks, 5, label = what)
    expect_length(eval(call$rs), 7L)
  }
  # Through one shell, as is (remote_config(quote = FALSE)).
  launch_remote(1, remote_config("exec", c("."), rscript = rec), maxtasks = 5, `a'); q('no'); x=('` = 1,
                `odd name` = TRUE, tlscert = c(hostile_ca, ""), .compute = "hostile")
  check("quote = FALSE")
  # Through two shells, as over ssh.
  launch_remote(1, remote_config("sh", c("-c", "."), rscript = rec, quote = TRUE), .compute = "hostile")
  check("quote = TRUE")
  # As a job script fed to a scheduler (here the scheduler is `sh` itself), with hostile options.
  # (`EOF` is a line of the script: a shell function here, so that the line runs quietly.)
  opts <- "  #SBATCH --job-name='it''s' \"$(touch /tmp/mirai-pwned)\"\nEOF() { :; }\nEOF\n\texport MIRAI_X=\"$(printf ok)\""
  launch_remote(1, cluster_config("sh", opts, rscript = rec), .compute = "hostile")
  check("cluster_config")
  expect_false(file.exists("/tmp/mirai-pwned") || file.exists("mirai-pwned"))
})

test_that("job scripts run by a scheduler shell start real daemons (zero-config TLS material inside)", {
  daemons(url = "tls+tcp://127.0.0.1:0", .compute = "script")
  withr::defer(daemons(0, .compute = "script"))
  # The here-document carries the multi-line certificate and key; `sh` plays the scheduler.
  launch_remote(2, cluster_config("sh", "export MIRAI_VIA=script\nEOF() { :; }\nEOF", rscript = rscript), .compute = "script")
  expect_true(wait_until(function() status("script")$connections == 2L))
  expect_identical(unique(unlist(mirai_map(1:4, function(i) Sys.getenv("MIRAI_VIA"), .compute = "script")[])), "script")
})

test_that("launch_remote without a command returns the commands for manual deployment; they work", {
  daemons(url = "tcp://127.0.0.1:0", .compute = "manual")
  withr::defer(daemons(0, .compute = "manual"))
  cmds <- launch_remote(2, remote_config(rscript = shQuote(rscript)), .compute = "manual")
  expect_s3_class(cmds, "miraiLaunchCmd")
  expect_length(cmds, 2L)
  expect_identical(capture.output(print(cmds)), c("[1]", cmds[1L], "", "[2]", cmds[2L], ""))
  expect_identical(status("manual")$connections, 0L)
  # Deployed by hand, here by a shell.
  for (cmd in cmds) system(cmd, wait = FALSE)
  expect_true(wait_until(function() status("manual")$connections == 2L))
  expect_identical(mirai(1, .compute = "manual")[], 1)
})

test_that("cluster_config scripts for qsub (SGE, PBS) and bsub", {
  daemons(url = "tcp://127.0.0.1:0", .compute = "sched")
  withr::defer(daemons(0, .compute = "sched"))
  url <- nextget("url", .compute = "sched")
  cases <- list(
    qsub_sge = c("#$ -N mirai", "#$ -l h_vmem=4G", "#$ -cwd"),
    qsub_pbs = c("#PBS -N mirai", "#PBS -l select=1:ncpus=1:mem=4gb", "#PBS -j oe", "cd \"$PBS_O_WORKDIR\""),
    bsub = c("#BSUB -J mirai", "#BSUB -n 1", "#BSUB -R \"rusage[mem=4096]\"", "module load R/4.5.0")
  )
  for (nm in names(cases)) {
    script <- tempfile()
    submit <- fake(sprintf("cat > '%s'", script))
    opts <- paste0("  ", cases[[nm]], collapse = "\n")
    cfg <- cluster_config(submit, opts)
    expect_identical(cfg$args[1L], sprintf("%s<<'EOF'\n#!/bin/sh\n%s\n", submit, paste(cases[[nm]], collapse = "\n")))
    launch_remote(1, cfg, .compute = "sched")
    n <- length(cases[[nm]]) + 2L
    expect_true(wait_until(function() file.exists(script) && length(readLines(script, warn = FALSE)) >= n, 10), label = nm)
    expect_identical(readLines(script), c("#!/bin/sh", cases[[nm]], sprintf("Rscript -e 'mirai::daemon(\"%s\")'", url)), label = nm)
  }
  # With empty options an empty line follows the shebang.
  script <- tempfile()
  launch_remote(1, cluster_config(fake(sprintf("cat > '%s'", script))), .compute = "sched")
  expect_true(wait_until(function() file.exists(script) && length(readLines(script, warn = FALSE)) >= 3L, 10))
  expect_identical(readLines(script), c("#!/bin/sh", "", sprintf("Rscript -e 'mirai::daemon(\"%s\")'", url)))
})

test_that("ssh_config refuses remotes that are not ssh://[user@]host[:port]", {
  expect_error(ssh_config("ssh://h;touch /tmp/mirai-pwned"), "invalid SSH remote", fixed = TRUE)
  expect_error(ssh_config("ssh://$(id)@h"), "invalid SSH remote", fixed = TRUE)
  expect_error(ssh_config("ssh://h", timeout = "10; id"), "`timeout` must be a number of seconds", fixed = TRUE)
  expect_identical(ssh_config("ssh://[::1]:2200")$args[[1L]], c("-o ConnectTimeout=10 -fTp 2200", "::1", "."))
  expect_identical(ssh_config("ssh://u.x-1@node-1.example.org")$args[[1L]],
                   c("-o ConnectTimeout=10 -fTp 22", "u.x-1@node-1.example.org", "."))
})
