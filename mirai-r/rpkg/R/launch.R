# Launching daemons (spec 2.6, 3.12), TLS set-up for URL profiles (spec 3.11), and URLs.
#
# Launch commands are built by the engine (mirai-host's `remote` module, through
# `mirai_launch_command`), which quotes every part for each shell it passes through: the URL,
# certificates and argument names can never break out of their place in
# `<rscript> -e '<call>'`, nor out of the ssh or job-script layer around it. What stays raw is
# what the user gives as shell text: `rscript`, a remote's `command` and `args`, and a
# scheduler's `options`.
#
# Daemons started elsewhere must find the mirai package. Over ssh the remote user's shell does
# not inherit the host's environment, so give the library in `rscript`, for example
# `ssh_config(..., rscript = "R_LIBS=/opt/rlib Rscript")`; Slurm's `sbatch` passes the
# submitting environment (R_LIBS included) to the job by default, other schedulers may need the
# same `rscript` prefix or an `export R_LIBS=...` line in `options`.

#' URLs for daemons to dial
#'
#' `host_url()` gives URLs at the network addresses of this machine, for daemons on other
#' machines; `local_url()` gives a URL that only processes on this machine can reach.
#'
#' @param tls `TRUE` for a `tls+tcp://` URL, `FALSE` for `tcp://`.
#' @param port the port, from 0 to 65535; `0` lets the system choose a free port when the host
#'   starts listening.
#' @param tcp `TRUE` for `tcp://127.0.0.1:<port>` (for example at the end of an SSH tunnel),
#'   `FALSE` for a new random local socket URL.
#'
#' @return `host_url()`: a character vector with one URL per non-loopback IPv4 address, named by
#'   network interface (such as `eth0`), or one unnamed URL with the machine's name if there is
#'   none; [daemons()] uses the first. `local_url()`: one URL, `abstract://<random>` on Linux,
#'   `ipc:///tmp/<random>` on other Unix systems and `ipc://<random>` (a named pipe) on Windows,
#'   or `tcp://127.0.0.1:<port>`.
#'
#' @details `local_url()` is also what `daemons(n)` and one-off mirai use for local daemons.
#'
#' @seealso [daemons()], [launch_remote()].
#' @examples
#' host_url()
#' host_url(tls = TRUE, port = 5555)
#' local_url()
#' local_url(tcp = TRUE, port = 5555)
local_url <- function(tcp = FALSE, port = 0) {
  if (!is.logical(tcp) || length(tcp) != 1L || is.na(tcp)) stop("`tcp` must be TRUE or FALSE")
  if (tcp) {
    port <- .check_port(port)
    return(sprintf("tcp://127.0.0.1:%d", port))
  }
  id <- .hex24()
  switch(
    Sys.info()[["sysname"]],
    Linux = sprintf("abstract://%s", id),
    Windows = sprintf("ipc://%s", id),
    sprintf("ipc:///tmp/%s", id)
  )
}

#' @rdname local_url
host_url <- function(tls = FALSE, port = 0) {
  port <- .check_port(port)
  ips <- .ipv4()
  addr <- if (length(ips)) ips else Sys.info()[["nodename"]]
  url <- sprintf("%s://%s:%d", if (isTRUE(tls)) "tls+tcp" else "tcp", addr, port)
  names(url) <- names(ips)
  url
}

# `port` as an integer: one whole number from 0 (any free port) to 65535.
.check_port <- function(port, call = sys.call(-1L)) {
  if (!is.numeric(port) || length(port) != 1L || is.na(port) || port < 0 || port > 65535 || port != trunc(port))
    stop(simpleError("`port` must be a single whole number from 0 to 65535", call))
  as.integer(port)
}

# A count of daemons to launch: one whole number from 0 to the largest integer.
.check_count <- function(n, call = sys.call(-1L)) {
  if (!is.numeric(n) || length(n) != 1L || is.na(n) || n < 0 || n >= .Machine$integer.max + 1)
    stop(simpleError("`n` must be a single non-negative number of daemons", call))
  as.integer(n)
}

