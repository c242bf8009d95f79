# Launch commands, remote configurations and URLs (spec 2.6, 3.12).

test_that("local_url and host_url", {
  expect_match(local_url(), "^abstract://[0-9a-f]{24}$")
  expect_false(local_url() == local_url())
  expect_identical(local_url(tcp = TRUE), "tcp://127.0.0.1:0")
  expect_identical(local_url(TRUE, 5555), "tcp://127.0.0.1:5555")
  h <- host_url()
  expect_true(all(grepl("^tcp://[^:]+:0$", h)))
  expect_false(any(grepl("^tcp://127\\.", h)))
  expect_true(all(grepl("^tls\\+tcp://[^:]+:5555$", host_url(tls = TRUE, port = 5555))))
})

test_that("configuration constructors", {
  expect_identical(remote_config(), list(command = NULL, args = c("", "."), rscript = "Rscript", quote = FALSE, tunnel = FALSE))
  expect_error(remote_config(args = c("a", "b")), "`.` must be an element of the character vector(s) supplied to `args`", fixed = TRUE)
  expect_error(remote_config(args = list(c("."), c("b"))), "`.` must be an element", fixed = TRUE)
  s <- ssh_config(c("ssh://user@h:2222", "ssh://h2"), timeout = 5)
  expect_identical(s, list(command = "ssh",
                           args = list(c("-o ConnectTimeout=5 -fTp 2222", "user@h", "."), c("-o ConnectTimeout=5 -fTp 22", "h2", ".")),
                           rscript = "Rscript", quote = TRUE, tunnel = FALSE))
  expect_true(ssh_config("ssh://h", tunnel = TRUE)$tunnel)
  cc <- cluster_config("sbatch", "  #SBATCH --job-name=mirai\n\t#SBATCH --mem=16G\n module load R/4.5.0")
  expect_identical(cc, list(command = "/bin/sh",
                            args = c("sbatch<<'EOF'\n#!/bin/sh\n#SBATCH --job-name=mirai\n#SBATCH --mem=16G\nmodule load R/4.5.0\n", ".", "\nEOF"),
                            rscript = "Rscript", quote = NULL))
  expect_identical(cluster_config(c("qsub", "x"))$args[1L], "qsub<<'EOF'\n#!/bin/sh\n\n")
  h <- http_config()
  expect_identical(names(h), c("type", "url", "method", "headers", "data", "dots", "cookie", "token"))
  expect_identical(h$type, "http")
})

test_that("launch commands follow the grammar; direct commands take fresh rs streams", {
  daemons(url = "tcp://127.0.0.1:0", dispatcher = FALSE, maxtasks = 10, cleanup = FALSE, walltime = 1e6, .compute = "cmd")
  on.exit(daemons(0, .compute = "cmd"))
  url <- nextget("url", .compute = "cmd")
  s0 <- nextget("stream", .compute = "cmd")
  cmds <- launch_remote(2, .compute = "cmd")
  expect_s3_class(cmds, "miraiLaunchCmd")
  s1 <- parallel::nextRNGStream(s0)
  expect_identical(unclass(cmds), c(
    sprintf("Rscript -e 'mirai::daemon(\"%s\",dispatcher=FALSE,maxtasks=10,cleanup=FALSE,walltime=1e+06,rs=c(%s))'", url, paste(s0, collapse = ",")),
    sprintf("Rscript -e 'mirai::daemon(\"%s\",dispatcher=FALSE,maxtasks=10,cleanup=FALSE,walltime=1e+06,rs=c(%s))'", url, paste(s1, collapse = ","))
  ))
  expect_identical(nextget("stream", .compute = "cmd"), parallel::nextRNGStream(s1))
  out <- capture.output(print(cmds))
  expect_identical(out, c("[1]", cmds[1], "", "[2]", cmds[2], ""))
  tls <- launch_remote(1, remote_config(rscript = "/opt/R/Rscript"), idletime = 5, tlscert = c("-----BEGIN-----\nA\n-----END-----", ""), .compute = "cmd")
  expect_match(tls, "^/opt/R/Rscript -e 'mirai::daemon\\(\"[^\"]+\",dispatcher=FALSE,idletime=5,tlscert=c\\(\"-----BEGIN-----\nA\n-----END-----\",\"\"\\),rs=c\\(")
  expect_identical(nextget("tls", .compute = "cmd"), c("-----BEGIN-----\nA\n-----END-----", ""))
  expect_error(launch_remote(3, ssh_config(c("ssh://a", "ssh://b")), .compute = "cmd"),
               "`n` must equal the length of `args`, or either must be 1", fixed = TRUE)
  daemons(url = "tcp://localhost:0", .compute = "cmd")
  expect_error(launch_remote(1, ssh_config("ssh://a", tunnel = TRUE), .compute = "cmd"),
               "SSH tunnelling requires daemons `url` hostname to be `127.0.0.1`", fixed = TRUE)
  daemons(url = "tcp://127.0.0.1:0", seed = 1, .compute = "cmd")
  expect_identical(unclass(launch_remote(1, .compute = "cmd")),
                   sprintf("Rscript -e 'mirai::daemon(\"%s\")'", nextget("url", .compute = "cmd")))
  daemons(url = "tcp://127.0.0.1:0", dispatcher = FALSE, seed = 1, .compute = "cmd")
  expect_identical(unclass(launch_remote(1, .compute = "cmd")),
                   sprintf("Rscript -e 'mirai::daemon(\"%s\",dispatcher=FALSE,rs=c())'", nextget("url", .compute = "cmd")))
})

