# Serialization hooks: configurations for R's persistent-reference hook (applied by the bridge).

#' Custom serialization for classes of objects
#'
#' `serial_config()` makes a configuration that tells mirai how to send objects that R's own
#' serialization cannot carry between processes, typically objects holding external pointers
#' (torch tensors, Arrow tables, Polars data frames): a function that turns such an object into
#' a raw vector, and one that rebuilds it. Give it to `daemons(serial = )`.
#'
#' @param class a character vector of class names.
#' @param sfunc a function, or a list of functions (one per class), taking an object of the class
#'   and returning a raw vector.
#' @param ufunc a function, or a list of functions (one per class), taking that raw vector and
#'   returning the object.
#'
#' @return A configuration: an unnamed list of the classes, the serializing functions and the
#'   unserializing functions.
#'
#' @details The hooks apply to reference objects (external pointers and environments) found at any
#'   depth in the data sent, in both directions: in tasks to the daemons and in results back.
#'   For each such object the first class it inherits from selects the functions; an `sfunc`
#'   that does not return a raw vector is an error (`"Serialization function for `<class>` did
#'   not return a raw vector"`). Hooks need the dispatcher; they are sent to each daemon as it
#'   connects.
#'
#'   This is nanonext's `serial_config()`, re-exported. It checks that `sfunc` and `ufunc` are
#'   functions or lists; [daemons()] and [register_serial()] also check that every element of
#'   those lists is a function.
#'
#'   Typical configurations:
#'   - torch: `serial_config("torch_tensor", torch::torch_serialize, torch::torch_load)`
#'   - Arrow: `serial_config("ArrowTabular", arrow::write_to_raw, function(x)
#'   arrow::read_ipc_stream(x, as_data_frame = FALSE))`
#'   - Polars: the same pattern, with the package's functions that write a data frame to Arrow
#'   IPC bytes and read them back (their names depend on the polars version).
#'
#' @seealso [register_serial()] to register a configuration for every profile,
#'   `vignette("serialization", package = "mirai")`.
#' @examples
#' # a made-up class: an environment that travels as a list of its contents;
#' # the rebuilding function counts the trips it has made
#' new_store <- function(...) structure(list2env(list(...)), class = "store")
#' cfg <- serial_config(
#'   "store",
#'   function(x) serialize(as.list.environment(x), NULL),
#'   function(r) {
#'     s <- list2env(unserialize(r))
#'     s$trips <- if (is.null(s$trips)) 1 else s$trips + 1
#'     structure(s, class = "store")
#'   }
#' )
#' daemons(1, serial = cfg)
#' m <- mirai({
#'   s$total <- s$a + s$b
#'   s
#' }, s = new_store(a = 1, b = 2))
#' class(m[])
#' m[]$total
#' m[]$trips # there and back
#' daemons(0)
#' @usage serial_config(class, sfunc, ufunc)
#' @name serial_config
NULL

#' Register custom serialization for all compute profiles
#'
#' `register_serial()` adds serialization functions for a class to a registry that every later
#' [daemons()] call with a dispatcher and `serial = NULL` uses. It is meant for package authors,
#' who call it in their package's `.onLoad()`, so that their objects travel to daemons without
#' users configuring anything.
#'
#' @inheritParams serial_config
#'
#' @return `NULL`, invisibly.
#'
#' @details Each call appends to the registry; profiles already set are not changed.
#'
#' @seealso [serial_config()].
#' @examples
#' # typically in a package's .onLoad()
#' register_serial(
#'   "counted",
#'   function(x) serialize(as.list.environment(x), NULL),
#'   function(r) {
#'     s <- list2env(unserialize(r))
#'     s$trips <- if (is.null(s$trips)) 1 else s$trips + 1
#'     structure(s, class = "counted")
#'   }
#' )
#' daemons(1) # uses the registry: no `serial` needed
#' s <- structure(list2env(list(a = 1)), class = "counted")
#' mirai(s, s = s)[]$trips
#' daemons(0)
register_serial <- function(class, sfunc, ufunc) {
  cfg <- serial_config(class, sfunc, ufunc)
  for (k in 2:3) all(vapply(cfg[[k]], is.function, logical(1L))) ||
    stop(sprintf("`%s` must be a function or list of functions", c("", "sfunc", "ufunc")[k]))
  reg <- .opts$serial
  .opts$serial <- if (is.null(reg)) cfg else list(c(reg[[1L]], cfg[[1L]]), c(reg[[2L]], cfg[[2L]]), c(reg[[3L]], cfg[[3L]]))
  invisible()
}
