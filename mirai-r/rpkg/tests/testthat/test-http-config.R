# http_config() (spec 2.6) against a local HTTP server (helper-http.R).

test_that("http_config sends one request per daemon with the JSON-escaped call; fields are evaluated at launch", {
  srv <- start_http()
  daemons(url = "tls+tcp://127.0.0.1:0", .compute = "http")
  withr::defer(daemons(0, .compute = "http"))
  calls <- 0L
  cfg <- http_config(url = function() { calls <<- calls + 1L; sprintf("%s/launch", srv$url) }, method = "POST",
                     headers = c(`X-Test` = "yes"), data = "{\"cmd\":\"%s\"}", token = function() "tok",
                     cookie = function() "c=1")
  expect_identical(calls, 0L) # nothing is evaluated at construction
  res <- launch_remote(2, cfg, .compute = "http")
  expect_identical(calls, 1L)
  expect_length(res, 2L)
  expect_identical(res[[1L]]$status, 200L)
  expect_identical(res[[1L]]$headers[["x-reply"]], "ok")
  expect_identical(res[[1L]]$data, "launched")
  log <- http_log(srv)
  expect_length(log, 2L)
  for (r in log) {
    expect_identical(r$req, "POST /launch")
    expect_identical(r$headers[1:3], c("Bearer tok", "yes", "c=1"))
    # The body is the data with the bare call, JSON-escaped (the certificate's newlines as \n).
    cmd <- sub("^\\{\"cmd\":\"(.*)\"\\}$", "\\1", r$body)
    call <- gsub("\\\\\"", "\"", gsub("\\\\n", "\n", cmd))
    expect_identical(call, sprintf("mirai::daemon(\"%s\",tlscert=c(\"%s\",\"%s\"))", nextget("url", .compute = "http"),
                                   nextget("tls", .compute = "http")[1L], nextget("tls", .compute = "http")[2L]))
    expect_false(grepl("\n", r$body, fixed = TRUE))
  }
})

test_that("http_config Posit Workbench defaults: endpoint and cookie headers from the environment", {
  srv <- start_http()
  daemons(url = "tcp://127.0.0.1:0", .compute = "pwb")
  withr::defer(daemons(0, .compute = "pwb"))
  withr::local_envvar(RS_SERVER_ADDRESS = NA, RS_SESSION_RPC_COOKIE = NA)
  cfg <- http_config() # construction never fails, even outside Workbench
  expect_error(launch_remote(1, cfg, .compute = "pwb"), "can only be used from Posit Workbench", fixed = TRUE)
  withr::local_envvar(RS_SERVER_ADDRESS = srv$url, RS_SESSION_RPC_COOKIE = "rpc-cookie")
  # Default endpoint and headers, own body.
  launch_remote(1, http_config(data = "{\"cmd\":\"%s\"}"), .compute = "pwb")
  r <- http_log(srv)[[1L]]
  expect_identical(r$req, "POST /api/launch_job")
  expect_identical(r$headers[3:5], c("rpc-cookie", "rpc-cookie", "application/json"))
  # The default body needs the secretbase package to read the cluster list.
  if (!requireNamespace("secretbase", quietly = TRUE)) {
    expect_error(launch_remote(1, cfg, .compute = "pwb"),
                 "the secretbase package is required, try: `install.packages('secretbase')`", fixed = TRUE)
  } else {
    launch_remote(1, http_config(rscript = "/opt/R/bin/Rscript"), .compute = "pwb")
    log <- http_log(srv)
    expect_identical(log[[2L]]$req, "GET /api/get_compute_envs")
    expect_match(log[[3L]]$body, "\"cluster\":\"Kubernetes\",\"container\":{\"image\":\"img:1\"},\"name\":\"mirai_daemon\"", fixed = TRUE)
    expect_match(log[[3L]]$body, "\"resourceProfile\":\"small\"", fixed = TRUE)
    expect_error(launch_remote(1, http_config(cluster = "nope"), .compute = "pwb"),
                 "cluster 'nope' not found. Available: Kubernetes", fixed = TRUE)
  }
})

test_that("outside Posit Workbench an explicit url and data suffice; cookie, token and headers each reach the server", {
  srv <- start_http()
  daemons(url = "tcp://127.0.0.1:0", .compute = "hc")
  withr::defer(daemons(0, .compute = "hc"))
  withr::local_envvar(RS_SERVER_ADDRESS = NA, RS_SESSION_RPC_COOKIE = NA)
  url <- sprintf("%s/launch", srv$url)
  call <- sprintf("mirai::daemon(\\\"%s\\\")", nextget("url", .compute = "hc")) # JSON-escaped
  # Default headers (no Workbench cookie to send), data a string.
  res <- launch_remote(1, http_config(url = url, data = "{\"cmd\":\"%s\"}"), .compute = "hc")
  expect_length(res, 1L)
  expect_identical(res[[1L]]$status, 200L)
  expect_identical(res[[1L]]$data, "launched")
  # Data a function, called with the other arguments of http_config().
  res <- launch_remote(2, http_config(url = url, data = function(key) sprintf("{\"%s\":\"%%s\"}", key), key = "job"),
                       .compute = "hc")
  expect_identical(vapply(res, `[[`, 0L, "status"), c(200L, 200L))
  # Each of cookie, token and headers on its own (values or functions).
  launch_remote(1, http_config(url = url, headers = NULL, data = "%s", cookie = "k=v"), .compute = "hc")
  launch_remote(1, http_config(url = url, headers = NULL, data = "%s", token = function() "t0k"), .compute = "hc")
  launch_remote(1, http_config(url = url, headers = c(`X-Test` = "h1"), data = "%s"), .compute = "hc")
  launch_remote(1, http_config(url = url, headers = function() c(`X-Test` = "h2"), data = "%s", cookie = function() "k=w",
                               token = "t1"), .compute = "hc")
  log <- http_log(srv)
  expect_length(log, 7L)
  for (r in log) expect_identical(r$req, "POST /launch")
  # Digest order: Authorization, X-Test, Cookie, X-RS-Session-Server-RPC-Cookie, Content-Type.
  expect_identical(log[[1L]]$headers, c("-", "-", "-", "-", "application/json"))
  expect_identical(log[[1L]]$body, sprintf("{\"cmd\":\"%s\"}", call))
  expect_identical(log[[2L]]$body, sprintf("{\"job\":\"%s\"}", call))
  expect_identical(log[[3L]]$body, sprintf("{\"job\":\"%s\"}", call))
  expect_identical(log[[4L]]$headers[1:4], c("-", "-", "k=v", "-"))
  expect_identical(log[[4L]]$body, call)
  expect_identical(log[[5L]]$headers[1:4], c("Bearer t0k", "-", "-", "-"))
  expect_identical(log[[6L]]$headers[1:4], c("-", "h1", "-", "-"))
  expect_identical(log[[7L]]$headers[1:4], c("Bearer t1", "h2", "k=w", "-"))
  # Only the defaults need Workbench.
  expect_error(launch_remote(1, http_config(data = "%s"), .compute = "hc"), "can only be used from Posit Workbench", fixed = TRUE)
  expect_error(launch_remote(1, http_config(url = url), .compute = "hc"),
               "can only be used from Posit Workbench|the secretbase package is required")
})
