# Small mirai 2.7 behaviours: make_cluster() visible, `[.miraiCluster`(x, ...), stop_cluster()
# with no cluster, unresolved() on a list holding the sentinel, nextget() fields, the version.

test_that("make_cluster() returns visibly, `[` takes (x, ...), stop_cluster() with no cluster resets the default", {
  v <- withVisible(make_cluster(2))
  cl <- v$value
  on.exit(stop_cluster(cl))
  expect_true(v$visible)
  expect_output(print(cl), "< miraiCluster | ID: ", fixed = TRUE)
  expect_identical(names(formals(mirai:::`[.miraiCluster`)), c("x", "..."))
  expect_identical(lapply(cl[2], attr, "node"), list(2L))
  expect_identical(lapply(cl[c(TRUE, TRUE)], attr, "node"), list(1L, 2L))
  expect_null(attr(cl[1], "class"))
  daemons(sync = TRUE)
  expect_true(daemons_set())
  expect_null(stop_cluster())
  expect_false(daemons_set())
  expect_true(daemons_set(attr(cl, "id")))
  # With a current default other than "default", that one is reset.
  daemons(sync = TRUE, .compute = "other")
  with_daemons("other", expect_invisible(stop_cluster()))
  expect_false(daemons_set("other"))
})

test_that("unresolved() is TRUE for a list holding the pending sentinel", {
  daemons(1)
  withr::defer(daemons(0))
  m <- mirai({ Sys.sleep(0.5); 1 })
  d <- m$data
  expect_s3_class(d, "unresolvedValue")
  expect_true(unresolved(d))
  expect_true(unresolved(list(m$data)))
  expect_true(unresolved(list(1, m$data)))
  expect_true(unresolved(list(m)))
  # One shared sentinel: every pending read gives the same object.
  expect_identical(m$data, mirai:::.unresolved)
  expect_identical(m[], 1)
  expect_false(unresolved(list(m$data)))
})

test_that("nextget() knows every field of the spec", {
  daemons(1, seed = 7L, maxtasks = 10, .compute = "ng")
  withr::defer(daemons(0, .compute = "ng"))
  expect_match(nextget("url", .compute = "ng"), "^abstract://|^ipc://")
  expect_identical(nextget("n", .compute = "ng"), 1L)
  expect_null(nextget("tls", .compute = "ng"))
  expect_identical(typeof(nextget("dispatcher", .compute = "ng")), "externalptr")
  expect_length(nextget("stream", .compute = "ng"), 7L)
  expect_identical(nextget("seed", .compute = "ng"), 7L)
  expect_false(nextget("sync", .compute = "ng"))
  expect_identical(nextget("compute", .compute = "ng"), "ng")
  expect_identical(nextget("dots", .compute = "ng"), ",maxtasks=10")
  expect_s3_class(nextget("cv", .compute = "ng"), "conditionVariable")
})

test_that("the package version is 2.7.1.9000", {
  expect_identical(as.character(utils::packageVersion("mirai")), "2.7.1.9000")
})