.msg_remote <- "`remote` must be a launch configuration from remote_config(), ssh_config(), cluster_config() or http_config()"

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

# TLS for a profile listening at `url` (spec 3.11); returns the listener's `attr(url, "tls")`,
# or NULL for a non-TLS scheme.
#
# Zero configuration (`tls` NULL): fresh single-use credentials with mutual authentication.
# The host presents a certificate for the URL's host, and requires each daemon to present the
# client certificate issued for this profile; both travel in the launch commands as
# `tlscert = c("<CA>", "<client certificate and key>")`. A process that reaches the port
# without that identity is refused during the TLS handshake, before it is told anything.
#
# User-supplied credentials: `tls` is a PEM file holding the certificate (chain) and key, or
# `c(cert, key)`; the host then authenticates itself only, and daemons connect with
# `tlscert = <CA file>` or `c(<CA PEM>, "")`. To require client certificates with your own
# CA, give it as a third element, `tls = c(cert, key, client_ca)`, and give daemons
# `tlscert = c(<CA>, <client certificate followed by its key>)` (PEM text or file paths).
.tls_setup <- function(prof, url, tls, pass) {
  if (!grepl("^(tls\\+tcp|wss)://", url)) return(NULL)
  if (is.null(tls)) {
    host <- gsub("^\\[|\\]$", "", .url_host_port(url)[[1L]])
    z <- .Call(mirai_tls_zero_config, host)
    prof$tls <- c(z[3L], z[4L])
    return(list(cert = z[1:2], pass = NULL, client_ca = z[3L]))
  }
  tls <- .read_pem(tls)
  list(cert = tls[seq_len(min(2L, length(tls)))],
       pass = if (is.function(pass)) pass() else pass,
       client_ca = if (length(tls) >= 3L && nzchar(tls[3L])) tls[3L])
}

# PEM text: each element that is not PEM text itself but names an existing file is replaced by
# the file's contents (a single path may hold a certificate and its key).
.read_pem <- function(x) {
  if (!is.character(x)) return(x)
  for (i in seq_along(x)) {
    if (!is.na(x[i]) && nzchar(x[i]) && !grepl("-----BEGIN", x[i], fixed = TRUE) && file.exists(x[i]))
      x[i] <- paste(readLines(x[i], warn = FALSE), collapse = "\n")
  }
  x
}

# The profile to launch daemons for, or the launch errors.
.launch_profile <- function(.compute, call = sys.call(-1L)) {
  prof <- .profile(.compute)
  if (is.null(prof)) stop(simpleError("daemons must be set to use this function", call))
  if (prof$sync) stop(simpleError("daemons cannot be launched for synchronous compute profiles", call))
  prof
}

# `...` daemon arguments as stored in a profile: `,name=value` for each named logical or
# numeric value, in order, written by the engine (other types are dropped).
#
# Values a daemon() would refuse at start-up are errors here, in the caller's name: a daemon
# that cannot start never connects, and daemons(n) would wait for it forever.
.daemon_args <- function(dots, call = sys.call(-1L)) {
  .check_tlscert(dots[["tlscert"]], call)
  nms <- names(dots)
  if (is.null(nms) || !length(dots)) return("")
  keep <- vapply(seq_along(dots), function(i) {
    v <- dots[[i]]
    nzchar(nms[i]) && (is.logical(v) || is.numeric(v)) && length(v) > 0L
  }, logical(1L))
  nms <- nms[keep]
  vals <- lapply(dots[keep], `[`, 1L)
  fail <- function(msg) stop(simpleError(msg, call))
  for (i in seq_along(nms)) {
    nm <- nms[i]
    v <- vals[[i]]
    if (nm %in% c("asyncdial", "cleanup", "output") && is.na(v))
      fail(sprintf("`%s` must be TRUE or FALSE", nm))
    if (nm %in% c("idletime", "walltime", "maxtasks") && !is.na(v) && v < 0)
      fail(sprintf("`%s` must be a non-negative number (or Inf for no limit)", nm))
    # The launch command gives daemon() its URL, mode and RNG stream itself; a name that
    # would (partially) match one of those would be matched twice.
    if (nm == "rs" || startsWith("url", nm) || startsWith("dispatcher", nm))
      fail(sprintf("`%s` cannot be given as a daemon argument: the launch command sets it", nm))
  }
  dup <- nms[duplicated(nms)]
  if (length(dup)) fail(sprintf("daemon argument `%s` is given more than once", dup[1L]))
  # as.character(NA) is NA_character_; the literal daemon() reads is "NA".
  vals <- vapply(vals, function(v) if (is.na(v) && !is.nan(v)) "NA" else as.character(v), "", USE.NAMES = FALSE)
  .Call(mirai_daemon_args, nms, vals)
}

