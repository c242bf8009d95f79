//! TLS configurations (`tls_config()`) and self-signed certificates (`write_cert()`), spec §4.
//! A configuration is an external pointer (class `tlsConfig`) owning an
//! `Arc<mirai_transport::TlsConfig>`, which the socket and HTTP code take with [`tls_arg`].

use std::ffi::CStr;
use std::sync::Arc;

use mirai_rapi::{Kind, RError, RResult, Scope, Sexp, Tag, R};
use mirai_transport::TlsConfig;

/// The tag of tlsConfig pointers.
static TLS_TAG: Tag = Tag::new(c"nanonextTls");

const BAD_TLS: &str = "`tls` is not a valid TLS Configuration";
const NOT_FOUND: &str = "12 | Entry not found";
const CRYPTO: &str = "26 | Cryptographic error";
const INVALID: &str = "3 | Invalid argument";

#[allow(dead_code)] // Used by the socket and HTTP code.
/// The configuration behind a `tls` argument: `None` for `NULL`, else a tlsConfig or the
/// spec's error `` `tls` is not a valid TLS Configuration ``.
pub(crate) fn tls_arg(x: Sexp<'_>, r: R) -> RResult<Option<Arc<TlsConfig>>> {
    if x.is_null() {
        return Ok(None);
    }
    x.extptr_ref::<Arc<TlsConfig>>(&TLS_TAG, r)
        .map(|c| Some(Arc::clone(c)))
        .ok_or_else(|| RError::from(BAD_TLS))
}

/// PEM texts from a `client`/`server` argument: one element is a file path (read; missing:
/// `12 | Entry not found`), two or more are the texts themselves.
fn pem_texts(x: Sexp<'_>) -> RResult<Vec<String>> {
    if x.kind() != Kind::STRSXP || x.is_empty() {
        return Err(INVALID.into());
    }
    let texts: Vec<String> = (0..x.len())
        .map(|i| {
            x.str_elt(i)
                .filter(|c| !c.is_na_string())
                .and_then(|c| c.char_text())
                .ok_or_else(|| RError::from(INVALID))
        })
        .collect::<RResult<_>>()?;
    if texts.len() > 1 {
        return Ok(texts);
    }
    let text = std::fs::read_to_string(&texts[0]).map_err(|_| RError::from(NOT_FOUND))?;
    Ok(vec![text])
}

/// The certificate chain and key of a `server` argument (a file may hold both).
fn cert_and_key(x: Sexp<'_>) -> RResult<(String, String)> {
    let mut t = pem_texts(x)?;
    if t.len() == 1 {
        let both = t.remove(0);
        return Ok((both.clone(), both));
    }
    let key = t.swap_remove(1);
    Ok((t.swap_remove(0), key))
}

/// `.Call(nano_tls_config, client, server, pass, auth)`: see `tls_config()`.
pub(crate) fn nano_tls_config<'a>(
    s: &'a Scope,
    client: Sexp<'a>,
    server: Sexp<'a>,
    pass: Sexp<'a>,
    auth: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let r = s.r();
    let auth = mirai_rapi::args::lgl(auth, "auth")?.unwrap_or(false);
    let pass = match pass.kind() {
        Kind::NILSXP => None,
        Kind::STRSXP => Some(mirai_rapi::args::string(pass, "pass")?),
        _ => return Err(INVALID.into()),
    };
    let pass = pass.as_deref();
    let crypto = |_| RError::from(CRYPTO);
    let (cfg, spec, mode): (TlsConfig, &CStr, &CStr) = if !client.is_null() {
        let ca = pem_texts(client)?.swap_remove(0);
        let identity = if server.is_null() {
            None
        } else {
            Some(cert_and_key(server)?)
        };
        let id = identity
            .as_ref()
            .map(|(c, k)| (c.as_str(), k.as_str(), pass));
        let cfg = match (auth, id) {
            (true, None) => TlsConfig::client(&ca),
            (true, Some((c, k, p))) => TlsConfig::client_with_identity(&ca, c, k, p),
            (false, id) => TlsConfig::client_unverified(Some(&ca), id),
        }
        .map_err(crypto)?;
        (cfg, c"client", if auth { c"required" } else { c"optional" })
    } else if !server.is_null() {
        let (cert, key) = cert_and_key(server)?;
        let cfg = if auth {
            // Clients must present a certificate issued by the server's own chain (a
            // self-signed `write_cert()` pair shared by both sides).
            TlsConfig::server_with_client_auth(&cert, &key, pass, &cert)
        } else {
            TlsConfig::server(&cert, &key, pass)
        }
        .map_err(crypto)?;
        (cfg, c"server", if auth { c"required" } else { c"optional" })
    } else {
        let cfg = TlsConfig::client_unverified(None, None).map_err(crypto)?;
        (cfg, c"client", c"none")
    };
    let x = s.extptr(Arc::new(cfg), &TLS_TAG, false);
    x.set_attr(r.sym(c"spec"), s.cstrings(&[spec]));
    x.set_attr(r.sym(c"mode"), s.cstrings(&[mode]));
    x.set_class(s, &[c"tlsConfig"]);
    Ok(x)
}

