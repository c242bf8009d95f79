# TLS configurations and certificates (spec section 4).

#' TLS configuration
#'
#' A TLS configuration for dialers (client) or listeners (server), reusable for any number of
#' them. With `client`, the dialer verifies the peer's certificate against the CA chain
#' (`auth = TRUE`, mode `required`) or not (`optional`); with `client` and `server` it also
#' presents the `server` certificate as its own. With only `server`, a listener presents the
#' certificate and asks nothing of clients (`optional`) unless `auth = TRUE` (`required`:
#' clients must present a certificate issued by the same chain). With neither, a client that
#' verifies nothing (mode `none`).
#'
#' @param client a path to a PEM file of CA certificates, or `c(ca_chain_pem, crl_pem or "")`.
#' @param server a path to a PEM file holding the certificate chain and the private key, or
#'   `c(cert_pem, key_pem)`.
#' @param pass the password of an encrypted private key, or `NULL`.
#' @param auth whether peers must be authenticated; by default `TRUE` unless `server` is
#'   given.
#' @return A `tlsConfig` with attributes `spec` (`"client"`, `"server"`) and `mode`
#'   (`"none"`, `"optional"`, `"required"`). Errors: `12 | Entry not found` for a missing
#'   file, `26 | Cryptographic error` for PEM that does not parse.
#' @examples
#' tls_config()
#' cert <- write_cert()
#' tls_config(client = cert$client)
#' tls_config(server = cert$server)
#' @export
tls_config <- function(client = NULL, server = NULL, pass = NULL, auth = is.null(server)) {
  if (is.character(client) && length(client) == 1L) client <- path.expand(client)
  if (is.character(server) && length(server) == 1L) server <- path.expand(server)
  .Call(nano_tls_config, client, server, pass, auth)
}

#' @export
print.tlsConfig <- function(x, ...) {
  cat(sprintf("< TLS %s config | auth mode: %s >\n", attr(x, "spec"), attr(x, "mode")))
  invisible(x)
}

#' Generate a self-signed certificate
#'
#' A new key and a self-signed certificate for host `cn` (subject `CN=<cn>,O=Nanonext,C=JP`,
#' serial 1, valid from 2001-01-01 until `valid`, with `cn` as subject alternative name).
#'
#' @param cn the host name or IP address the certificate is for.
#' @param valid the end of validity, `"yyyymmddhhmmss"` (UTC).
#' @return `list(server = c(cert_pem, key_pem), client = c(cert_pem, ""))`: `server` goes to
#'   `tls_config(server = )`, `client` to `tls_config(client = )`.
#' @examples
#' cert <- write_cert(cn = "127.0.0.1")
#' substr(cert$server[1L], 1L, 27L)
#' @export
write_cert <- function(cn = "127.0.0.1", valid = "20301231235959") .Call(nano_write_cert, cn, valid)
