# cluster_config() against a real single-node Slurm on 127.0.0.1 (scripts/services/slurm.sh).
skip_without_services()

slurm_options <- function(svc) {
  sprintf("#SBATCH --job-name=mirai\n  #SBATCH --output=%s/jobs/%%j.out\n\t#SBATCH --cpus-per-task=1", svc$dir)
}

test_that("daemons(n, url, remote = cluster_config()) submits jobs whose daemons connect and compute", {
  svc <- start_service("slurm")
  use_slurm(svc)
  # sbatch passes this session's environment (R_LIBS included) to the jobs.
  remote <- cluster_config("sbatch", slurm_options(svc), rscript = rscript)
  daemons(2, url = "tcp://127.0.0.1:0", remote = remote, .compute = "slurm")
  withr::defer(daemons(0, .compute = "slurm"))
  expect_true(wait_until(function() status("slurm")$connections == 2L, 120))
  jobs <- slurm_jobs()
  expect_length(jobs, 2L)
  res <- mirai_map(1:10, function(i) {
    Sys.sleep(0.05)
    c(i = as.character(i), job = Sys.getenv("SLURM_JOB_ID"))
  }, .compute = "slurm")[]
  expect_identical(vapply(res, `[[`, "", "i"), as.character(1:10))
  expect_setequal(unique(vapply(res, `[[`, "", "job")), jobs)
  # The job script is the spec's shape (options stripped of leading blanks, then the command).
  script <- suppressWarnings(system2("scontrol", c("write", "batch_script", jobs[1L], "-"), stdout = TRUE, stderr = TRUE))
  expect_identical(script[1:4], c("#!/bin/sh", "#SBATCH --job-name=mirai",
                                  sprintf("#SBATCH --output=%s/jobs/%%j.out", svc$dir), "#SBATCH --cpus-per-task=1"))
  expect_match(script[5L], sprintf("^%s -e 'mirai::daemon\\(\"%s\"\\)'$", rscript, nextget("url", .compute = "slurm")))
  # Reset: the daemons leave and their jobs end.
  daemons(0, .compute = "slurm")
  expect_true(wait_until(function() length(slurm_jobs()) == 0L, 60))
})

test_that("scancel of a running daemon job fails its task with 19; the rest complete", {
  svc <- start_service("slurm")
  use_slurm(svc)
  remote <- cluster_config("sbatch", slurm_options(svc), rscript = rscript)
  daemons(2, url = "tcp://127.0.0.1:0", remote = remote, .compute = "scancel")
  withr::defer(daemons(0, .compute = "scancel"))
  expect_true(wait_until(function() status("scancel")$connections == 2L, 120))
  jobs <- slurm_jobs()
  expect_length(jobs, 2L)
  # A long task per daemon; each writes its job id to a file once it runs.
  marks <- tempfile()
  dir.create(marks)
  long <- lapply(1:2, function(i) mirai({
    writeLines(Sys.getenv("SLURM_JOB_ID"), file.path(marks, i))
    Sys.sleep(8)
    Sys.getenv("SLURM_JOB_ID")
  }, marks = marks, i = i, .compute = "scancel"))
  queued <- lapply(1:4, function(i) mirai(c(i = i, job = as.integer(Sys.getenv("SLURM_JOB_ID"))), i = i, .compute = "scancel"))
  expect_true(wait_until(function() length(list.files(marks)) == 2L, 60))
  victim <- readLines(file.path(marks, "1"))
  survivor <- setdiff(jobs, victim)
  expect_identical(system2("scancel", victim), 0L)
  r1 <- long[[1L]][]
  expect_true(is_error_value(r1))
  expect_identical(unclass(r1)[1L], 19L)
  expect_identical(long[[2L]][], survivor)
  res <- lapply(queued, function(m) m[])
  expect_identical(vapply(res, `[[`, 0L, "i"), 1:4)
  expect_true(all(vapply(res, `[[`, 0L, "job") == as.integer(survivor)))
  expect_true(wait_until(function() identical(slurm_jobs(), survivor), 30))
  expect_identical(status("scancel")$connections, 1L)
})
