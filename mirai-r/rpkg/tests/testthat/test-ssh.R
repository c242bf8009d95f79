# ssh_config() against a real OpenSSH server on 127.0.0.1 (scripts/services/sshd.sh).
skip_without_services()

test_that("ssh_config launches daemons over a real sshd that connect and compute", {
  svc <- start_service("sshd")
  port <- readLines(file.path(svc$dir, "port"))
  ssh <- file.path(svc$dir, "ssh")
  remote <- ssh_config(rep(sprintf("ssh://root@127.0.0.1:%s", port), 2L), command = ssh,
                       rscript = remote_rscript())
  expect_identical(remote$args[[1L]], c(sprintf("-o ConnectTimeout=10 -fTp %s", port), "root@127.0.0.1", "."))
  daemons(url = "tcp://127.0.0.1:0", remote = remote, .compute = "ssh")
  withr::defer(daemons(0, .compute = "ssh"))
  expect_true(wait_until(function() status("ssh")$connections == 2L, 60))
  # Each task reports the SSH session it runs in: both daemons were started by sshd.
  res <- mirai_map(1:8, function(i) {
    Sys.sleep(0.1)
    list(i = i, ssh = Sys.getenv("SSH_CONNECTION"), pid = Sys.getpid())
  }, .compute = "ssh")[]
  expect_identical(vapply(res, `[[`, 0L, "i"), 1:8)
  expect_true(all(grepl("^127\\.0\\.0\\.1 [0-9]+ 127\\.0\\.0\\.1 ", vapply(res, `[[`, "", "ssh"))))
  expect_length(unique(vapply(res, `[[`, 0L, "pid")), 2L)
  expect_identical(info("ssh")[["cumulative"]], 2L)
})

test_that("ssh_config(tunnel = TRUE): daemons that can reach the host only through the tunnel", {
  svc <- start_service("sshd")
  # Every connection of ssh-isolated is served in a network namespace of its own, where
  # 127.0.0.1 is not this machine's: a daemon there can dial the host only through `-R`.
  ssh <- file.path(svc$dir, "ssh-isolated")
  here <- Sys.readlink("/proc/self/ns/net")
  daemons(url = "tcp://127.0.0.1:0", .compute = "tun")
  withr::defer(daemons(0, .compute = "tun"))
  cmd <- launch_remote(2, ssh_config("ssh://root@127.0.0.1", tunnel = TRUE, command = ssh,
                                     rscript = remote_rscript()), .compute = "tun")
  expect_length(cmd, 2L)
  expect_true(wait_until(function() status("tun")$connections == 2L, 60))
  res <- mirai_map(1:6, function(i) list(i = i, ns = Sys.readlink("/proc/self/ns/net"), pid = Sys.getpid()),
                   .compute = "tun")[]
  expect_identical(vapply(res, `[[`, 0L, "i"), 1:6)
  ns <- unique(vapply(res, `[[`, "", "ns"))
  expect_false(here %in% ns)
  expect_length(ns, 2L) # one fresh namespace per connection
  # The 127.0.0.1 rule.
  daemons(url = "tcp://localhost:0", .compute = "tun2")
  withr::defer(daemons(0, .compute = "tun2"))
  expect_error(launch_remote(1, ssh_config("ssh://127.0.0.1", tunnel = TRUE, command = ssh), .compute = "tun2"),
               "SSH tunnelling requires daemons `url` hostname to be `127.0.0.1`", fixed = TRUE)
  expect_error(daemons(url = "tcp://localhost:0", remote = ssh_config("ssh://127.0.0.1", tunnel = TRUE), .compute = "tun3"),
               "SSH tunnelling requires daemons `url` hostname to be `127.0.0.1`", fixed = TRUE)
  expect_false(daemons_set("tun3"))
})

test_that("without a tunnel an isolated daemon cannot reach the host (the tunnel test is meaningful)", {
  svc <- start_service("sshd")
  ssh <- file.path(svc$dir, "ssh-isolated")
  daemons(url = "tcp://127.0.0.1:0", .compute = "notun")
  withr::defer(daemons(0, .compute = "notun"))
  url <- nextget("url", .compute = "notun")
  # A synchronous dial from the namespace fails at once: nothing listens at its 127.0.0.1.
  out <- suppressWarnings(system2(ssh, c("root@127.0.0.1", shQuote(sprintf(
    "%s -e %s", remote_rscript(), shQuote(sprintf("cat(tryCatch(mirai::daemon(\"%s\"), error = conditionMessage))", url))
  ))), stdout = TRUE, stderr = TRUE))
  expect_match(paste(out, collapse = "\n"), "6 | Connection refused", fixed = TRUE)
  expect_identical(status("notun")$connections, 0L)
})
