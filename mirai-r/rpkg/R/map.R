# mirai_map() and collection with options (.flat, .progress, .stop).

# The collection options. Only their use inside `[` and collect_mirai() is part of the API: `[`
# reads the option names unevaluated, and collect_mirai() takes them by name.
#' Options for collecting a mirai map
#'
#' `.flat`, `.progress` and `.stop` are written inside the brackets when a [mirai_map()] is
#' collected, `x[.flat]`, `x[.progress, .stop]`, or given by name to [collect_mirai()], to change
#' how the results are gathered.
#'
#' @format Each is a character string naming the option; only its use in `x[...]` and
#'   [collect_mirai()] counts.
#'
#' @details
#' - `.flat` returns the results as a vector rather than a list (`unlist(recursive = FALSE)`,
#'   names kept; classes such as Date are dropped), provided they all have the type of the
#'   first. An error value, or a result of another type, cancels the rest of the map and raises
#'   an error that gives the index.
#' - `.progress` shows a progress bar as results arrive: a 'cli' bar when the cli package is
#'   installed, else a text counter on standard error.
#' - `.stop` stops at the first error value, in index order: the rest of the map is cancelled
#'   ([stop_mirai()]) and an error is raised that gives the index (and name) of the element and
#'   its error message.
#'
#' Results are always collected in index order, and options combine in any order, for example
#' `x[.stop, .progress]`. They are looked up by name rather than evaluated, so
#' `mirai::mirai_map(...)[.flat]` works without attaching the package. Anything else inside the
#' brackets, such as a number, is ignored: `[` never subsets a `mirai_map` (use `[[`).
#'
#' @seealso [mirai_map()], [collect_mirai()].
#' @examples
#' daemons(sync = TRUE)
#' mp <- mirai_map(1:3, function(x) x * 10)
#' mp[.flat]
#' mirai_map(1:3, function(x) x * 10)[.progress, .flat]
#' tryCatch(
#'   mirai_map(list(1, "a", 3), function(x) x + 1)[.stop],
#'   error = function(e) cat(conditionMessage(e), "\n")
#' )
#' daemons(0)
.flat <- ".flat"
#' @rdname dot-flat
#' @format NULL
.progress <- ".progress"
#' @rdname dot-flat
#' @format NULL
.stop <- ".stop"

#' Map a function over a list or the rows of a data frame, in parallel
#'
#' `mirai_map()` applies `.f` to each element of a vector or list, or to each row of a data
#' frame or matrix, sending one task per element or row to the daemons of a profile. It returns
#' at once; the results are collected with `[]`.
#'
#' @param .x a vector or list, a data frame, or a matrix (any object with `dim`).
#' @param .f a function. It receives each element (or row) as its first argument(s); see Details.
#' @param ... objects placed in each daemon's global environment, all named or a single
#'   environment, as in [mirai()]: helper functions that `.f` calls go here.
#' @param .args a named list of further arguments passed to `.f`, the same for every element.
#' @param .promise (requires the promises package) a function to attach to each element as its
#'   `onFulfilled` handler with [promises::then()], or a list of two functions: `onFulfilled`
#'   and `onRejected`.
#' @inheritParams mirai
#'
#' @return A `mirai_map`, invisibly: a list of mirai, one per element or row, named as `.x` is.
#'   It prints as `< mirai map [k/n] >`, with `k` of the `n` tasks resolved. `x[]` waits for them
#'   all and returns the list of values; see [.flat] for the options `.flat`, `.progress` and
#'   `.stop`.
#'
#' @details
#' **What `.f` receives.**
#' - Vector or list: `.f(<element>, <.args>)`, each element as the first argument (so a Date or
#'   factor keeps its class). Results are named by `names(.x)`.
#' - Data frame: one task per row, the row's columns matched to the arguments of `.f` **by
#'   name**: `do.call(.f, c(<row as a list>, .args))`. Results are named by the row names if
#'   they are character.
#' - Matrix: one task per row, `as.list(.x[i, ])`, matched by column name if there are column
#'   names, by position otherwise. To map over columns, map over `as.list(df)` or `t(mat)`.
#'
#' Each element remains its own mirai, with its own value, error value and cancellation, even
#' when many short elements are sent to a daemon together to save round trips (which this
#' implementation does for maps much larger than the number of daemons).
#'
#' Daemons must be set on the profile (a sync profile counts); otherwise an error says how to
#' set them. With a `seed` on the profile each element receives its own random-number stream,
#' in element order, so results are reproducible whatever the number of daemons. Code run by
#' `.f` cannot start local daemons itself (`daemons(n)`): that is an error.
#'
#' @seealso [.flat] (collection options), [collect_mirai()], [mirai()], [everywhere()].
#' @examples
#' daemons(2)
#' # a vector: one task per element, results named as the input
#' mp <- mirai_map(c(a = 1, b = 2, c = 3), function(x, p) x^p, .args = list(p = 2))
#' mp[]
#' # as a vector
#' mirai_map(1:3, sqrt)[.flat]
#' # a data frame: one task per row, columns matched to the arguments by name
#' df <- data.frame(y = c(10, 20, 30), x = 1:3)
#' mirai_map(df, function(x, y) x + y)[.flat]
#' # a matrix: one task per row
#' mirai_map(matrix(1:4, 2), function(a, b) a * b)[.flat]
#' # helpers for `.f` go in `...`
#' mirai_map(1:2, function(x) twice(x), twice = function(z) 2 * z)[.flat]
#' daemons(0)
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
  sizes <- .chunk_sizes(prof, length(rows), rows)
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

