//! TLS for `tls+tcp://` profiles (spec §3.11): generating single-use credentials, and reading
//! the credentials that `mirai_host_start` and `mirai_daemon_run` receive as attributes of
//! their `url` argument (`.Call` routines have a fixed arity, so optional arguments ride
//! along this way).

use libR_sys::*;
use mirai::transport::tls::zero_config;
use mirai::transport::TlsConfig;

use crate::guard::{entry, Protector, RError, RResult};
use crate::sexp::*;

/// `.Call(mirai_tls_generate, cn)` → `c(cert_pem, key_pem)`: fresh credentials for a host
/// reached as `cn`. The first element (the host's certificate followed by the single-use CA
/// that signed it) is what daemons trust (`tlscert = c(<it>, "")`); the second is the host's
/// private key, which never leaves the host.
///
/// # Safety
/// Called by R through `.Call` on its main thread, with valid SEXP arguments.
#[no_mangle]
pub unsafe extern "C" fn mirai_tls_generate(cn: SEXP) -> SEXP {
    // SAFETY: called by R through .Call on the main thread with a valid SEXP.
    entry(|| unsafe {
        let cn = arg_string(cn, "cn")?;
        let z = zero_config(&cn).map_err(|e| RError::Msg(e.to_string()))?;
        let chain = format!("{}{}", z.server_cert, z.ca_cert);
        let mut p = Protector::new();
        let out = p.protect(Rf_allocVector(SEXPTYPE::STRSXP, 2));
        SET_STRING_ELT(out, 0, mk_char(&chain));
        SET_STRING_ELT(out, 1, mk_char(&z.server_key));
        Ok(out)
    })
}

/// The listener side from `attr(url, "tls")` = `list(cert = chr, pass = chr1 or NULL)`: `cert` is
/// `c(cert_chain_pem, key_pem)`, or one text holding the chain followed by the key. With an
/// element `client_ca` (PEM text), daemons must present a certificate issued by that CA.
pub(crate) unsafe fn server_config(tls: SEXP) -> RResult<TlsConfig> {
    let bad = || RError::from("`tls` must be list(cert = <PEM text>, pass = <password or NULL>)");
    if type_of(tls) != SEXPTYPE::VECSXP {
        return Err(bad());
    }
    let mut cert = None;
    let mut pass = None;
    let mut client_ca = None;
    let names = Rf_getAttrib(tls, R_NamesSymbol);
    for i in 0..Rf_xlength(tls) {
        let name = if type_of(names) == SEXPTYPE::STRSXP {
            char_text(STRING_ELT(names, i))
        } else {
            String::new()
        };
        let v = VECTOR_ELT(tls, i);
        match name.as_str() {
            "cert" => cert = Some(arg_strings(v, "tls$cert")?),
            "pass" if !is_null(v) => pass = Some(arg_string(v, "tls$pass")?),
            "client_ca" if !is_null(v) => client_ca = Some(arg_string(v, "tls$client_ca")?),
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
pub(crate) unsafe fn client_config(tlscert: SEXP) -> RResult<TlsConfig> {
    let certs = arg_strings(tlscert, "tlscert")?;
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
