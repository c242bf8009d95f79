# TLS (spec 3.11): zero configuration with mutual authentication, user-supplied credentials
# (with and without client certificates), refusals, and volume over TLS.

# A PKI made with the openssl tool in `dir`: a CA, a server certificate for 127.0.0.1, client
# certificates (valid and expired) issued by the CA, and a foreign CA with its own client.
make_pki <- function(dir) {
  dir.create(dir, recursive = TRUE, showWarnings = FALSE)
  ossl <- function(...) {
    out <- suppressWarnings(system2("openssl", c(...), stdout = TRUE, stderr = TRUE))
    if (!is.null(attr(out, "status"))) stop("openssl ", paste(c(...), collapse = " "), ":\n", paste(out, collapse = "\n"))
  }
  f <- function(x) file.path(dir, x)
  key <- function(name) ossl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", f(name))
  ca <- function(name, cn) {
    key(paste0(name, ".key"))
    ossl("req", "-x509", "-new", "-key", f(paste0(name, ".key")), "-subj", shQuote(paste0("/CN=", cn)), "-days", "3650",
         "-out", f(paste0(name, ".pem")), "-addext", shQuote("basicConstraints=critical,CA:TRUE"),
         "-addext", shQuote("keyUsage=critical,keyCertSign,cRLSign"))
  }
  issue <- function(name, ca, cn, ext, days = "365") {
    key(paste0(name, ".key"))
    writeLines(ext, f(paste0(name, ".ext")))
    ossl("req", "-new", "-key", f(paste0(name, ".key")), "-subj", shQuote(paste0("/CN=", cn)), "-out", f(paste0(name, ".csr")))
    ossl("x509", "-req", "-in", f(paste0(name, ".csr")), "-CA", f(paste0(ca, ".pem")), "-CAkey", f(paste0(ca, ".key")),
         "-CAcreateserial", "-days", days, "-out", f(paste0(name, ".pem")), "-extfile", f(paste0(name, ".ext")))
  }
  client_ext <- c("basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature", "extendedKeyUsage=clientAuth")
  ca("ca", "mirai test CA")
  issue("server", "ca", "127.0.0.1", c("basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature",
                                       "extendedKeyUsage=serverAuth", "subjectAltName=IP:127.0.0.1"))
  issue("client", "ca", "daemon", client_ext)
  issue("expired", "ca", "daemon", client_ext, days = "-1") # notAfter in the past
  ca("foreign", "someone else's CA")
  issue("fclient", "foreign", "daemon", client_ext)
  ossl("pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", f("server.key"), "-out", f("server-enc.key"), "-passout", "pass:s3cret")
  pem <- function(x) paste(readLines(f(x)), collapse = "\n")
  for (id in c("client", "expired", "fclient"))
    writeLines(c(readLines(f(paste0(id, ".pem"))), readLines(f(paste0(id, ".key")))), f(paste0(id, "-identity.pem")))
  list(dir = dir, f = f, pem = pem)
}

# Runs a TLS host in a child R process whose standard error (the engine's log) goes to a file.
# `args`: daemons() arguments. The host launches one local daemon, publishes its URL and client
# TLS material, serves until the test says go, then runs 20 tasks and reports.
start_tls_host <- function(args, dir) {
  io <- list(args = args, info = file.path(dir, "info.rds"), go = file.path(dir, "go"),
             result = file.path(dir, "result.rds"))
  saveRDS(io, file.path(dir, "io.rds"))
  code <- c(
    "io <- readRDS(commandArgs(TRUE)[1L])",
    "do.call(mirai::daemons, c(io$args, list(.compute = 'h')))",
    "mirai::launch_local(1, .compute = 'h')",
    "t0 <- Sys.time()",
    "while (mirai::status('h')$connections < 1L && Sys.time() - t0 < 30) Sys.sleep(0.05)",
    "saveRDS(list(url = mirai::nextget('url', .compute = 'h'), tls = mirai::nextget('tls', .compute = 'h')), paste0(io$info, '.tmp'))",
    "file.rename(paste0(io$info, '.tmp'), io$info)",
    "while (!file.exists(io$go) && Sys.time() - t0 < 120) Sys.sleep(0.05)",
    "res <- unlist(mirai::mirai_map(1:20, function(i) i * 2, .compute = 'h')[])",
    "saveRDS(list(res = res, info = mirai::info('h')), paste0(io$result, '.tmp'))",
    "file.rename(paste0(io$result, '.tmp'), io$result)",
    "mirai::daemons(0, .compute = 'h')"
  )
  script <- file.path(dir, "host.R")
  writeLines(code, script)
  log <- file.path(dir, "host.log")
  system2(rscript, c(script, file.path(dir, "io.rds")), stdout = log, stderr = log, wait = FALSE)
  if (!wait_until(function() file.exists(io$info), 60)) stop("the TLS host did not start:\n", paste(readLines(log), collapse = "\n"))
  c(io, readRDS(io$info), log = log)
}

