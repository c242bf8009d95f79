# The 'parallel' cluster backend: make_cluster(), stop_cluster() and the node methods.

#' A 'parallel' cluster of daemons
#'
#' `make_cluster()` creates a cluster for the parallel package's functions ([parallel::parLapply()],
#' [parallel::clusterEvalQ()], ..., and foreach through doParallel) whose nodes are mirai
#' daemons. `stop_cluster()` stops it. In R 4.5 and later,
#' `parallel::makeCluster(type = "MIRAI")` calls `make_cluster()`.
#'
#' @param n the number of nodes. With `url` and no `remote` it defaults to 1; with `remote`, it is
#'   taken from the configuration (one node per argument vector).
#' @param url `NULL` for local nodes, or the URL at which to listen for nodes started elsewhere.
#' @param remote a launch configuration from [ssh_config()], [cluster_config()] or
#'   [remote_config()], used with `url` to start the nodes.
#' @param ... further arguments for [daemons()], such as `seed` or `output = TRUE`.
#' @param cl a cluster made by `make_cluster()`.
#'
#' @return `make_cluster()`: a cluster, invisibly: a list of `n` nodes of class
#'   `c("miraiCluster", "cluster")`. `stop_cluster()`: `NULL`, invisibly.
#'
#' @details Each cluster is a hidden compute profile of its own (without dispatcher and without
#'   cleanup, as the parallel package expects), with an ID such as `` `0` ``; [status()] accepts
#'   the cluster. With `url` and no `remote`, the shell commands that start the nodes are printed
#'   for deployment by hand. A node whose daemon is lost gives the error value 19, which the
#'   parallel functions report as an error. [parallel::stopCluster()] works too; after that, using
#'   the cluster is an error (`"cluster is no longer active"`).
#'
#' @seealso [daemons()], `vignette("parallel", package = "mirai")`.
#' @examples
#' cl <- make_cluster(2)
#' cl
#' parallel::parLapply(cl, 1:3, function(x) x^2)
#' parallel::clusterSetRNGStream(cl, 123)
#' unlist(parallel::clusterEvalQ(cl, runif(1)))
#' stop_cluster(cl)
#'
#' # nodes to start by hand
#' cl <- make_cluster(2, url = local_url())
#' stop_cluster(cl)
make_cluster <- function(n, url = NULL, remote = NULL, ...) {
  id <- sprintf("`%d`", length(names(..)))
  if (is.null(url)) {
    is.numeric(n) || stop("`n` must be numeric, did you mean to provide `url`?")
    length(n) == 1L || stop("`n` must be a single number")
    n >= 1L || stop("`n` must be 1 or greater")
    # Returns once n daemons have done their handshake, so node i is the i-th daemon of the
    # round-robin (clusterSetRNGStream() seeds each daemon once).
    daemons(n, dispatcher = FALSE, cleanup = FALSE, ..., .compute = id)
  } else if (is.null(remote)) {
    if (missing(n)) n <- 1L
    is.numeric(n) || stop("`n` must be numeric, did you mean to provide `url`?")
    n <- .check_count(n)
    daemons(url = url, dispatcher = FALSE, cleanup = FALSE, ..., .compute = id)
    cat("Shell commands for deployment on nodes:\n\n")
    print(launch_remote(n, .compute = id))
  } else {
    n <- if (is.list(remote$args)) length(remote$args) else 1L
    daemons(n, url = url, remote = remote, dispatcher = FALSE, cleanup = FALSE, ..., .compute = id)
  }
  n <- as.integer(n)
  cl <- lapply(seq_len(n), function(i) structure(new.env(parent = emptyenv()), class = "miraiNode", node = i, id = id))
  structure(cl, class = c("miraiCluster", "cluster"), id = id)
}

#' @rdname make_cluster
stop_cluster <- function(cl) {
  # No cluster given: the default profile. Anything else is refused rather than taken as that.
  if (missing(cl)) {
    .reset(.opts$default)
    return(invisible())
  }
  inherits(cl, "miraiCluster") || stop("`cl` must be a cluster made by make_cluster()")
  .reset(attr(cl, "id"))
  invisible()
}

stopCluster.miraiCluster <- stop_cluster

`[.miraiCluster` <- function(x, ...) .subset(x, ...)

print.miraiCluster <- function(x, ...) {
  id <- attr(x, "id")
  cat(sprintf("< miraiCluster | ID: %s nodes: %d active: %s >\n", id, length(x), daemons_set(id)))
  invisible(x)
}

print.miraiNode <- function(x, ...) {
  cat(sprintf("< miraiNode | node: %d cluster ID: %s >\n", attr(x, "node"), attr(x, "id")))
  invisible(x)
}

sendData.miraiNode <- function(node, data) {
  id <- attr(node, "id")
  daemons_set(id) || stop("cluster is no longer active")
  value <- data[["data"]]
  m <- mirai(do.call(node, data, quote = TRUE), node = value[["fun"]], data = value[["args"]], .compute = id)
  tag <- value[["tag"]] %||% data[["tag"]]
  if (!is.null(tag)) assign("tag", tag, envir = m)
  node$mirai <- m
  invisible()
}

recvData.miraiNode <- function(node) call_mirai(node$mirai)

# Waits for the first unconsumed tagged mirai of the cluster to resolve (a consumed one has lost
# its class), by node order. Untagged mirai are left alone: they come from static calls
# (clusterApply and the like), which collect them with recvData(), and a node that an LB call
# with fewer jobs than nodes did not use still holds one.
recvOneData.miraiCluster <- function(cl) {
  aios <- vector("list", length(cl))
  for (i in seq_along(cl)) {
    m <- .subset2(cl, i)$mirai
    if (is_mirai(m) && !is.null(.subset2(m, "tag"))) {
      aio <- .Call(mirai_aio, m)
      if (is.null(aio)) {
        # already read: a resolved mirai of a lower node still comes first
        r <- if (i > 1L) .Call(mirai_race, aios[seq_len(i - 1L)], 0) else 0L
        if (r > 0L) i <- r
        return(.consume(.subset2(cl, i)$mirai, i))
      }
      aios[i] <- list(aio)
    }
  }
  i <- .Call(mirai_race, aios, -1)
  if (i == 0L) stop("cluster is no longer active")
  .consume(.subset2(cl, i)$mirai, i)
}

# Marks a node's mirai as consumed by stripping its class in place.
.consume <- function(m, i) {
  m$data
  class(m) <- NULL
  list(node = i, value = m)
}