# `tlscert` for daemons: NULL, or a CA file path or PEM text, optionally with a client identity
# (one or two strings, no NA).
.check_tlscert <- function(x, call = sys.call(-1L)) {
  if (!is.null(x) && (!is.character(x) || !length(x) || length(x) > 2L || anyNA(x)))
    stop(simpleError("`tlscert` must be NULL, a CA certificate file or PEM text, or c(<CA>, <client identity>)", call))
}

# Daemon arguments for a launch: `...` replaces the stored ones; a tlscert there replaces the
# profile's TLS material.
.launch_dots <- function(prof, dots, call = sys.call(-1L)) {
  if (!length(dots)) return(prof$dots)
  rendered <- .daemon_args(dots, call)
  if (!is.null(dots[["tlscert"]])) prof$tls <- dots[["tlscert"]]
  rendered
}

# c(command, call, json_call, line) for one daemon; direct profiles take the next `rs` stream.
.launch_cmd <- function(prof, dots, rscript = "Rscript", deploy = NULL) {
  spec <- list(url = prof$url, dispatcher = prof$dispatcher, dots = dots,
               tlscert = prof$tls, rs = if (!prof$dispatcher) .next_rs(prof))
  .Call(mirai_launch_command, spec, rscript, deploy)
}

# The daemon call (spec 3.12 grammar).
.daemon_call <- function(prof, dots) .launch_cmd(prof, dots)[2L]

.launch_local1 <- function(prof, dots) {
  .Call(mirai_host_launch, prof$host, .rscript(), c("-e", .child_call(.daemon_call(prof, dots))))
}

#' Launch daemons
#'
#' These start daemons for a profile that is already set, at any time: `launch_local()` on this
#' machine; `launch_remote()` elsewhere, through a launch configuration, or by returning the
#' shell commands to run by hand.
#'
#' @param n the number of daemons. For `launch_remote()` also a cluster made by
#'   [make_cluster()] (one daemon per node) or a single node of one.
#' @param remote a launch configuration from [remote_config()], [ssh_config()],
#'   [cluster_config()] or [http_config()]. The default, `remote_config()`, launches nothing:
#'   the commands are returned for deployment by hand.
#' @param ... arguments for [daemon()], such as `maxtasks = 10` or `idletime = 60000`. If given,
#'   they replace (not add to) those stored in the profile by [daemons()].
#' @param .compute the name of the compute profile, or `NULL` for the current default.
#'
#' @return `launch_local()`: `n`. `launch_remote()`: the launch commands, a character vector of
#'   class `miraiLaunchCmd` printed one by one; with [http_config()], the list of HTTP
#'   responses instead (each `list(status, headers, data)`), invisibly.
#'
#' @details Neither waits for the daemons to connect: check with [status()], or just send
#'   tasks, which wait in the queue. The commands have the form
#'   `Rscript -e 'mirai::daemon("<url>", <arguments>)'` and carry the profile's TLS material
#'   when it uses TLS. Launched commands are not waited for, so an error on the remote side
#'   (a wrong host name, say) shows only as a daemon that never connects.
#'
#'   Errors: the profile must be set (`"daemons must be set to use this function"`) and not be
#'   a sync profile.
#'
#' @seealso [daemons()], [daemon()], `vignette("remote", package = "mirai")`.
#' @examples
#' daemons(url = local_url())
#' launch_local(2)
#' mirai_map(1:2, function(x) x)[.flat]
#' status()$connections
#' launch_remote(2) # commands to run by hand
#' daemons(0)
#'
#' \dontrun{
#' daemons(url = host_url(port = 5555))
#' launch_remote(2, remote = ssh_config(c("ssh://node1", "ssh://node2")))
#' }
launch_local <- function(n = 1L, ..., .compute = NULL) {
  prof <- .launch_profile(.compute)
  k <- .check_count(n)
  dots <- .launch_dots(prof, list(...))
  for (i in seq_len(k)) .launch_local1(prof, dots)
  n
}