# What a daemon dialing `url` with `tlscert` is told, run in a child R process.
dial <- function(url, tlscert = NULL) {
  f <- tempfile(fileext = ".rds")
  on.exit(unlink(f))
  saveRDS(list(url = url, tlscert = tlscert), f)
  code <- sprintf("a <- readRDS('%s'); cat(tryCatch({mirai::daemon(a$url, tlscert = a$tlscert, maxtasks = 1); 'connected'}, error = conditionMessage))", f)
  paste(suppressWarnings(system2(rscript, c("-e", shQuote(code)), stdout = TRUE, stderr = TRUE, timeout = 60)), collapse = "\n")
}

finish_tls_host <- function(h) {
  file.create(h$go)
  expect_true(wait_until(function() file.exists(h$result), 60))
  readRDS(h$result)
}

test_that("zero configuration: mutual TLS material generated per profile and embedded in launch commands", {
  daemons(url = "tls+tcp://127.0.0.1:0", tlscert = "overridden", .compute = "tls")
  withr::defer(daemons(0, .compute = "tls"))
  tls <- nextget("tls", .compute = "tls")
  expect_length(tls, 2L)
  expect_match(tls[1L], "^-----BEGIN CERTIFICATE-----\n")
  expect_identical(lengths(regmatches(tls[1L], gregexpr("BEGIN CERTIFICATE", tls[1L]))), 1L) # the CA alone
  expect_match(tls[2L], "^-----BEGIN CERTIFICATE-----\n[^-]+-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\n")
  url <- nextget("url", .compute = "tls")
  expect_match(url, "^tls\\+tcp://127\\.0\\.0\\.1:[0-9]+$")
  cmd <- launch_remote(1, .compute = "tls")
  expect_identical(unclass(cmd), sprintf("Rscript -e 'mirai::daemon(\"%s\",tlscert=c(\"%s\",\"%s\"))'", url, tls[1L], tls[2L]))
  # The call parses back to the same material (real newlines inside R strings).
  call <- parse(text = sub("^Rscript -e '(.*)'$", "\\1", cmd))[[1L]]
  expect_identical(eval(call$tlscert), tls)
  launch_local(2, .compute = "tls")
  expect_true(wait_until(function() status("tls")$connections == 2L))
  expect_identical(mirai(1 + 1, .compute = "tls")[], 2)
  daemons(url = "tls+tcp://127.0.0.1:0", .compute = "tls")
  tls2 <- nextget("tls", .compute = "tls")
  expect_false(tls2[1L] == tls[1L] || tls2[2L] == tls[2L]) # single-use: fresh every profile
})

test_that("1,000 tasks over zero-config TLS", {
  daemons(url = "tls+tcp://127.0.0.1:0", .compute = "tls1k")
  withr::defer(daemons(0, .compute = "tls1k"))
  launch_local(2, .compute = "tls1k")
  expect_true(wait_until(function() status("tls1k")$connections == 2L))
  ms <- lapply(1:1000, function(i) mirai(paste(rep("x", i %% 50), collapse = ""), i = i, .compute = "tls1k"))
  expect_identical(vapply(ms, function(m) m[], ""), vapply(1:1000, function(i) paste(rep("x", i %% 50), collapse = ""), ""))
  expect_identical(info("tls1k")[c("completed", "cumulative")], c(completed = 1000L, cumulative = 2L))
  res <- mirai_map(1:1000, function(i) i * 2L, .compute = "tls1k")[]
  expect_identical(unlist(res), (1:1000) * 2L)
  expect_identical(info("tls1k")[c("awaiting", "executing")], c(awaiting = 0L, executing = 0L))
})

test_that("zero configuration refuses strangers, names the cause to them and in the host's log, and keeps serving", {
  dir <- tempfile("tlsz")
  dir.create(dir)
  h <- start_tls_host(list(url = "tls+tcp://127.0.0.1:0"), dir)
  other <- tempfile("tlso")
  dir.create(other)
  # Credentials of another profile: another CA and another client identity.
  daemons(url = "tls+tcp://127.0.0.1:0", .compute = "other")
  withr::defer(daemons(0, .compute = "other"))
  foreign <- nextget("tls", .compute = "other")
  port <- sub("^.*:", "", h$url)
  # A plaintext daemon on the TLS port: refused by the host, and told why.
  plain <- dial(sprintf("tcp://127.0.0.1:%s", port))
  expect_match(plain, "^26 \\| Cryptographic error: .*the listener speaks TLS: dial it as tls\\+tcp://")
  # A daemon given the wrong CA: it does not trust the host.
  wrong_ca <- dial(h$url, foreign)
  expect_match(wrong_ca, "^27 \\| Peer could not be authenticated: TLS with '[^']+' failed: .*not signed by a trusted CA")
  # The right CA but a foreign client certificate: the host does not trust the daemon.
  foreign_id <- dial(h$url, c(h$tls[1L], foreign[2L]))
  expect_match(foreign_id, "^27 \\| Peer could not be authenticated: TLS with '[^']+' failed: the listener refused .*(unknown CA|certificate)")
  # The right CA and no client certificate at all.
  no_id <- dial(h$url, c(h$tls[1L], ""))
  expect_match(no_id, "^27 \\| Peer could not be authenticated: .*a client certificate is required")
  # The host kept serving its own daemon, and never counted the strangers.
  r <- finish_tls_host(h)
  expect_identical(r$res, (1:20) * 2)
  expect_identical(r$info[["connections"]], 1L)
  expect_identical(r$info[["cumulative"]], 1L)
  # Each refusal is logged by the host with its reason, in the order of the attempts.
  log <- paste(readLines(h$log), collapse = "\n")
  refusals <- regmatches(log, gregexpr("refused TLS connection from 127\\.0\\.0\\.1:[0-9]+ on tls\\+tcp://[^ ]+: [^\n]+", log))[[1L]]
  expect_length(refusals, 4L)
  expect_match(refusals[1L], "does not speak TLS \\(a plaintext tcp:// client on a tls\\+tcp:// port\\?\\)")
  expect_match(refusals[2L], "the dialing peer refused the connection: unknown CA")
  expect_match(refusals[3L], "the dialing peer's certificate was refused: unknown issuer")
  expect_match(refusals[4L], "presented no certificate, and one is required")
})

