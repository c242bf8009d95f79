# One compute profile, three deployment types: local daemons, a daemon over SSH and daemons from
# Slurm, all dialing the same zero-config TLS URL and served from one FIFO queue.
skip_without_services()

test_that("local, SSH and Slurm daemons share one TLS URL and one FIFO queue", {
  sshd <- start_service("sshd")
  slurm <- start_service("slurm")
  use_slurm(slurm)
  daemons(url = "tls+tcp://127.0.0.1:0", .compute = "mixed")
  withr::defer(daemons(0, .compute = "mixed"))
  port <- readLines(file.path(sshd$dir, "port"))
  launch_local(2, .compute = "mixed")
  # The client certificate and key travel inside the launch command: through ssh's two shells,
  # and through the job script's here-document.
  launch_remote(1, ssh_config(sprintf("ssh://root@127.0.0.1:%s", port), command = file.path(sshd$dir, "ssh"),
                              rscript = remote_rscript()), .compute = "mixed")
  launch_remote(2, cluster_config("sbatch --quiet", sprintf("#SBATCH --output=%s/jobs/%%j.out", slurm$dir),
                                  rscript = rscript), .compute = "mixed")
  expect_true(wait_until(function() status("mixed")$connections == 5L, 120))

  d <- tempfile("gates")
  dir.create(d)
  # A task that says where it runs, then waits for its gate file.
  gated <- function(name) mirai({
    kind <- if (nzchar(Sys.getenv("SLURM_JOB_ID"))) "slurm" else if (nzchar(Sys.getenv("SSH_CONNECTION"))) "ssh" else "local"
    writeLines(c(kind, Sys.getpid()), file.path(d, name))
    while (!file.exists(file.path(d, paste0("go-", name)))) Sys.sleep(0.02)
    c(name = name, kind = kind)
  }, d = d, name = name, .compute = "mixed")
  started <- function(name) file.exists(file.path(d, name))
  where <- function(name) readLines(file.path(d, name))
  open_gate <- function(name) file.create(file.path(d, paste0("go-", name)))

  # Five tasks occupy the five daemons, one each.
  first <- lapply(sprintf("g%d", 1:5), gated)
  expect_true(wait_until(function() all(vapply(sprintf("g%d", 1:5), started, TRUE)), 60))
  kinds <- vapply(sprintf("g%d", 1:5), function(g) where(g)[1L], "")
  pids <- vapply(sprintf("g%d", 1:5), function(g) where(g)[2L], "")
  expect_identical(sort(unname(kinds)), c("local", "local", "slurm", "slurm", "ssh"))
  expect_length(unique(pids), 5L)
  # Three more wait in the profile's one queue.
  queued <- lapply(sprintf("q%d", 1:3), gated)
  expect_true(wait_until(function() identical(unname(status("mixed")$mirai[c("awaiting", "executing")]), c(3L, 5L)), 10))
  # Each daemon that frees up takes the oldest queued task, whatever its deployment type.
  for (i in 1:3) {
    g <- names(kinds)[match(c("ssh", "slurm", "local")[i], kinds)]
    open_gate(g)
    q <- sprintf("q%d", i)
    expect_true(wait_until(function() started(q), 60), label = q)
    expect_identical(where(q), where(g), label = q) # same daemon (kind and pid)
    expect_false(any(vapply(sprintf("q%d", seq_len(3L))[-seq_len(i)], started, TRUE)), label = q)
  }
  for (n in c(sprintf("g%d", 1:5), sprintf("q%d", 1:3))) open_gate(n)
  res <- lapply(c(first, queued), function(m) m[])
  expect_identical(vapply(res, `[[`, "", "name"), c(sprintf("g%d", 1:5), sprintf("q%d", 1:3)))
  expect_identical(vapply(res[6:8], `[[`, "", "kind"), c("ssh", "slurm", "local"))
  # Then a batch spread over all of them.
  more <- mirai_map(1:40, function(i) {
    Sys.sleep(0.05)
    if (nzchar(Sys.getenv("SLURM_JOB_ID"))) "slurm" else if (nzchar(Sys.getenv("SSH_CONNECTION"))) "ssh" else "local"
  }, .compute = "mixed")[]
  expect_length(more, 40L)
  expect_setequal(unique(unlist(more)), c("local", "ssh", "slurm"))
  expect_identical(info("mixed")[["cumulative"]], 5L)
})
