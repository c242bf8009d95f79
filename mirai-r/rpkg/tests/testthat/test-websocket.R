# WebSocket URLs (spec 2.4): ws:// and wss:// (zero-config TLS) for the host's listener and
# the daemons' dialer, port 0 resolved, a path after the port kept, with and without dispatcher.

ws_round <- function(url, dispatcher) {
  daemons(url = url, dispatcher = dispatcher)
  on.exit(daemons(0))
  resolved <- nextget("url")
  launch_local(2)
  expect_true(wait_until(function() status()$connections == 2))
  m <- mirai(Sys.getpid())
  expect_true(is.numeric(m[]))
  expect_identical(mirai_map(1:6, function(x) x * 2L)[.flat], seq(2L, 12L, by = 2L))
  # a 1 MiB payload each way crosses the 64 KiB WebSocket fragments intact
  big <- as.raw(seq_len(2^20) %% 251)
  expect_identical(mirai(rev(x), x = big)[], rev(big))
  resolved
}

test_that("ws:// with a dispatcher: port 0 resolved, tasks and large payloads run", {
  u <- ws_round("ws://127.0.0.1:0", TRUE)
  expect_match(u, "^ws://127\\.0\\.0\\.1:[1-9][0-9]*/$")
})

test_that("ws:// without a dispatcher", {
  u <- ws_round("ws://127.0.0.1:0", FALSE)
  expect_match(u, "^ws://127\\.0\\.0\\.1:[1-9][0-9]*/$")
})

test_that("ws:// keeps a path after the port", {
  u <- ws_round("ws://127.0.0.1:0/some/path", TRUE)
  expect_match(u, "^ws://127\\.0\\.0\\.1:[1-9][0-9]*/some/path$")
})

test_that("wss:// with zero-config TLS, with and without a dispatcher", {
  for (disp in c(TRUE, FALSE)) {
    u <- ws_round("wss://127.0.0.1:0", disp)
    expect_match(u, "^wss://127\\.0\\.0\\.1:[1-9][0-9]*/$")
  }
})
