# Where the ecosystem tests keep what they produce for people to look at (timings, screenshots):
# $MIRAI_TEST_OUTPUT if set, else <workspace>/target/test-output when run from a checkout, else
# a temporary directory.
test_output_dir <- function(sub = NULL) {
  dir <- Sys.getenv("MIRAI_TEST_OUTPUT")
  if (!nzchar(dir)) {
    ws <- normalizePath(file.path(getwd(), "..", "..", "..", ".."), mustWork = FALSE)
    dir <- if (file.exists(file.path(ws, "Cargo.toml")) && dir.exists(file.path(ws, "mirai-r")))
      file.path(ws, "target", "test-output") else file.path(tempdir(), "test-output")
  }
  if (!is.null(sub)) dir <- file.path(dir, sub)
  dir.create(dir, recursive = TRUE, showWarnings = FALSE)
  dir
}
