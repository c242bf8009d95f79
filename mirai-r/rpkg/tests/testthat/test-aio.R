# Every mirai is an Aio that nanonext understands (nanonext-api §2.6, §9.1): an environment of
# class c("mirai", "recvAio") with attribute `id`, an Aio handle `aio` while pending and an
# active binding `data`; once observed, `value`, and `aio` an integer: 1 when a daemon answered
# (a value or a miraiError), 0 for an error value (5, 7, 19, 20).

aio_of <- function(m) .subset2(m, "aio")

test_that("a pending mirai of every kind holds an Aio handle and an active `data`", {
  daemons(url = local_url(), .compute = "aio1")
  on.exit(daemons(0, .compute = "aio1"))
  m <- mirai(1, .compute = "aio1")
  expect_identical(class(m), c("mirai", "recvAio"))
  expect_type(attr(m, "id"), "integer")
  expect_identical(sort(ls(m, all.names = TRUE)), c("aio", "data"))
  expect_true(bindingIsActive("data", m))
  expect_identical(typeof(aio_of(m)), "externalptr")
  expect_true(unresolved(m$data))
  expect_null(m$value)
  expect_identical(sort(ls(m, all.names = TRUE)), c("aio", "data"))
  # chunk elements (one daemon expected: 64 elements are chunked) and everywhere() tasks
  mp <- mirai_map(1:64, function(x) x, .compute = "aio1")
  expect_true(all(vapply(mp, function(e) typeof(aio_of(e)) == "externalptr", logical(1L))))
  expect_true(all(vapply(mp, function(e) bindingIsActive("data", e), logical(1L))))
  ev <- everywhere(1, .compute = "aio1", .min = 1L)
  expect_identical(typeof(aio_of(ev[[1L]])), "externalptr")
  launch_local(1, .compute = "aio1")
  expect_identical(m[], 1)
  expect_identical(aio_of(m), 1L)
  expect_identical(sort(ls(m, all.names = TRUE)), c("aio", "data", "value"))
  expect_identical(m$value, 1)
  expect_identical(unlist(mp[]), 1:64)
  expect_true(all(vapply(mp, function(e) identical(aio_of(e), 1L), logical(1L))))
  expect_identical(ev[[1L]][], 1)
  expect_identical(aio_of(ev[[1L]]), 1L)
})

test_that("after observation `aio` is 1 for answers and 0 for error values", {
  daemons(1, .compute = "aio2")
  on.exit(daemons(0, .compute = "aio2"))
  e <- mirai(stop("no"), .compute = "aio2")
  expect_s3_class(e[], "miraiError")
  expect_identical(aio_of(e), 1L)
  t <- mirai(Sys.sleep(2), .timeout = 100, .compute = "aio2")
  expect_identical(unclass(t[]), 5L)
  expect_identical(aio_of(t), 0L)
  s <- mirai(Sys.sleep(5), .compute = "aio2")
  expect_true(stop_mirai(s))
  expect_identical(unclass(s$data), 20L)
  expect_identical(aio_of(s), 0L)
  l <- mirai(tools::pskill(Sys.getpid(), tools::SIGKILL), .compute = "aio2")
  expect_identical(unclass(l[]), 19L)
  expect_identical(aio_of(l), 0L)
  # a stopped chunk element resolves to 20 alone, its neighbours are untouched
  launch_local(1, .compute = "aio2")
  mp <- mirai_map(1:64, function(x) { Sys.sleep(0.01); x }, .compute = "aio2")
  expect_true(stop_mirai(mp[[64L]]))
  expect_identical(unclass(mp[[64L]]$data), 20L)
  expect_identical(aio_of(mp[[64L]]), 0L)
  expect_identical(unlist(collect_mirai(unclass(mp)[1:63])), 1:63)
  expect_identical(aio_of(mp[[1L]]), 1L)
})

test_that("sync and ephemeral mirai are Aios too", {
  daemons(sync = TRUE, .compute = "aio3")
  m <- mirai(2, .compute = "aio3")
  expect_identical(class(m), c("mirai", "recvAio"))
  expect_identical(m$data, 2)
  expect_identical(aio_of(m), 1L)
  daemons(0, .compute = "aio3")
  eph <- mirai(3, .compute = "aio-unset")
  expect_identical(typeof(aio_of(eph)), "externalptr")
  expect_identical(eph[], 3)
  expect_identical(aio_of(eph), 1L)
})

test_that("the package's own bindings on a mirai do not go through `$<-`", {
  # nanonext's `$<-` for recvAio does nothing: the ephemeral host and a cached promise are
  # assigned, and still there
  eph <- mirai(Sys.sleep(0.2), .compute = "aio-unset")
  expect_false(is.null(.subset2(eph, ".host")))
  skip_if_not_installed("promises")
  p <- promises::as.promise(eph)
  expect_identical(.subset2(eph, "promise"), p)
  expect_identical(promises::as.promise(eph), p)
  eph[]
})
