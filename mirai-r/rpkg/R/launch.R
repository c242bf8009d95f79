# Launching daemons and building their command lines; URLs.

local_url <- function(tcp = FALSE, port = 0) {
  if (tcp) return(sprintf("tcp://127.0.0.1:%d", as.integer(port)))
  id <- .hex24()
  switch(
    Sys.info()[["sysname"]],
    Linux = sprintf("abstract://%s", id),
    Windows = sprintf("ipc://%s", id),
    sprintf("ipc:///tmp/%s", id)
  )
}

host_url <- function(tls = FALSE, port = 0) {
  ips <- .ipv4()
  addr <- if (length(ips)) ips else Sys.info()[["nodename"]]
  url <- sprintf("%s://%s:%d", if (isTRUE(tls)) "tls+tcp" else "tcp", addr, as.integer(port))
  names(url) <- names(ips)
  url
}

# Non-loopback IPv4 addresses named by interface.
.ipv4 <- function() {
  out <- character()
  lines <- suppressWarnings(tryCatch(
    if (nzchar(Sys.which("ip"))) system2("ip", c("-4", "-o", "addr", "show"), stdout = TRUE, stderr = FALSE)
    else character(),
    error = function(e) character()
  ))
  for (l in lines) {
    f <- strsplit(trimws(l), "[[:space:]]+")[[1L]]
    k <- match("inet", f)
    if (!is.na(k) && k > 1L) out[sub(":$", "", f[k - 1L])] <- sub("/.*$", "", f[k + 1L])
  }
  if (!length(out) && nzchar(Sys.which("ifconfig"))) {
    lines <- suppressWarnings(tryCatch(system2("ifconfig", stdout = TRUE, stderr = FALSE), error = function(e) character()))
    iface <- ""
    for (l in lines) {
      if (grepl("^[^[:space:]]", l)) iface <- sub("[: ].*$", "", l)
      m <- regmatches(l, regexec("inet (addr:)?([0-9.]+)", l))[[1L]]
      if (length(m)) out[iface] <- m[3L]
    }
  }
  out[!grepl("^127\\.", out)]
}

# The profile to launch daemons for, or the launch errors.
.launch_profile <- function(.compute, call = sys.call(-1L)) {
  prof <- .profile(.compute)
  if (is.null(prof)) stop(simpleError("daemons must be set to use this function", call))
  if (prof$sync) stop(simpleError("daemons cannot be launched for synchronous compute profiles", call))
  prof
}

# Daemon arguments for a launch: `...` replaces the stored ones; a tlscert there replaces the
# profile's TLS material.
.launch_dots <- function(prof, dots) {
  if (!length(dots)) return(prof$dots)
  if (!is.null(dots[["tlscert"]])) prof$tls <- dots[["tlscert"]]
  .render(dots)
}

# The daemon call (spec 3.12 grammar); direct profiles take the next `rs` stream.
.daemon_call <- function(prof, dots) {
  tls <- prof$tls
  tlsarg <- if (length(tls) == 1L) sprintf(",tlscert=\"%s\"", tls)
  else if (length(tls) >= 2L) sprintf(",tlscert=c(\"%s\",\"%s\")", tls[1L], tls[2L])
  else ""
  if (prof$dispatcher) sprintf("mirai::daemon(\"%s\"%s%s)", prof$url, dots, tlsarg)
  else sprintf("mirai::daemon(\"%s\",dispatcher=FALSE%s%s,rs=c(%s))", prof$url, dots, tlsarg,
               paste(.next_rs(prof), collapse = ","))
}

.launch_local1 <- function(prof, dots) {
  .Call(mirai_host_launch, prof$host, .rscript(), c("-e", .daemon_call(prof, dots)))
}

launch_local <- function(n = 1L, ..., .compute = NULL) {
  prof <- .launch_profile(.compute)
  dots <- .launch_dots(prof, list(...))
  for (i in seq_len(n)) .launch_local1(prof, dots)
  n
}

