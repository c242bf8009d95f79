# The parallel cluster backend (spec 2.8): make_cluster(), stop_cluster() and the node methods
# that parallel's functions (and foreach through doParallel) run on.

test_that("make_cluster validates, prints, indexes and stops", {
  expect_error(make_cluster("a"), "`n` must be numeric, did you mean to provide `url`?", fixed = TRUE)
  expect_error(make_cluster(0), "`n` must be 1 or greater", fixed = TRUE)
  k <- length(names(get("..", envir = asNamespace("mirai"))))
  cl <- make_cluster(2)
  on.exit(stop_cluster(cl))
  id <- attr(cl, "id")
  # the ID counts every profile name registered before, reset ones included
  expect_identical(id, sprintf("`%d`", k))
  expect_s3_class(cl, c("miraiCluster", "cluster"), exact = TRUE)
  expect_length(cl, 2L)
  for (i in 1:2) {
    expect_s3_class(cl[[i]], "miraiNode", exact = TRUE)
    expect_true(is.environment(cl[[i]]))
    expect_identical(attr(cl[[i]], "node"), i)
    expect_identical(attr(cl[[i]], "id"), id)
  }
  expect_identical(capture.output(print(cl)), sprintf("< miraiCluster | ID: %s nodes: 2 active: TRUE >", id))
  expect_identical(capture.output(print(cl[[2]])), sprintf("< miraiNode | node: 2 cluster ID: %s >", id))
  expect_null(attr(cl[1], "class"))
  expect_s3_class(cl[2][[1]], "miraiNode")
  expect_identical(status(cl)$connections, 2L)
  expect_identical(info(cl)[["connections"]], 2L)
  expect_true(daemons_set(id))
  expect_null(stop_cluster(cl))
  expect_false(daemons_set(id))
  expect_identical(capture.output(print(cl)), sprintf("< miraiCluster | ID: %s nodes: 2 active: FALSE >", id))
  expect_error(parallel::parLapply(cl, 1:2, identity), "cluster is no longer active", fixed = TRUE)
  expect_error(parallel::clusterEvalQ(cl, 1), "cluster is no longer active", fixed = TRUE)
  # the next cluster gets the next ID
  cl2 <- make_cluster(1)
  on.exit(stop_cluster(cl2), add = TRUE)
  expect_identical(attr(cl2, "id"), sprintf("`%d`", k + 1L))
  expect_invisible(parallel::stopCluster(cl2))
  expect_false(daemons_set(attr(cl2, "id")))
})

test_that("parallel's apply functions run on the cluster", {
  cl <- make_cluster(2)
  on.exit(stop_cluster(cl))
  expect_identical(parallel::parLapply(cl, 1:5, function(x) x * 2), as.list(1:5 * 2))
  expect_identical(parallel::parSapply(cl, 1:6, sqrt), sqrt(1:6))
  expect_identical(parallel::parSapply(cl, c(a = 1, b = 2), function(x) x + 1), c(a = 2, b = 3))
  expect_identical(parallel::parApply(cl, matrix(1:6, 2), 1, sum), c(9L, 12L))
  expect_identical(parallel::parRapply(cl, matrix(1:6, 2), sum), c(9L, 12L))
  expect_identical(parallel::parCapply(cl, matrix(1:6, 2), sum), c(3L, 7L, 11L))
  expect_identical(parallel::clusterApply(cl, 1:3, function(x) x^2), list(1, 4, 9))
  expect_identical(parallel::clusterMap(cl, function(x, y) x + y, 1:3, 4:6), list(5L, 7L, 9L))
  expect_identical(parallel::clusterMap(cl, function(x, y) x * y, c(a = 1, b = 2), 3, SIMPLIFY = TRUE), c(a = 3, b = 6))
  expect_identical(parallel::clusterCall(cl, function(a, b) a + b, 1, b = 2), list(3, 3))
  # every node is a different daemon process, none of them this one
  pids <- unlist(parallel::clusterEvalQ(cl, Sys.getpid()))
  expect_length(unique(pids), 2L)
  expect_false(Sys.getpid() %in% pids)
})

