# http_config(): launching daemons through HTTP requests (Posit Workbench by default).

#' Launch configuration for HTTP APIs
#'
#' `http_config()` describes how to start daemons by HTTP requests to a job-launching API, for
#' [launch_remote()] and `daemons(remote = )`. Its defaults launch jobs through Posit Workbench
#' from a session running in it.
#'
#' @param url the endpoint, or a function returning it (called at launch time).
#' @param method the HTTP method.
#' @param headers a named character vector of request headers, or a function returning one.
#' @param data the request body, which must contain `%s` where the daemon call goes, or a
#'   function returning it, called with the arguments in `...`.
#' @param ... arguments for `data` when it is a function. For the Posit Workbench default:
#'   `rscript` (default `"Rscript"`), `job_name` (`"mirai_daemon"`), `cluster` (the first
#'   available if `NULL`), `resource_profile`, or `cpus` and `memory` (megabytes).
#' @param cookie a value for a `Cookie` header, or a function returning it.
#' @param token a bearer token for an `Authorization` header, or a function returning it.
#'
#' @return A launch configuration (a list of type `"http"`). Making it never fails, even outside
#'   Posit Workbench: functions are only called when daemons are launched, so credentials are
#'   read then.
#'
#' @details One request is sent per daemon, with a 5 second timeout (through the `curl` command
#'   line tool). The daemon call (`mirai::daemon(...)`, escaped for a JSON string) is substituted
#'   into `data` with [sprintf()]. [launch_remote()] returns the responses, each
#'   `list(status, headers, data)`.
#'
#'   The Posit Workbench defaults read the server address and session cookie from the
#'   environment (`RS_SERVER_ADDRESS`, `RS_SESSION_RPC_COOKIE`) and raise
#'   `"can only be used from Posit Workbench"` elsewhere.
#'
#' @seealso [remote_config()], [launch_remote()].
#' @examples
#' cfg <- http_config(
#'   url = "https://launcher.example.com/api/jobs",
#'   headers = c(`Content-Type` = "application/json"),
#'   data = '{"command": "%s"}',
#'   token = function() Sys.getenv("LAUNCHER_TOKEN")
#' )
#' cfg$data
#' names(http_config())
#'
#' \dontrun{
#' # from a Posit Workbench session
#' daemons(n = 2, url = host_url(), remote = http_config(cpus = 2, memory = 4096))
#' }
http_config <- function(url = posit_workbench_url, method = "POST", headers = posit_workbench_headers,
                        data = posit_workbench_data, ..., cookie = NULL, token = NULL) {
  list(type = "http", url = url, method = method, headers = headers, data = data,
       dots = list(...), cookie = cookie, token = token)
}

.json_escape <- function(x) gsub("\n", "\\n", gsub("\"", "\\\"", gsub("\\", "\\\\", x, fixed = TRUE), fixed = TRUE), fixed = TRUE)

.http_launch <- function(remote, prof, dots, n) {
  val <- function(x) if (is.function(x)) x() else x
  url <- val(remote$url)
  headers <- val(remote$headers)
  cookie <- val(remote$cookie)
  token <- val(remote$token)
  if (!is.null(cookie)) headers <- c(headers, Cookie = cookie)
  if (!is.null(token)) headers <- c(headers, Authorization = paste("Bearer", token))
  data <- if (is.function(remote$data)) do.call(remote$data, remote$dots) else remote$data
  # The bare call, JSON-escaped by the engine, goes where `data` has `%s`.
  lapply(seq_len(n), function(i)
    .http_request(url, remote$method, headers, sprintf(data, .launch_cmd(prof, dots)[3L])))
}