#' @rdname launch_local
launch_remote <- function(n = 1L, remote = remote_config(), ..., .compute = NULL) {
  if (inherits(n, "miraiCluster")) {
    .compute <- attr(n, "id")
    n <- length(n)
  } else if (inherits(n, "miraiNode")) {
    .compute <- attr(n, "id")
    n <- 1L
  }
  prof <- .launch_profile(.compute)
  n <- .check_count(n)
  if (is.null(remote)) remote <- remote_config()
  if (!is.list(remote)) stop(.msg_remote)
  args <- remote$args
  if (is.list(args) && length(args) > 1L) {
    if (n != 1L && n != length(args)) stop("`n` must equal the length of `args`, or either must be 1")
    n <- length(args)
  }
  tunnel <- NULL
  if (isTRUE(remote$tunnel)) {
    hp <- .url_host_port(prof$url)
    identical(hp[[1L]], "127.0.0.1") || stop("SSH tunnelling requires daemons `url` hostname to be `127.0.0.1`")
    tunnel <- as.integer(hp[[2L]])
  }
  dots <- .launch_dots(prof, list(...))
  if (identical(remote$type, "http")) return(invisible(.http_launch(remote, prof, dots, n)))
  command <- remote$command
  rscript <- remote$rscript %||% "Rscript"
  cmds <- character(n)
  for (i in seq_len(n)) {
    deploy <- if (!is.null(command)) {
      list(command = command, args = if (is.list(args)) args[[min(i, length(args))]] else args,
           quote = remote$quote, tunnel = tunnel)
    }
    cmd <- .launch_cmd(prof, dots, rscript, deploy)
    cmds[i] <- cmd[1L]
    # `/bin/sh -c <line>` (the cluster form: its own shell with the script), not waited for.
    # Not through the host's launcher: these are ssh or submit commands, not daemons for it
    # to track (system2 adds one more shell, hence the shQuote).
    if (!is.null(command))
      system2(if (is.null(remote$quote)) command else "/bin/sh", c("-c", shQuote(cmd[4L])), wait = FALSE)
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

#' A generic launch configuration
#'
#' `remote_config()` describes how to run a launch command through any program, such as a
#' scheduler's `srun` or a container runner, for [launch_remote()] and `daemons(remote = )`.
#'
#' @param command the program to run, for example `"srun"`; `NULL` to launch nothing (the
#'   commands are only returned).
#' @param args a character vector of arguments for `command`, in which the element `"."` is
#'   replaced by the launch command; or a list of such vectors, one per daemon (for example one
#'   per machine).
#' @param rscript how to call Rscript on the other side: a path, or `Rscript` with settings such
#'   as `"R_LIBS=/opt/rlib Rscript"` or extra flags.
#' @param quote `TRUE` to shell-quote the launch command where it replaces `"."` (needed when
#'   `command` hands it to another shell, as `ssh` and `sbatch --wrap` do); `FALSE` to insert it
#'   as it is.
#'
#' @return A launch configuration: `list(command, args, rscript, quote, tunnel = FALSE)`.
#'
#' @details The command runs in the background through `/bin/sh` and is not waited for. `args`
#'   and `rscript` are shell text, inserted as given. Each vector in `args` must contain `"."`,
#'   or an error is raised at once. With a list of k vectors, `launch_remote()` launches k
#'   daemons (`n` must then be 1 or k).
#'
#' @seealso [ssh_config()], [cluster_config()], [http_config()], [launch_remote()].
#' @examples
#' str(remote_config())
#' # Slurm's srun, one daemon per call
#' str(remote_config(command = "srun", args = c("--mem 512", "-n 1", ".")))
#' # two machines, through a command of your own
#' str(remote_config("my-launcher", args = list(c("-h", "node1", "."), c("-h", "node2", "."))))
remote_config <- function(command = NULL, args = c("", "."), rscript = "Rscript", quote = FALSE) {
  for (a in if (is.list(args) && length(args)) args else list(args))
    "." %in% a || stop("`.` must be an element of the character vector(s) supplied to `args`", call. = FALSE)
  is.null(command) || .is_string(command) || stop("`command` must be NULL or a single character string")
  .is_string(rscript) || stop("`rscript` must be a single character string")
  is.logical(quote) && length(quote) == 1L && !is.na(quote) || stop("`quote` must be TRUE or FALSE")
  list(command = command, args = args, rscript = rscript, quote = quote, tunnel = FALSE)
}

# TRUE for one non-NA string.
.is_string <- function(x) is.character(x) && length(x) == 1L && !is.na(x)

#' Launch configuration for SSH
#'
#' `ssh_config()` describes how to start daemons on other machines over SSH, for
#' [launch_remote()] and `daemons(remote = )`.
#'
#' @param remotes a character vector of `ssh://[user@]host[:port]` URLs, one per machine (the port
#'   defaults to 22).
#' @param tunnel `TRUE` to have daemons dial back through the SSH connection (a reverse tunnel),
#'   for machines that cannot reach the host directly; the profile's URL must then be
#'   `tcp://127.0.0.1:<port>` ([local_url()] with `tcp = TRUE`).
#' @param timeout the SSH connection timeout, in seconds.
#' @param command the ssh program, `"ssh"` or a full path.
#' @param rscript how to call Rscript on the remote machines, for example
#'   `"R_LIBS=/opt/rlib Rscript"` when mirai is installed in a library that the remote shell does
#'   not know about.
#'
#' @return A launch configuration (a list), with one argument vector per remote.
#'
#' @details Each daemon is started as `ssh -o ConnectTimeout=<timeout> -fTp <port> <host>
#'   '<launch command>'`. SSH authentication must work without a password prompt (keys or an
#'   agent). With `tunnel = TRUE`, `-R <port>:127.0.0.1:<port>` is added so that the daemon's
#'   `127.0.0.1:<port>` on the remote side leads to the host. Without TLS, anyone who can reach a
#'   `tcp://` port can join as a daemon: prefer `tls+tcp://` URLs or the tunnel on open networks.
#'
#' @seealso [remote_config()], [cluster_config()], [launch_remote()], [host_url()].
#' @examples
#' cfg <- ssh_config(c("ssh://10.75.32.90:222", "ssh://user@node2"), timeout = 5)
#' cfg$args
#' str(ssh_config("ssh://node1", tunnel = TRUE, rscript = "R_LIBS=/opt/rlib Rscript"))
#'
#' \dontrun{
#' # one daemon on each of two machines, over TLS
#' daemons(url = host_url(tls = TRUE, port = 5555),
#'         remote = ssh_config(c("ssh://node1", "ssh://node2")))
#' # through reverse tunnels: the daemons dial 127.0.0.1:5555 on their side
#' daemons(n = 2, url = local_url(tcp = TRUE, port = 5555),
#'         remote = ssh_config("ssh://node1", tunnel = TRUE))
#' }
ssh_config <- function(remotes, tunnel = FALSE, timeout = 10, command = "ssh", rscript = "Rscript") {
  is.character(remotes) && length(remotes) || stop("`remotes` must be a character vector of ssh://[user@]host[:port] URLs")
  is.numeric(timeout) && length(timeout) == 1L && !is.na(timeout) && timeout >= 0 ||
    stop("`timeout` must be a number of seconds")
  .is_string(command) || stop("`command` must be a single character string")
  .is_string(rscript) || stop("`rscript` must be a single character string")
  args <- lapply(remotes, function(r) {
    x <- sub("^ssh://", "", r)
    port <- "22"
    if (grepl(":[0-9]+$", x) && !grepl("^[^[]*:.*:", x)) {
      port <- sub("^.*:([0-9]+)$", "\\1", x)
      x <- sub(":[0-9]+$", "", x)
    }
    x <- sub("^(.*@)?\\[(.*)\\]$", "\\1\\2", x)
    # The destination goes to the local shell as one word: only characters of user names, host
    # names and IP addresses are accepted.
    grepl("^([A-Za-z0-9._-]+@)?[A-Za-z0-9._:%-]+$", x) ||
      stop(sprintf("invalid SSH remote '%s': expected ssh://[user@]host[:port]", r), call. = FALSE)
    c(sprintf("-o ConnectTimeout=%s -fTp %s", as.character(timeout), port), x, ".")
  })
  list(command = command, args = args, rscript = rscript, quote = TRUE, tunnel = isTRUE(tunnel))
}

#' Launch configuration for HPC schedulers
#'
#' `cluster_config()` describes how to start daemons as jobs of a cluster scheduler: Slurm
#' (`sbatch`), SGE and Torque/PBS (`qsub`) or LSF (`bsub`), for [launch_remote()] and
#' `daemons(remote = )`.
#'
#' @param command the submit command: `"sbatch"`, `"qsub"` or `"bsub"`.
#' @param options the job script's preamble as one string, one line per directive or shell
#'   command, such as `"#SBATCH --mem=4G\nmodule load R"`. Leading spaces and tabs are removed
#'   from each line; no shebang line is needed.
#' @param rscript how to call Rscript in the job, a path or `Rscript` with settings.
#'
#' @return A launch configuration (a list) that feeds a job script to `command` through a
#'   here-document.
#'
#' @details One job is submitted per daemon, each a script made of `options` followed by the
#'   launch command. For many daemons, prefer one submission of a job array (`n = 1` with, for
#'   Slurm, `#SBATCH --array=1-100` in `options`). Jobs start when the scheduler allows: the
#'   profile simply queues tasks until the daemons connect.
#'
#' @seealso [remote_config()], [ssh_config()], [launch_remote()].
#' @examples
#' cfg <- cluster_config(options = "#SBATCH --job-name=mirai
#'                                  #SBATCH --mem=4G
#'                                  module load R")
#' cat(cfg$args[1L])
#' str(cluster_config("qsub", options = "#$ -l mem_free=4G"))
#'
#' \dontrun{
#' daemons(n = 4, url = host_url(), remote = cfg)
#' }
cluster_config <- function(command = "sbatch", options = "", rscript = "Rscript") {
  is.character(command) && length(command) && !is.na(command[[1L]]) && nzchar(command[[1L]]) ||
    stop("`command` must be the scheduler's submit command, e.g. \"sbatch\"")
  .is_string(options) || stop("`options` must be a single character string (one directive per line)")
  .is_string(rscript) || stop("`rscript` must be a single character string")
  options <- gsub("(^|\n)[ \t]+", "\\1", options)
  list(command = "/bin/sh",
       args = c(sprintf("%s<<'EOF'\n#!/bin/sh\n%s\n", command[[1L]], options), ".", "\nEOF"),
       rscript = rscript, quote = NULL)
}
