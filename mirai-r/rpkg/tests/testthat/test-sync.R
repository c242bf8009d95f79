# Sync profiles (spec 3.3): in-process evaluation with a stashed daemon global environment.

test_that("sync mirai are resolved at once with daemon semantics", {
  daemons(sync = TRUE)
  on.exit(daemons(0))
  expect_true(daemons_set())
  m <- mirai(a + b, a = 1, .args = list(b = 2))
  expect_false(unresolved(m))
  expect_identical(capture.output(print(m)), "< mirai [$data] >")
  expect_identical(m$data, 3)
  expect_identical(m$value, 3)
  expect_true(mirai(on_daemon())[])
  expect_false(on_daemon())
  expect_identical(mirai(ls(), .args = list(z = 1))[], "z")
  expect_true("z" %in% mirai(ls(globalenv()), z = 1)[])
  expect_identical(status(), list(connections = 0L, daemons = nextget("url")))
  expect_match(nextget("url"), "^inproc://[0-9a-f]{24}$")
  expect_identical(info(), c(connections = 0L, cumulative = NA_integer_, awaiting = NA_integer_,
                             executing = NA_integer_, completed = NA_integer_))
  expect_null(nextget("dispatcher"))
  expect_true(nextget("sync"))
  expect_identical(nextget("n"), 1L)
  expect_false(stop_mirai(mirai(1)))
  expect_error(launch_local(1), "daemons cannot be launched for synchronous compute profiles", fixed = TRUE)
  expect_error(launch_remote(1), "daemons cannot be launched for synchronous compute profiles", fixed = TRUE)
})

test_that("sync evaluation leaves the host untouched; cleanup and everywhere work", {
  daemons(sync = TRUE)
  on.exit(daemons(0))
  set.seed(7)
  before <- .Random.seed
  mirai(runif(1))[]
  expect_identical(.Random.seed, before)
  assign("host_var_xyz", 1, globalenv())
  on.exit(rm(host_var_xyz, envir = globalenv()), add = TRUE)
  expect_false(mirai(exists("host_var_xyz"))[])
  mirai({options(mirai.test.opt = 1); assign("gv_xyz", 2, globalenv())})[]
  expect_null(getOption("mirai.test.opt"))
  expect_false(exists("gv_xyz", envir = globalenv()))
  expect_false(mirai(exists("gv_xyz"))[])
  expect_true(exists("host_var_xyz", envir = globalenv()))
  e <- everywhere({}, persisted_xyz = 3)
  expect_s3_class(e, "mirai_map")
  expect_length(e, 1L)
  expect_identical(mirai(persisted_xyz)[], 3)
  expect_false(exists("persisted_xyz", envir = globalenv()))
})

test_that("a sync profile can be switched to another mode and with() resets it", {
  r <- with(daemons(sync = TRUE, .compute = "synctest"), c(mirai(1)[], daemons_set()))
  expect_identical(r, c(1, 1))
  expect_false(daemons_set("synctest"))
  expect_identical(with(if (!daemons_set()) daemons(sync = TRUE), mirai(2)[]), 2)
  expect_false(daemons_set())
})