test_that("load-balanced functions do not hang with more tasks than nodes", {
  cl <- make_cluster(2)
  on.exit(stop_cluster(cl))
  expect_identical(parallel::parLapplyLB(cl, 1:25, function(x) x + 1L), as.list(2:26))
  expect_identical(parallel::parSapplyLB(cl, 1:9, function(x) x * 3L), 1:9 * 3L)
  # uneven task lengths: results come back in order whichever node finishes first
  r <- parallel::clusterApplyLB(cl, c(0.3, 0, 0, 0.2, 0, 0), function(s) {Sys.sleep(s); s})
  expect_identical(r, as.list(c(0.3, 0, 0, 0.2, 0, 0)))
  # both nodes took part
  pids <- parallel::clusterApplyLB(cl, rep(0.2, 6), function(s) {Sys.sleep(s); Sys.getpid()})
  expect_length(unique(unlist(pids)), 2L)
  # fewer jobs than nodes after a static call: node 2 still holds the static call's resolved
  # mirai, which must not be taken for the LB job's result
  expect_identical(parallel::clusterApply(cl, 1:2, function(x) x), list(1L, 2L))
  expect_identical(parallel::clusterApplyLB(cl, 1, function(x) {Sys.sleep(0.3); "lb"}), list("lb"))
  expect_identical(parallel::parLapplyLB(cl, 1:3, function(x) x), list(1L, 2L, 3L))
})

test_that("clusterExport and clusterEvalQ keep state on the nodes (no cleanup)", {
  cl <- make_cluster(2)
  on.exit(stop_cluster(cl))
  secret <- 99
  helper <- function(x) x + secret
  parallel::clusterExport(cl, c("secret", "helper"), envir = environment())
  expect_identical(unlist(parallel::clusterEvalQ(cl, secret)), c(99, 99))
  expect_identical(parallel::parSapply(cl, 1:4, function(i) helper(i)), 100:103 + 0)
  parallel::clusterEvalQ(cl, library(tools))
  expect_true(all(unlist(parallel::clusterEvalQ(cl, "package:tools" %in% search()))))
  parallel::clusterEvalQ(cl, options(eco.option = "kept"))
  expect_identical(unlist(parallel::clusterEvalQ(cl, getOption("eco.option"))), c("kept", "kept"))
})

test_that("every node of a new cluster is a ready daemon: the first n tasks go to n daemons", {
  for (k in 1:4) {
    cl <- make_cluster(2.7)
    expect_length(cl, 2L)
    pids <- unlist(parallel::clusterApply(cl, 1:2, function(i) Sys.getpid()))
    stop_cluster(cl)
    expect_length(unique(pids), 2L)
  }
})

test_that("clusterSetRNGStream is reproducible, within and across clusters", {
  cl1 <- make_cluster(2)
  parallel::clusterSetRNGStream(cl1, 123)
  a <- parallel::parSapply(cl1, 1:4, function(i) runif(1))
  parallel::clusterSetRNGStream(cl1, 123)
  expect_identical(parallel::parSapply(cl1, 1:4, function(i) runif(1)), a)
  expect_identical(unlist(parallel::clusterEvalQ(cl1, RNGkind()[1L])), rep("L'Ecuyer-CMRG", 2))
  stop_cluster(cl1)
  cl2 <- make_cluster(2)
  on.exit(stop_cluster(cl2))
  parallel::clusterSetRNGStream(cl2, 123)
  expect_identical(parallel::parSapply(cl2, 1:4, function(i) runif(1)), a)
  parallel::clusterSetRNGStream(cl2, 124)
  expect_false(identical(parallel::parSapply(cl2, 1:4, function(i) runif(1)), a))
  # the streams are parallel's own: node i gets nextRNGStream applied i - 1 times to the seed
  RNGkind("L'Ecuyer-CMRG")
  set.seed(123)
  s <- .Random.seed
  RNGkind("default")
  parallel::clusterSetRNGStream(cl2, 123)
  got <- parallel::clusterApply(cl2, 1:2, function(i) .Random.seed)
  expect_identical(got[[1L]], s)
  expect_identical(got[[2L]], parallel::nextRNGStream(s))
})

test_that("remote errors raise through parallel, and a failed node gives error 19", {
  cl <- make_cluster(2)
  on.exit(stop_cluster(cl))
  expect_error(parallel::parLapply(cl, 1:2, function(x) stop("node failure")),
               "2 nodes produced errors; first error: Error in FUN(X[[i]], ...): node failure", fixed = TRUE)
  expect_error(parallel::clusterApply(cl, 1:2, function(x) if (x == 2) stop("only two") else x),
               "^one node produced an error: Error in .*: only two$")
  # node 1's daemon dies mid-task: its result is the integer error value 19
  err <- tryCatch(
    parallel::clusterApply(cl, 1:2, function(x) if (x == 1) tools::pskill(Sys.getpid(), tools::SIGKILL) else x),
    error = identity
  )
  expect_identical(conditionMessage(err), "one node produced an error: 19")
  v <- cl[[1L]]$mirai$data
  expect_true(is_error_value(v))
  expect_identical(unclass(v), 19L)
  expect_identical(capture.output(print(v)), "'errorValue' int 19 | Connection reset")
  expect_identical(cl[[2L]]$mirai$data, 2L)
  # load balancing sees the same value (a fresh cluster: this one has a single daemon left,
  # and a direct-mode task waits for a daemon to connect)
  stop_cluster(cl)
  cl <- make_cluster(2)
  err <- tryCatch(
    parallel::parLapplyLB(cl, 1:2, function(x) if (x == 1) tools::pskill(Sys.getpid(), tools::SIGKILL) else x),
    error = identity
  )
  # (tasks sent to the dying daemon before its disconnect was seen fail with it, hence "one or
  # more")
  expect_match(conditionMessage(err), "(one node produced an error|[0-9] nodes produced errors; first error): 19$")
})