test_that("user-supplied certificates: vector, file, encrypted key with `pass`; client certificates off", {
  pki <- make_pki(tempfile("pki"))
  cert <- pki$pem("server.pem")
  key <- pki$pem("server.key")
  daemons(url = "tls+tcp://127.0.0.1:0", tls = c(cert, key), .compute = "tlsu")
  withr::defer(daemons(0, .compute = "tlsu"))
  expect_null(nextget("tls", .compute = "tlsu"))
  # Host authentication only: a daemon with the CA and no identity joins.
  launch_local(1, tlscert = c(pki$pem("ca.pem"), ""), .compute = "tlsu")
  expect_true(wait_until(function() status("tlsu")$connections == 1L))
  expect_identical(mirai(3, .compute = "tlsu")[], 3)
  # One file with certificate and key; daemons given the CA as a file path.
  both <- file.path(pki$dir, "both.pem")
  writeLines(c(cert, key), both)
  daemons(url = "tls+tcp://127.0.0.1:0", tls = both, tlscert = pki$f("ca.pem"), .compute = "tlsu")
  expect_identical(nextget("tls", .compute = "tlsu"), pki$f("ca.pem"))
  expect_match(launch_remote(1, .compute = "tlsu"), sprintf(",tlscert=\"%s\"\\)'$", pki$f("ca.pem")))
  launch_local(1, .compute = "tlsu")
  expect_true(wait_until(function() status("tlsu")$connections == 1L))
  expect_identical(mirai(4, .compute = "tlsu")[], 4)
  # An encrypted key, with its password from a function.
  daemons(url = "tls+tcp://127.0.0.1:0", tls = c(cert, pki$pem("server-enc.key")), pass = function() "s3cret",
          tlscert = pki$f("ca.pem"), .compute = "tlsu")
  launch_local(1, .compute = "tlsu")
  expect_true(wait_until(function() status("tlsu")$connections == 1L))
  expect_identical(mirai(5, .compute = "tlsu")[], 5)
  expect_error(daemons(url = "tls+tcp://127.0.0.1:0", tls = c(cert, pki$pem("server-enc.key")), pass = function() "wrong",
                       .compute = "tlsbad"), "wrong password")
  expect_false(daemons_set("tlsbad"))
})

test_that("user-supplied client CA: daemons must present a valid certificate of it; expired and foreign ones are refused", {
  pki <- make_pki(tempfile("pki"))
  dir <- tempfile("tlsc")
  dir.create(dir)
  h <- start_tls_host(list(url = "tls+tcp://127.0.0.1:0",
                           tls = c(pki$f("server.pem"), pki$f("server.key"), pki$f("ca.pem")),
                           tlscert = c(pki$f("ca.pem"), pki$f("client-identity.pem"))), dir)
  expect_identical(h$tls, c(pki$f("ca.pem"), pki$f("client-identity.pem"))) # paths, read by the daemon
  expired <- dial(h$url, c(pki$f("ca.pem"), pki$f("expired-identity.pem")))
  expect_match(expired, "^27 \\| Peer could not be authenticated: .*expired")
  foreign <- dial(h$url, c(pki$f("ca.pem"), pki$f("fclient-identity.pem")))
  expect_match(foreign, "^27 \\| Peer could not be authenticated: .*(unknown CA|certificate)")
  none <- dial(h$url, pki$f("ca.pem"))
  expect_match(none, "^27 \\| Peer could not be authenticated: .*a client certificate is required")
  r <- finish_tls_host(h)
  expect_identical(r$res, (1:20) * 2)
  expect_identical(r$info[["cumulative"]], 1L)
  log <- paste(readLines(h$log), collapse = "\n")
  refusals <- regmatches(log, gregexpr("refused TLS connection from [^\n]+", log))[[1L]]
  expect_length(refusals, 3L)
  expect_match(refusals[1L], "expired")
  expect_match(refusals[2L], "unknown issuer")
  expect_match(refusals[3L], "presented no certificate")
})