/// A self-signed certificate for `cn` and its key (PEM): subject `CN=<cn>,O=Nanonext,C=JP`,
/// serial 1, valid from 2001-01-01 until `not_after`, with `cn` as subject alternative name
/// (so TLS clients can match the host). Not marked as a CA: it is presented as the server's
/// own (end-entity) certificate, which rustls refuses from a CA.
pub(crate) fn self_signed(
    cn: &str,
    not_after: time::OffsetDateTime,
) -> Result<(String, String), String> {
    use rcgen::{
        CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, SanType, SerialNumber,
    };
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationName, "Nanonext");
    dn.push(DnType::CountryName, "JP");
    p.distinguished_name = dn;
    p.serial_number = Some(SerialNumber::from(1u64));
    p.not_before = time::Date::from_calendar_date(2001, time::Month::January, 1)
        .map_err(|e| e.to_string())?
        .midnight()
        .assume_utc();
    p.not_after = not_after;
    p.is_ca = IsCa::NoCa;
    let host = cn.trim().trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        p.subject_alt_names.push(SanType::IpAddress(ip));
    } else if let Ok(name) = host.to_owned().try_into() {
        p.subject_alt_names.push(SanType::DnsName(name));
    }
    let cert = p.self_signed(&key).map_err(|e| e.to_string())?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// `yyyymmddhhmmss` (UTC) as a time.
fn parse_valid(v: &str) -> Option<time::OffsetDateTime> {
    if v.len() != 14 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |a: usize, b: usize| v[a..b].parse::<u16>().ok();
    let month = time::Month::try_from(u8::try_from(n(4, 6)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(i32::from(n(0, 4)?), month, n(6, 8)? as u8).ok()?;
    let t = time::Time::from_hms(n(8, 10)? as u8, n(10, 12)? as u8, n(12, 14)? as u8).ok()?;
    Some(date.with_time(t).assume_utc())
}

/// `.Call(nano_write_cert, cn, valid)`: `list(server = c(cert, key), client = c(cert, ""))`.
pub(crate) fn nano_write_cert<'a>(
    s: &'a Scope,
    cn: Sexp<'a>,
    valid: Sexp<'a>,
) -> RResult<Sexp<'a>> {
    let cn = mirai_rapi::args::string(cn, "cn")?;
    let valid = mirai_rapi::args::string(valid, "valid")?;
    let not_after =
        parse_valid(&valid).ok_or_else(|| RError::from("-10240 | X509 - Input invalid"))?;
    let (cert, key) =
        self_signed(&cn, not_after).map_err(|e| RError::Msg(format!("{CRYPTO} ({e})")))?;
    let server = s.strings_from(&[Some(&cert), Some(&key)]);
    let client = s.strings_from(&[Some(&cert), Some("")]);
    Ok(s.named_list(&[(c"server", server), (c"client", client)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_times_parse_and_bad_ones_do_not() {
        let t = parse_valid("20301231235959").unwrap();
        assert_eq!(t.year(), 2030);
        assert_eq!(t.second(), 59);
        for bad in [
            "",
            "2030123123595",
            "2030133123595x",
            "20301301000000",
            "20300230000000",
        ] {
            assert!(parse_valid(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_self_signed_pair_configures_both_sides() {
        let not_after = parse_valid("20301231235959").unwrap();
        let (cert, key) = self_signed("127.0.0.1", not_after).unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(key.contains("PRIVATE KEY"));
        assert!(TlsConfig::server(&cert, &key, None).is_ok());
        assert!(TlsConfig::client(&cert).is_ok());
        assert!(TlsConfig::client_unverified(Some(&cert), Some((&cert, &key, None))).is_ok());
        assert!(TlsConfig::client_unverified(Some("junk"), None).is_err());
    }

    #[test]
    fn a_self_signed_pair_carries_a_verified_handshake() {
        use mirai_transport::{Connection, Event, Listener, Options};
        let not_after = parse_valid("20301231235959").unwrap();
        let (cert, key) = self_signed("127.0.0.1", not_after).unwrap();
        let host = Options {
            tls: Some(TlsConfig::server(&cert, &key, None).unwrap()),
            ..Options::default()
        };
        let listener = Listener::bind("tls+tcp://127.0.0.1:0", &host).unwrap();
        let url = listener.url().to_string();
        let dialer = std::thread::spawn(move || -> Result<(), mirai_transport::Error> {
            let tls = TlsConfig::client(&cert)?;
            let conn = Connection::dial(
                &url,
                &Options {
                    tls: Some(tls),
                    ..Options::default()
                },
            )?;
            conn.send(b"hi")
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut events = Vec::new();
        while !events.iter().any(|e| matches!(e, Event::Message(..))) {
            assert!(std::time::Instant::now() < deadline, "no message");
            listener
                .poll(&mut events, Some(std::time::Duration::from_millis(200)))
                .unwrap();
        }
        dialer.join().unwrap().unwrap();
    }
}
