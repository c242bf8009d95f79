# A mirai made by mirai() keeps its task in the bridge, keyed by the mirai itself (its address;
# mirai-r/src/handles.rs): the table entry must go when the mirai settles, is stopped, or is
# collected unsettled, and nothing else may reach the task.

keyed <- function() .Call(mirai:::mirai_keyed_tasks)

test_that("keyed tasks leave the table when settled, stopped or collected", {
  daemons(url = local_url(), .compute = "keyed")
  on.exit(daemons(0, .compute = "keyed"))
  gc()
  k0 <- keyed()
  ms <- lapply(1:500, function(i) mirai(i, i = i, .compute = "keyed"))
  expect_equal(keyed() - k0, 500)
  # no daemon: all wait; the object carries no `.aio` binding, only `data` (and settles later)
  expect_true(all(vapply(ms, unresolved, logical(1))))
  expect_false(exists(".aio", envir = ms[[1L]], inherits = FALSE))
  expect_output(print(ms[[1L]]), "< mirai [] >", fixed = TRUE)
  # stopped: resolves to 20 and leaves the table once settled
  expect_true(stop_mirai(ms[[1L]]))
  expect_identical(unclass(ms[[1L]]$data), 20L)
  expect_equal(keyed() - k0, 499)
  # collected unsettled: the finalizer drops the entries
  ms[2:300] <- list(NULL)
  gc(); gc()
  expect_equal(keyed() - k0, 200)
  # the rest run once a daemon connects, and leave the table as they are read
  launch_local(1, .compute = "keyed")
  vals <- collect_mirai(ms[301:500])
  expect_identical(unlist(vals), 301:500)
  expect_equal(keyed() - k0, 0)
  expect_identical(mirai_attempts(ms[[500L]]), 1L)
})

test_that("only its own mirai reaches a keyed task", {
  daemons(url = local_url(), .compute = "keyed2")
  on.exit(daemons(0, .compute = "keyed2"))
  m <- mirai(41 + 1, .compute = "keyed2")
  id <- attr(m, "id")
  # another environment dressed as that mirai (same class and id) sees no task
  fake <- new.env()
  attributes(fake) <- attributes(m)
  expect_false(unresolved(fake))
  expect_null(fake$data)
  expect_null(.Call(mirai:::mirai_aio, fake))
  expect_false(stop_mirai(fake))
  # nor does a `.aio` binding holding the mirai, nor mirai_wrap() given it
  fake2 <- structure(new.env(), class = c("mirai", "recvAio"), id = id)
  assign(".aio", m, envir = fake2)
  expect_null(.Call(mirai:::mirai_aio, fake2))
  expect_error(.Call(mirai:::mirai_wrap, m, NULL), "`aio`")
  expect_error(.Call(mirai:::mirai_wrap, id, NULL), "`aio`")
  # the real one is intact
  expect_true(unresolved(m))
  expect_identical(.Call(mirai:::mirai_aio, m), m)
  launch_local(1, .compute = "keyed2")
  expect_identical(m[], 42)
  expect_null(.Call(mirai:::mirai_aio, m))
  expect_false(unresolved(m))
})

test_that("a mirai whose `id` attribute was overwritten keeps its own task, and only it", {
  daemons(url = local_url(), .compute = "keyed4")
  on.exit(daemons(0, .compute = "keyed4"))
  gc()
  k0 <- keyed()
  m1 <- mirai(1, .compute = "keyed4")
  m2 <- mirai(2, .compute = "keyed4")
  attr(m1, "id") <- attr(m2, "id")
  expect_equal(keyed() - k0, 2)
  rm(m1)
  gc(); gc()
  # m1's task went with it; m2's is untouched and resolves
  expect_equal(keyed() - k0, 1)
  expect_true(unresolved(m2))
  launch_local(1, .compute = "keyed4")
  expect_identical(m2[], 2)
  expect_equal(keyed() - k0, 0)
})

test_that("race_mirai(), promises and call_mirai() work on keyed mirai", {
  daemons(1, .compute = "keyed3")
  on.exit(daemons(0, .compute = "keyed3"))
  slow <- mirai(Sys.sleep(0.5), .compute = "keyed3")
  fast <- mirai(1, .compute = "keyed3")
  expect_identical(race_mirai(list(slow, fast), .compute = "keyed3"), 1L)
  call_mirai(fast)
  expect_identical(fast$data, 1)
  expect_identical(.Call(mirai:::mirai_pending, fast), FALSE)
  expect_identical(.Call(mirai:::mirai_pending, 1), FALSE)
  expect_null(.Call(mirai:::mirai_aio, "not a mirai"))
})
