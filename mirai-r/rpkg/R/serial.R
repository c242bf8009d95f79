# Serialization hooks: configurations for R's persistent-reference hook (applied by the bridge).

serial_config <- function(class, sfunc, ufunc) {
  is.character(class) || stop("`class` must be a character vector")
  if (is.function(sfunc)) sfunc <- list(sfunc)
  if (is.function(ufunc)) ufunc <- list(ufunc)
  length(class) == length(sfunc) && length(sfunc) == length(ufunc) ||
    stop("`class`, `sfunc` and `ufunc` must all be the same length")
  is.list(sfunc) && all(vapply(sfunc, is.function, logical(1L))) ||
    stop("`sfunc` must be a function or list of functions")
  is.list(ufunc) && all(vapply(ufunc, is.function, logical(1L))) ||
    stop("`ufunc` must be a function or list of functions")
  list(class, sfunc, ufunc)
}

register_serial <- function(class, sfunc, ufunc) {
  cfg <- serial_config(class, sfunc, ufunc)
  reg <- .opts$serial
  .opts$serial <- if (is.null(reg)) cfg else list(c(reg[[1L]], cfg[[1L]]), c(reg[[2L]], cfg[[2L]]), c(reg[[3L]], cfg[[3L]]))
  invisible()
}