test_that("foreach with doParallel runs on the cluster", {
  skip_if_not_installed("foreach")
  skip_if_not_installed("doParallel")
  cl <- make_cluster(2)
  on.exit({
    foreach::registerDoSEQ()
    stop_cluster(cl)
  })
  doParallel::registerDoParallel(cl)
  expect_identical(foreach::getDoParWorkers(), 2L)
  `%dopar%` <- foreach::`%dopar%`
  expect_identical(foreach::foreach(i = 1:10, .combine = c) %dopar% i^2, (1:10)^2)
  k <- 5
  r <- foreach::foreach(i = 1:4, .combine = "+") %dopar% {i * k}
  expect_identical(r, 50)
  pids <- foreach::foreach(i = 1:6, .combine = c) %dopar% {Sys.sleep(0.2); Sys.getpid()}
  expect_length(unique(pids), 2L)
  expect_false(Sys.getpid() %in% pids)
  l <- foreach::foreach(x = list(a = 1, b = "z"), .packages = "tools") %dopar% {
    list(x, "package:tools" %in% search())
  }
  expect_identical(l, list(list(1, TRUE), list("z", TRUE)))
  expect_error(foreach::foreach(i = 1:3) %dopar% {if (i == 2) stop("bad ", i) else i}, "bad 2")
  passed <- foreach::foreach(i = 1:3, .errorhandling = "pass") %dopar% {if (i == 2) stop("bad") else i}
  expect_identical(passed[c(1L, 3L)], list(1L, 3L))
  expect_s3_class(passed[[2L]], "error")
})

test_that("a url cluster prints its deployment commands", {
  out <- capture.output(cl <- make_cluster(url = "tcp://127.0.0.1:0"))
  on.exit(stop_cluster(cl))
  expect_identical(out[1:2], c("Shell commands for deployment on nodes:", ""))
  expect_identical(out[3], "[1]")
  expect_match(out[4], "^Rscript -e 'mirai::daemon\\(\"tcp://127\\.0\\.0\\.1:[0-9]+\",dispatcher=FALSE,cleanup=FALSE,rs=c\\(")
  expect_length(cl, 1L)
  # a node started by hand from the printed command joins the cluster
  cmd <- sub("^Rscript -e '(.*)'$", "\\1", out[4])
  system2(rscript, c("-e", shQuote(cmd)), wait = FALSE, stdout = FALSE, stderr = FALSE)
  expect_true(wait_until(function() status(cl)$connections == 1L))
  expect_identical(parallel::parLapply(cl, 1:3, function(x) x * 10L), list(10L, 20L, 30L))
})

test_that("a url cluster with a remote launches its nodes", {
  cl <- make_cluster(url = local_url(), remote = remote_config("sh", c("-c", "."), rscript = rscript, quote = TRUE))
  on.exit(stop_cluster(cl))
  expect_length(cl, 1L)
  expect_true(wait_until(function() status(cl)$connections == 1L))
  expect_identical(parallel::parLapply(cl, 1:3, function(x) x * 10L), list(10L, 20L, 30L))
  two <- make_cluster(url = local_url(), remote = remote_config("sh", list(c("-c", "."), c("-c", ".")), rscript = rscript, quote = TRUE))
  on.exit(stop_cluster(two), add = TRUE)
  expect_length(two, 2L)
  expect_true(wait_until(function() status(two)$connections == 2L))
  expect_length(unique(unlist(parallel::clusterEvalQ(two, Sys.getpid()))), 2L)
})

test_that("parallel::makeCluster(type = \"MIRAI\") makes a miraiCluster (R >= 4.5)", {
  skip_if(getRversion() < "4.5.0", "parallel::makeCluster(type = \"MIRAI\") needs R >= 4.5")
  cl <- parallel::makeCluster(2, type = "MIRAI")
  on.exit(parallel::stopCluster(cl))
  expect_s3_class(cl, "miraiCluster")
  expect_identical(parallel::parSapply(cl, 1:4, function(x) x + 1), c(2, 3, 4, 5))
})
