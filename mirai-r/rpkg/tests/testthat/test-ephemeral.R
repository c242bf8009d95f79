# Ephemeral mirai: one process per mirai when no daemons are set (spec 3.3).

test_that("mirai without daemons run in a one-off process", {
  daemons(0)
  m <- mirai(c(Sys.getpid(), mirai::on_daemon()))
  v <- m[]
  expect_false(v[1] == Sys.getpid())
  expect_identical(v[2], 1L)
  expect_identical(mirai(a * 2, a = 21)[], 42)
  expect_identical(mirai(1, .compute = "not_a_profile")[], 1)
  e <- mirai(stop("ephemeral"))[]
  expect_identical(.subset(e, 1L), "Error: ephemeral")
  x <- mirai({Sys.sleep(10); 1})
  expect_false(stop_mirai(x))
  expect_identical(unclass(x[]), 20L)
  t <- mirai({Sys.sleep(10); 1}, .timeout = 200)
  expect_identical(unclass(t[]), 5L)
  expect_false(daemons_set())
})