# One HTTP request with a 5 s timeout through the curl command-line tool:
# list(status, headers, data).
.http_request <- function(url, method = "GET", headers = NULL, data = NULL, timeout = 5) {
  nzchar(Sys.which("curl")) || stop("HTTP launches need the `curl` command-line tool on the PATH")
  hfile <- tempfile()
  bfile <- tempfile()
  on.exit(unlink(c(hfile, bfile)))
  args <- c("-s", "-m", timeout, "-X", method, "-D", shQuote(hfile), "-o", shQuote(bfile))
  for (i in seq_along(headers)) args <- c(args, "-H", shQuote(sprintf("%s: %s", names(headers)[i], headers[[i]])))
  if (!is.null(data)) {
    dfile <- tempfile()
    on.exit(unlink(dfile), add = TRUE)
    writeLines(data, dfile, sep = "")
    args <- c(args, "--data-binary", shQuote(paste0("@", dfile)))
  }
  suppressWarnings(system2("curl", c(args, shQuote(url)), stdout = FALSE, stderr = FALSE))
  h <- if (file.exists(hfile)) readLines(hfile, warn = FALSE) else character()
  h <- sub("\r$", "", h)
  st <- grep("^HTTP/", h)
  status <- if (length(st)) as.integer(strsplit(h[st[length(st)]], " ")[[1L]][2L]) else 0L
  hl <- h[if (length(st)) seq.int(st[length(st)] + 1L, length.out = max(0L, length(h) - st[length(st)])) else 0L]
  hl <- hl[grepl(":", hl)]
  hdrs <- structure(as.list(trimws(sub("^[^:]*:", "", hl))), names = tolower(sub(":.*$", "", hl)))
  body <- if (file.exists(bfile)) paste(readLines(bfile, warn = FALSE), collapse = "\n") else ""
  list(status = status, headers = hdrs, data = body)
}

.posit_server <- function() {
  server <- Sys.getenv("RS_SERVER_ADDRESS")
  cookie <- .opts$rs_cookie %||% Sys.getenv("RS_SESSION_RPC_COOKIE")
  nzchar(server) && nzchar(cookie) || stop("can only be used from Posit Workbench")
  list(server = server, cookie = cookie)
}

posit_workbench_url <- function() file.path(.posit_server()$server, "api", "launch_job")

posit_workbench_headers <- function() {
  # Outside Workbench (no RPC cookie) only the content type, so that a launch given its own
  # `url` and `data` needs no Workbench.
  cookie <- .opts$rs_cookie %||% Sys.getenv("RS_SESSION_RPC_COOKIE")
  if (!nzchar(cookie)) return(c(`Content-Type` = "application/json"))
  c(`Content-Type` = "application/json", `X-RS-Session-Server-RPC-Cookie` = cookie, Cookie = cookie)
}

posit_workbench_data <- function(rscript = "Rscript", job_name = "mirai_daemon", cluster = NULL,
                                 resource_profile = NULL, cpus = NULL, memory = NULL) {
  requireNamespace("secretbase", quietly = TRUE) ||
    stop("the secretbase package is required, try: `install.packages('secretbase')`")
  ps <- .posit_server()
  res <- .http_request(file.path(ps$server, "api", "get_compute_envs"), "GET", posit_workbench_headers())
  if (res$status != 200L) stop("can only be used from Posit Workbench")
  envs <- secretbase::jsondec(res$data)
  clusters <- envs$result$clusters %||% envs$clusters
  cnames <- vapply(clusters, function(x) as.character(x$name), "")
  if (is.null(cluster)) cluster <- cnames[1L]
  k <- match(cluster, cnames)
  is.na(k) && stop(sprintf("cluster '%s' not found. Available: %s", cluster, paste(cnames, collapse = ", ")))
  cl <- clusters[[k]]
  image <- cl$defaultImage %||% cl$default_image %||% ""
  res_json <- if (is.null(cpus) && is.null(memory)) {
    profiles <- vapply(cl$resourceProfiles %||% cl$resource_profiles %||% list(), function(x) as.character(x$name), "")
    if (is.null(resource_profile)) resource_profile <- profiles[1L]
    resource_profile %in% profiles ||
      stop(sprintf("resource profile '%s' not found. Available: %s", resource_profile, paste(profiles, collapse = ", ")))
    sprintf("\"resourceProfile\":\"%s\"", .json_escape(resource_profile))
  } else {
    sprintf("\"resources\":{\"cpus\":%s,\"memory\":%s}", cpus %||% 1, memory %||% 512)
  }
  libs <- .json_escape(sprintf(".libPaths(c(%s))", paste(sprintf("\"%s\"", .libPaths()), collapse = ",")))
  json <- sprintf(
    "{\"method\":\"launch_job\",\"kwparams\":{\"job\":{\"cluster\":\"%s\",\"container\":{\"image\":\"%s\"},\"name\":\"%s\",\"exe\":\"%s\",\"args\":[\"-e\",\"{%s;\001}\"],%s}}}",
    .json_escape(cluster), .json_escape(image), .json_escape(job_name), .json_escape(rscript), libs, res_json
  )
  # the daemon call goes where \001 is, through sprintf(data, cmd)
  sub("\001", "%s", gsub("%", "%%", json, fixed = TRUE), fixed = TRUE)
}
