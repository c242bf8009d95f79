# mirai_map() and collection with options (.flat, .progress, .stop).

# The collection options. Only their use inside `[` and collect_mirai() is part of the API: `[`
# reads the option names unevaluated, and collect_mirai() takes them by name.
.flat <- ".flat"
.progress <- ".progress"
.stop <- ".stop"

mirai_map <- function(.x, .f, ..., .args = list(), .promise = NULL, .compute = NULL) {
  require_daemons(.compute = .compute, call = environment())
  is.function(.f) || stop(sprintf("`.f` must be of type function, not %s", typeof(.f)))
  call <- sys.call()
  globals <- .globals(list(...), call)
  # Constant arguments to `.f`: named ones match by name, unnamed ones follow the element.
  .args <- if (is.environment(.args)) as.list.environment(.args, all.names = TRUE) else as.list(.args)
  prof <- .profile(.compute)
  base <- list(.f = .f, .args = .args, .mirai_within_map = TRUE)
  if (is.null(dim(.x))) {
    rows <- lapply(.x, identity)
    expr <- quote(do.call(.f, c(list(.x), .args), quote = TRUE))
    nms <- names(.x)
  } else if (is.data.frame(.x)) {
    rows <- lapply(seq_len(nrow(.x)), function(i) lapply(.x, `[[`, i))
    expr <- quote(do.call(.f, c(.x, .args), quote = TRUE))
    rn <- attr(.x, "row.names")
    nms <- if (is.character(rn)) rn
  } else {
    rows <- lapply(seq_len(dim(.x)[1L]), function(i) as.list(.x[i, ]))
    expr <- quote(do.call(.f, c(.x, .args), quote = TRUE))
    nms <- dimnames(.x)[[1L]]
  }
  sizes <- .chunk_sizes(prof, length(rows))
  if (!prof$sync) {
    # The engine's `mirai_map` span (tracing on only) parents the elements' `mirai` spans.
    .Call(mirai_host_map_span, prof$host, TRUE)
    on.exit(.Call(mirai_host_map_span, prof$host, FALSE))
  }
  x <- if (is.null(sizes)) {
    lapply(rows, function(row) {
      base[".x"] <- list(row)
      .submit(prof, list(globals = globals, args = base, expr = expr), NULL)
    })
  } else {
    .submit_chunks(prof, rows, sizes, list(globals = globals, args = base, expr = expr))
  }
  names(x) <- nms
  if (!is.null(.promise)) {
    if (is.function(.promise)) .promise <- list(.promise)
    for (m in x) promises::then(m, onFulfilled = .promise[[1L]], onRejected = .promise[2L][[1L]])
  }
  invisible(`class<-`(x, "mirai_map"))
}

# Chunking (mirai-r/src/chunk.rs). A map of many elements is sent as fewer, larger tasks, each
# evaluating several consecutive elements on one daemon; every element keeps its own mirai, value,
# error and cancellation. Sizes follow "guided" scheduling: each chunk takes 1/(8 d) of the
# elements left (d: daemons), at most `.chunk_max`, so that chunks shrink towards the end and
# the last elements are sent one by one, keeping every daemon busy until the map is done. A map
# of fewer than 16 elements per daemon is not chunked at all: those are the maps of long tasks,
# where dispatching each element to the next free daemon matters more than the per-task cost.
# NULL: no chunking; otherwise the chunk sizes, in order.
.chunk_max <- 64L

.chunk_sizes <- function(prof, n) {
  if (prof$sync) return(NULL)
  d <- max(1L, prof$n, .Call(mirai_host_status, prof$host)$counters[1L])
  if (n < 16L * d) return(NULL)
  sizes <- integer()
  left <- n
  while (left > 0L) {
    k <- min(.chunk_max, max(1L, left %/% (8L * d)))
    sizes[length(sizes) + 1L] <- k
    left <- left - k
  }
  sizes
}

# Submits `rows` in chunks of `sizes` (payload `data` plus each chunk's `map` and, for a seeded
# profile, the per-element streams `seeds`): the list of element mirai, in order.
.submit_chunks <- function(prof, rows, sizes, data) {
  host <- prof$host
  out <- vector("list", length(rows))
  at <- 0L
  for (k in sizes) {
    idx <- at + seq_len(k)
    data$map <- rows[idx]
    if (!is.null(prof$seed)) {
      seeds <- vector("list", k)
      for (j in seq_len(k)) {
        seeds[[j]] <- prof$stream
        prof$stream <- parallel::nextRNGStream(prof$stream)
      }
      data$seeds <- seeds
    }
    if (prof$gate) while (!.Call(mirai_host_wait_admit, host, 400)) if (!identical(..[[prof$compute]], prof)) break
    out[idx] <- .Call(mirai_submit_chunk, host, data, prof$serial, k)
    at <- at + k
  }
  out
}