launch_remote <- function(n = 1L, remote = remote_config(), ..., .compute = NULL) {
  if (inherits(n, "miraiCluster")) {
    .compute <- attr(n, "id")
    n <- length(n)
  } else if (inherits(n, "miraiNode")) {
    .compute <- attr(n, "id")
    n <- 1L
  }
  prof <- .launch_profile(.compute)
  n <- as.integer(n)
  args <- remote$args
  if (is.list(args) && length(args) > 1L) {
    if (n != 1L && n != length(args)) stop("`n` must equal the length of `args`, or either must be 1")
    n <- length(args)
  }
  if (isTRUE(remote$tunnel)) {
    hp <- .url_host_port(prof$url)
    identical(hp[[1L]], "127.0.0.1") || stop("SSH tunnelling requires daemons `url` hostname to be `127.0.0.1`")
  }
  dots <- .launch_dots(prof, list(...))
  if (identical(remote$type, "http")) return(invisible(.http_launch(remote, prof, dots, n)))
  cmds <- character(n)
  for (i in seq_len(n)) cmds[i] <- sprintf("%s -e %s", remote$rscript, shQuote(.daemon_call(prof, dots)))
  command <- remote$command
  if (!is.null(command)) {
    for (i in seq_len(n)) {
      a <- if (is.list(args)) args[[min(i, length(args))]] else args
      if (isTRUE(remote$tunnel)) a[1L] <- sprintf("-R %s:127.0.0.1:%s %s", hp[[2L]], hp[[2L]], a[1L])
      if (is.null(remote$quote)) {
        system2(command, c("-c", shQuote(paste0(a[1L], cmds[i], a[3L]))), wait = FALSE)
      } else {
        a[a == "."] <- if (isTRUE(remote$quote)) shQuote(cmds[i]) else cmds[i]
        system2(command, a, wait = FALSE)
      }
    }
  }
  structure(cmds, class = "miraiLaunchCmd")
}

# list(host, port) of a URL such as tcp://127.0.0.1:5555 or ws://[::1]:80/path.
.url_host_port <- function(url) {
  m <- regmatches(url, regexec("^[a-z+]+://(\\[[^]]*\\]|[^:/]*)(:([0-9]+))?", url))[[1L]]
  if (!length(m)) return(list("", ""))
  list(m[2L], m[4L])
}

print.miraiLaunchCmd <- function(x, ...) {
  for (i in seq_along(x)) cat(sprintf("[%d]\n%s\n\n", i, x[i]))
  invisible(x)
}

remote_config <- function(command = NULL, args = c("", "."), rscript = "Rscript", quote = FALSE) {
  for (a in if (is.list(args)) args else list(args))
    "." %in% a || stop("`.` must be an element of the character vector(s) supplied to `args`", call. = FALSE)
  list(command = command, args = args, rscript = rscript, quote = quote, tunnel = FALSE)
}

ssh_config <- function(remotes, tunnel = FALSE, timeout = 10, command = "ssh", rscript = "Rscript") {
  args <- lapply(remotes, function(r) {
    x <- sub("^ssh://", "", r)
    port <- "22"
    if (grepl(":[0-9]+$", x)) {
      port <- sub("^.*:([0-9]+)$", "\\1", x)
      x <- sub(":[0-9]+$", "", x)
    }
    c(sprintf("-o ConnectTimeout=%s -fTp %s", as.character(timeout), port), x, ".")
  })
  list(command = command, args = args, rscript = rscript, quote = TRUE, tunnel = isTRUE(tunnel))
}

cluster_config <- function(command = "sbatch", options = "", rscript = "Rscript") {
  options <- gsub("(^|\n)[ \t]+", "\\1", options)
  list(command = "/bin/sh",
       args = c(sprintf("%s<<'EOF'\n#!/bin/sh\n%s\n", command[[1L]], options), ".", "\nEOF"),
       rscript = rscript, quote = NULL)
}

# PEM text: the contents of a file for a length-one path, else the value itself.
.read_pem <- function(x) {
  if (is.character(x) && length(x) == 1L && file.exists(x)) paste(readLines(x, warn = FALSE), collapse = "\n")
  else x
}
