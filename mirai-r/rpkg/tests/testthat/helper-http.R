# A local HTTP server for the http_config() tests (test-http-config.R).

# An HTTP server on 127.0.0.1 (python3's http.server, written for the test): it logs each request
# as 3 lines (method and path; a tab-separated header digest; the body) and answers launch
# requests with 200 and Workbench's get_compute_envs with a cluster list.
start_http <- function(envir = parent.frame()) {
  py <- Sys.which("python3")
  if (!nzchar(py)) stop("python3 is needed for the HTTP server of this test (scripts/deps.sh installs it)")
  if (!nzchar(Sys.which("curl"))) stop("curl is needed by http_config launches (scripts/deps.sh installs it)")
  dir <- tempfile("http")
  dir.create(dir)
  log <- file.path(dir, "log")
  port_file <- file.path(dir, "port")
  server <- file.path(dir, "server.py")
  writeLines(c(
    "import http.server, os, sys",
    "ENVS = b'{\"result\":{\"clusters\":[{\"name\":\"Kubernetes\",\"defaultImage\":\"img:1\",\"resourceProfiles\":[{\"name\":\"small\"},{\"name\":\"large\"}]}]}}'",
    "class H(http.server.BaseHTTPRequestHandler):",
    "    def record(self, body):",
    "        h = '\\t'.join(self.headers.get(k, '-') for k in ('Authorization', 'X-Test', 'Cookie', 'X-RS-Session-Server-RPC-Cookie', 'Content-Type'))",
    "        with open(sys.argv[1], 'a') as f:",
    "            f.write(self.command + ' ' + self.path + '\\n' + h + '\\n' + body + '\\n')",
    "    def reply(self, data):",
    "        self.send_response(200)",
    "        self.send_header('X-Reply', 'ok')",
    "        self.send_header('Content-Length', str(len(data)))",
    "        self.end_headers()",
    "        self.wfile.write(data)",
    "    def do_GET(self):",
    "        self.record('')",
    "        self.reply(ENVS if self.path.endswith('/api/get_compute_envs') else b'{}')",
    "    def do_POST(self):",
    "        self.record(self.rfile.read(int(self.headers['Content-Length'])).decode())",
    "        self.reply(b'launched')",
    "    def log_message(self, *a): pass",
    "s = http.server.HTTPServer(('127.0.0.1', 0), H)",
    "open(sys.argv[2] + '.tmp', 'w').write(str(s.server_address[1]) + ' ' + str(os.getpid()) + '\\n')",
    "os.rename(sys.argv[2] + '.tmp', sys.argv[2])",
    "s.timeout = 120",
    "s.serve_forever()"
  ), server)
  system2(py, c(server, log, port_file), wait = FALSE)
  if (!wait_until(function() file.exists(port_file), 20)) stop("the test's HTTP server did not start")
  info <- strsplit(readLines(port_file, warn = FALSE), " ")[[1L]]
  withr::defer(tools::pskill(as.integer(info[2L])), envir = envir)
  list(port = info[1L], url = sprintf("http://127.0.0.1:%s", info[1L]), log = log)
}

http_log <- function(srv) {
  l <- if (file.exists(srv$log)) readLines(srv$log, warn = FALSE) else character()
  if (!length(l)) return(list())
  lapply(seq(1L, length(l), by = 3L), function(i) list(req = l[i], headers = strsplit(l[i + 1L], "\t")[[1L]], body = l[i + 2L]))
}