# Chunking (mirai-r/src/chunk.rs). A map of many elements is serialized as fewer, larger
# payloads (chunks) of consecutive elements, to save R's per-task work on both sides; but every
# element stays a task of the engine (a unit): counted, cancelled, lost and retried on its own.
# How many elements go to a daemon at once is the dispatcher's choice, from how long they take
# there (mirai-sched's units: one at a time until measured, or when slow; about 1 ms of work at
# a time when quick; the unstarted ones of a daemon taken back when another falls idle), so a
# map of slow functions is spread over every daemon as with one task per element. Chunk sizes
# follow "guided" scheduling: each takes 1/(8 d) of the elements left (d: daemons), at most
# `.chunk_max`. Not chunked: maps of fewer than 16 elements per daemon, where per-task costs
# matter little; maps of large elements (over `.chunk_bytes` each on average), as a chunk
# travels whole with each batch of its elements; and profiles without a dispatcher, which send
# each task on its own. NULL: no chunking; otherwise the chunk sizes, in order.
.chunk_max <- 64L
.chunk_bytes <- 4096

.chunk_sizes <- function(prof, n, rows = NULL) {
  if (prof$sync || isFALSE(prof$dispatcher)) return(NULL)
  d <- max(1L, prof$n, .Call(mirai_host_status, prof$host)$counters[1L])
  if (n < 16L * d || (!is.null(rows) && utils::object.size(rows) > .chunk_bytes * n)) return(NULL)
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

#' Collect the values of mirai
#'
#' `collect_mirai()` waits for a mirai, or for every mirai in a list, and returns the values
#' themselves.
#'
#' @param x a mirai, or a list of mirai such as a [mirai_map()].
#' @param options for a list, collection options: a character vector drawn from `".flat"`,
#'   `".progress"` and `".stop"`, or a named list whose names are options, for example
#'   `list(.stop = TRUE, .progress = "my bar")`; see [.flat]. A character value for `.progress`
#'   names the 'cli' progress bar, and a list is passed on to [cli::cli_progress_bar()].
#'
#' @return The value of a mirai; for a list, a list of the values with the names of `x` (or a
#'   vector with `.flat`).
#'
#' @details The wait can be interrupted by the user. `collect_mirai(x)` is the same as `x[]`, and
#'   `collect_mirai(x, c(".stop", ".progress"))` the same as `x[.stop, .progress]`. An unknown
#'   option is an error.
#'
#' @seealso [call_mirai()], which returns the mirai rather than the values; [.flat].
#' @examples
#' daemons(1)
#' m <- mirai(Sys.Date())
#' collect_mirai(m)
#' mp <- mirai_map(1:3, function(x) x + 0.5)
#' collect_mirai(mp, ".flat")
#' collect_mirai(list(mirai(1), mirai("b")))
#' daemons(0)
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
    # Kept in a list: a value that is the empty symbol cannot be bound to a variable.
    v <- list(if (is_mirai(m)) m[] else m)
    out[i] <- v
    err <- !is.symbol(v[[1L]]) && is_error_value(v[[1L]])
    for (op in ops) switch(
      op,
      .stop = if (err) {
        stop_mirai(x)
        .index_error(i, v[[1L]], names(x)[i])
      },
      .flat = {
        if (err) {
          stop_mirai(x)
          .index_error(i, v[[1L]], names(x)[i])
        }
        if (is.null(typ)) typ <- typeof(v[[1L]])
        else if (typeof(v[[1L]]) != typ) {
          stop_mirai(x)
          .flat_error(typ, typeof(v[[1L]]))
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