fake <- function(body) {
  f <- tempfile()
  writeLines(c("#!/bin/sh", body), f)
  Sys.chmod(f, "0755")
  f
}

test_that("ssh tunnel and cluster commands are executed with the right argv and script", {
  out <- tempfile()
  ssh <- fake(sprintf("for a in \"$@\"; do echo \"$a\"; done > %s", out))
  daemons(url = "tcp://127.0.0.1:0", .compute = "ssh")
  on.exit(daemons(0, .compute = "ssh"))
  url <- nextget("url", .compute = "ssh")
  port <- sub("^.*:", "", url)
  cmd <- launch_remote(1, ssh_config("ssh://u@h:2222", tunnel = TRUE, command = ssh), .compute = "ssh")
  expect_true(wait_until(function() file.exists(out) && length(readLines(out)) >= 3L, 10))
  expect_identical(readLines(out), c(
    "-R", sprintf("%s:127.0.0.1:%s", port, port), "-o", "ConnectTimeout=10", "-fTp", "2222", "u@h",
    sprintf("Rscript -e 'mirai::daemon(\"%s\")'", url)
  ))
  expect_identical(unclass(cmd), sprintf("Rscript -e 'mirai::daemon(\"%s\")'", url))
  script <- tempfile()
  sbatch <- fake(sprintf("cat > %s", script))
  launch_remote(1, cluster_config(sbatch, "#SBATCH --mem=1G\n  module load R"), .compute = "ssh")
  expect_true(wait_until(function() file.exists(script) && length(readLines(script)) >= 4L, 10))
  expect_identical(readLines(script), c("#!/bin/sh", "#SBATCH --mem=1G", "module load R",
                                        sprintf("Rscript -e 'mirai::daemon(\"%s\")'", url)))
})

test_that("remote_config launches real daemons through the shell", {
  daemons(url = local_url(), .compute = "shell")
  on.exit(daemons(0, .compute = "shell"))
  launch_remote(1, remote_config(command = "sh", args = c("-c", "."), rscript = rscript, quote = TRUE), .compute = "shell")
  expect_true(wait_until(function() status("shell")$connections == 1L))
  launch_remote(1, remote_config(command = rscript, args = c("--vanilla", "."), rscript = ""), .compute = "shell")
  expect_true(wait_until(function() status("shell")$connections == 2L))
  expect_identical(mirai(1, .compute = "shell")[], 1)
  daemons(0, .compute = "shell")
  daemons(url = local_url(), remote = remote_config(command = "sh", args = c("-c", "."), rscript = rscript, quote = TRUE), .compute = "shell")
  expect_true(wait_until(function() status("shell")$connections == 1L))
})

test_that("a failing remote launch resets the new profile", {
  expect_error(daemons(url = local_url(), remote = list(command = "x", args = list(c("."), c("."), c(".")), rscript = "R"), n = 2, .compute = "bad"),
               "`n` must equal the length of `args`, or either must be 1", fixed = TRUE)
  expect_false(daemons_set("bad"))
})

# http_config() against a local HTTP server: test-http-config.R.
