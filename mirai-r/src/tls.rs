//! TLS for `tls+tcp://` profiles (spec §3.11): generating single-use credentials, and reading
//! the credentials that `mirai_host_start` and `mirai_daemon_run` receive as attributes of
//! their `url` argument (`.Call` routines have a fixed arity, so optional arguments ride
//! along this way).

use mirai::transport::tls::zero_config;
use mirai::transport::TlsConfig;
use mirai_rapi::{args, Kind, RError, RResult, Scope, Sexp};

/// `.Call(mirai_tls_generate, cn)` → `c(cert_pem, key_pem)`: fresh credentials for a host
/// reached as `cn`. The first element (the host's certificate followed by the single-use CA
/// that signed it) is what daemons trust (`tlscert = c(<it>, "")`); the second is the host's
/// private key, which never leaves the host.
pub(crate) fn mirai_tls_generate<'a>(s: &'a Scope, cn: Sexp<'a>) -> RResult<Sexp<'a>> {
    let cn = args::string(cn, "cn")?;
    let z = zero_config(&cn).map_err(|e| RError::Msg(e.to_string()))?;
    let chain = format!("{}{}", z.server_cert, z.ca_cert);
    Ok(s.strings_from(&[Some(&chain), Some(&z.server_key)]))
}

/// The listener side from `attr(url, "tls")` = `list(cert = chr, pass = chr1 or NULL)`: `cert` is
/// `c(cert_chain_pem, key_pem)`, or one text holding the chain followed by the key. With an
/// element `client_ca` (PEM text), daemons must present a certificate issued by that CA.
pub(crate) fn server_config(tls: Sexp<'_>) -> RResult<TlsConfig> {
    let bad = || RError::from("`tls` must be list(cert = <PEM text>, pass = <password or NULL>)");
    if tls.kind() != Kind::VECSXP {
        return Err(bad());
    }
    let mut cert = None;
    let mut pass = None;
    let mut client_ca = None;
    for i in 0..tls.len() {
        let v = tls.list_elt(i).unwrap_or(Sexp::null());
        match tls.name_at(i).as_str() {
            "cert" => cert = Some(args::strings(v, "tls$cert")?),
            "pass" if !v.is_null() => pass = Some(args::string(v, "tls$pass")?),
            "client_ca" if !v.is_null() => client_ca = Some(args::string(v, "tls$client_ca")?),
            _ => {}
        }
    }
    let cert = cert.filter(|c| !c.is_empty()).ok_or_else(bad)?;
    let key = cert.get(1).filter(|k| !k.is_empty()).unwrap_or(&cert[0]);
    match client_ca {
        Some(ca) => TlsConfig::server_with_client_auth(&cert[0], key, pass.as_deref(), &ca),
        None => TlsConfig::server(&cert[0], key, pass.as_deref()),
    }
    .map_err(|e| RError::Msg(e.to_string()))
}

/// The dialer side from `attr(url, "tlscert")`: its first element is the PEM text of the CA chain;
/// a non-empty second element is the daemon's identity (certificate, then its key), presented
/// to hosts that require client certificates.
pub(crate) fn client_config(tlscert: Sexp<'_>) -> RResult<TlsConfig> {
    let certs = args::strings(tlscert, "tlscert")?;
    let ca = certs
        .first()
        .filter(|c| !c.is_empty())
        .ok_or("`tlscert` must hold the PEM text of a CA certificate")?;
    match certs.get(1).filter(|id| !id.is_empty()) {
        Some(id) => TlsConfig::client_with_identity(ca, id, id, None),
        None => TlsConfig::client(ca),
    }
    .map_err(|e| RError::Msg(e.to_string()))
}
