# A launcher-style controller (issue 13, item 6), written from the contract (nanonext-api §9):
# it pushes named tasks, relays the profile's cv into its own with `%~>%`, waits on that with a
# timeout, counts what is pending with .unresolved() on a list, pops resolved tasks in order,
# cancels one by name and notices a worker killed with SIGKILL (its task resolves to 19).

controller <- function(compute) {
  relay <- nanonext::cv()
  nanonext::`%~>%`(nextget("cv", .compute = compute), relay)
  tasks <- list()
  done <- list()
  wakes <- 0L
  list(
    push = function(name, expr, ...) {
      tasks[[name]] <<- mirai(.expr = expr, .args = list(...), .compute = compute)
      invisible(name)
    },
    pending = function() nanonext::.unresolved(tasks),
    # Waits for something to resolve (TRUE), FALSE if nothing did within `ms`.
    wait = function(ms) {
      woke <- nanonext::until_(relay, ms)
      if (woke) wakes <<- wakes + 1L
      woke
    },
    # Pops the resolved tasks, in push order; returns their names.
    pop = function() {
      names <- character()
      for (name in names(tasks)) {
        if (!nanonext::.unresolved(tasks[[name]])) {
          done[[name]] <<- tasks[[name]]$data
          tasks[[name]] <<- NULL
          names <- c(names, name)
        }
      }
      names
    },
    cancel = function(name) nanonext::stop_aio(tasks[[name]]),
    done = function() done,
    n_tasks = function() length(tasks),
    wakes = function() wakes,
    # Takes the signals still pending on the relay (none may be lost or extra).
    drain = function() {
      while (nanonext::until(relay, 500L)) wakes <<- wakes + 1L
      wakes
    }
  )
}

test_that("a controller loop pushes, waits, counts, pops, cancels and notices a crashed worker", {
  daemons(2, .compute = "ctl")
  on.exit(daemons(0, .compute = "ctl"))
  ctl <- controller("ctl")
  expect_false(ctl$wait(100))
  # phase 1: one long task, one that kills its worker after a while
  ctl$push("long", quote(Sys.sleep(30)))
  ctl$push("crash", quote({ Sys.sleep(0.3); tools::pskill(Sys.getpid(), tools::SIGKILL) }))
  expect_identical(ctl$pending(), 2L)
  expect_true(ctl$wait(10000))
  expect_identical(ctl$pop(), "crash")
  expect_true(nanonext::is_error_value(ctl$done()$crash))
  expect_identical(unclass(ctl$done()$crash), 19L)
  expect_identical(ctl$pending(), 1L)
  expect_true(wait_until(function() status(.compute = "ctl")$connections == 1L))
  # phase 2: three more queue behind the long task on the one worker left; cancel it by name
  ctl$push("a", quote(x + 1), x = 1)
  ctl$push("b", quote(stop("no luck")))
  ctl$push("c", quote({ Sys.sleep(0.1); x * 3 }), x = 1)
  expect_identical(ctl$pending(), 4L)
  expect_false(ctl$wait(200))
  expect_identical(ctl$pop(), character())
  ctl$cancel("long")
  popped <- character()
  while (ctl$n_tasks()) {
    expect_true(ctl$wait(10000))
    popped <- c(popped, ctl$pop())
    # what is left is pending, bar any that resolved since the pop
    expect_lte(ctl$pending(), ctl$n_tasks())
  }
  expect_identical(popped, c("long", "a", "b", "c"))
  d <- ctl$done()
  expect_identical(unclass(d$long), 20L)
  expect_identical(d$a, 2)
  expect_s3_class(d$b, "miraiError")
  expect_identical(d$c, 3)
  expect_identical(names(d), c("crash", "long", "a", "b", "c"))
  # one signal per completed task, none lost, none extra
  expect_identical(ctl$drain(), 5L)
  st <- status(.compute = "ctl")$mirai
  expect_identical(unname(st), c(0L, 0L, 5L))
})