print.mirai_map <- function(x, ...) {
  k <- 0L
  for (m in x) if (!is_mirai(m) || !.pending(m)) k <- k + 1L
  cat(sprintf("< mirai map [%d/%d] >\n", k, length(x)))
  invisible(x)
}

`[.mirai_map` <- function(x, ...) {
  # Options are read unevaluated; anything else (an index, an empty argument) is ignored.
  ops <- sub("^.*:::?", "", as.character(as.list(substitute(list(...)))[-1L]))
  .collect(x, ops[ops %in% c(".flat", ".progress", ".stop")], list())
}

collect_mirai <- function(x, options = NULL) {
  if (!is.list(x) || !length(options)) {
    if (is_mirai(x)) return(x[])
    if (!is.list(x)) return(x)
    return(`attributes<-`(.Call(mirai_collect, x, TRUE), list(names = names(x))))
  }
  nms <- names(options)
  ops <- character(length(options))
  args <- list()
  for (i in seq_along(options)) {
    named <- !is.null(nms) && nzchar(nms[i])
    op <- if (named) nms[i] else as.character(options[[i]])
    if (length(op) != 1L || !op %in% c(".flat", ".progress", ".stop"))
      stop(sprintf("'%s' is not a valid option: use `.flat`, `.progress` or `.stop`", paste(op, collapse = " ")))
    ops[i] <- op
    if (named && op == ".progress") {
      v <- options[[i]]
      args <- if (is.list(v)) v else if (is.character(v)) list(name = v)
    }
  }
  .collect(x, ops, args)
}

# Waits for each element in index order, applying options once at the start and once per
# element in the order written; `bar` is extra arguments for cli's progress bar.
.collect <- function(x, ops, bar) {
  if (!length(ops)) return(`attributes<-`(.Call(mirai_collect, x, TRUE), list(names = names(x))))
  n <- length(x)
  out <- vector("list", n)
  names(out) <- names(x)
  cli <- .opts$cli
  id <- NULL
  typ <- NULL
  for (op in ops) if (op == ".progress") {
    if (cli) {
      id <- do.call(cli::cli_progress_bar, c(list(total = n, auto_terminate = TRUE, .envir = environment()),
                                               utils::modifyList(list(name = NULL, type = NULL), as.list(bar))))
    } else {
      cat(sprintf("\r[ 0 / %d .... ]", n), file = stderr())
    }
  }
  for (i in seq_len(n)) {
    m <- .subset2(x, i)
    v <- if (is_mirai(m)) m[] else m
    out[i] <- list(v)
    for (op in ops) switch(
      op,
      .stop = if (is_error_value(v)) {
        stop_mirai(x)
        .index_error(i, v, names(x)[i])
      },
      .flat = {
        if (is_error_value(v)) {
          stop_mirai(x)
          .index_error(i, v, names(x)[i])
        }
        if (is.null(typ)) typ <- typeof(v)
        else if (typeof(v) != typ) {
          stop_mirai(x)
          .flat_error(typ, typeof(v))
        }
      },
      .progress = if (cli) cli::cli_progress_update(id = id, .envir = environment())
      else cat(if (i < n) sprintf("\r[ %d / %d .... ]", i, n) else sprintf("\r[ %d / %d done ]\n", i, n),
               file = stderr())
    )
  }
  if (".flat" %in% ops) out <- unlist(out, recursive = FALSE)
  out
}

.index_error <- function(i, v, name) {
  if (.opts$cli) {
    if (is.null(name) || is.na(name) || !nzchar(name)) name <- NULL
    msg <- c(i = "In index: {i}.")
    if (!is.null(name)) msg <- c(msg, i = "With name: {name}.")
    # `location` and `name` are fields of the condition (purrr reports them).
    cli::cli_abort(msg, location = i, name = name, call = quote(mirai_map()), parent = .ev_condition(v))
  }
  stop(sprintf("In index %d:\n%s", i, .ev_message(v)), call. = FALSE)
}

.flat_error <- function(t1, t2) {
  if (.opts$cli)
    cli::cli_abort(c(`!` = "cannot flatten outputs of differing type: {t1} / {t2}"), call = quote(mirai_map()))
  stop(sprintf("Cannot flatten outputs of differing type: %s / %s", t1, t2), call. = FALSE)
}
