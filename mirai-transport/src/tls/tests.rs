//! Unit tests of TLS configuration, generation and failure descriptions.

use super::*;
use crate::Error;

fn config_text(r: Result<TlsConfig, Error>) -> String {
    match r {
        Err(Error::TlsConfig(m)) => m.into(),
        Err(other) => panic!("expected a TLS configuration error, got {other:?}"),
        Ok(c) => panic!("expected an error, got {c:?}"),
    }
}

#[test]
fn zero_config_builds_both_sides() {
    let z = zero_config("127.0.0.1").unwrap();
    assert!(z.ca_cert.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(z.server_key.contains("PRIVATE KEY"));
    let s = z.server_config().unwrap();
    assert!(s.has_server() && s.requires_client_certificates() && !s.has_client());
    let c = z.client_config().unwrap();
    assert!(c.has_client() && c.has_client_identity() && !c.has_server());
    let both = s.combine(c);
    assert!(both.has_server() && both.has_client());
    // The identity bundle parses as both certificate and key.
    TlsConfig::client_with_identity(
        &z.ca_cert,
        &z.client_identity_pem(),
        &z.client_identity_pem(),
        None,
    )
    .unwrap();
    let dbg = format!("{z:?} {both:?}");
    assert!(!dbg.contains("PRIVATE KEY"), "Debug shows no key: {dbg}");
}

#[test]
fn zero_config_refuses_wildcard_hosts() {
    for h in ["", "*", " "] {
        assert!(matches!(zero_config(h), Err(Error::TlsConfig(m)) if m.contains("wildcard")));
    }
    assert!(zero_config("[::1]").is_ok());
    assert!(zero_config_for(&["localhost", "127.0.0.1", "::1"]).is_ok());
}

#[test]
fn bad_pem_is_named() {
    let z = zero_config("localhost").unwrap();
    let m = config_text(TlsConfig::server("", &z.server_key, None));
    assert!(m.contains("server certificate is empty"), "{m}");
    let m = config_text(TlsConfig::server("/etc/ssl/cert.pem", &z.server_key, None));
    assert!(m.contains("not PEM text") && m.contains("path"), "{m}");
    let m = config_text(TlsConfig::server(&z.server_key, &z.server_key, None));
    assert!(m.contains("no '-----BEGIN CERTIFICATE-----'"), "{m}");
    let m = config_text(TlsConfig::server(&z.server_cert, &z.server_cert, None));
    assert!(
        m.contains("server private key") && m.contains("no private key"),
        "{m}"
    );
    let truncated = &z.server_cert[..z.server_cert.len() - 30];
    let m = config_text(TlsConfig::server(truncated, &z.server_key, None));
    assert!(m.contains("not terminated"), "{m}");
    let garbled = z.server_cert.replacen('M', "!", 1);
    let m = config_text(TlsConfig::server(&garbled, &z.server_key, None));
    assert!(m.contains("base64"), "{m}");
    let m = config_text(TlsConfig::server(&z.server_cert, &z.client_key, None));
    assert!(m.contains("does not belong"), "{m}");
    let m = config_text(TlsConfig::client("nonsense"));
    assert!(m.contains("CA certificate is not PEM text"), "{m}");
    let legacy = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
    let m = config_text(TlsConfig::server(&z.server_cert, legacy, Some("x")));
    assert!(m.contains("legacy OpenSSL"), "{m}");
}

#[test]
fn descriptions_name_the_cause() {
    let (t, k) = describe(
        &rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        Side::Dialer,
    );
    assert!(t.contains("unknown issuer"), "{t}");
    assert_eq!(k, TlsErrorKind::PeerAuth);
    let (t, k) = describe(
        &rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired),
        Side::Dialer,
    );
    assert!(t.contains("client certificate is required"), "{t}");
    assert_eq!(k, TlsErrorKind::PeerAuth);
    let (t, k) = describe(
        &rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
        Side::Listener,
    );
    assert!(t.contains("plaintext"), "{t}");
    assert_eq!(k, TlsErrorKind::Protocol);
}

#[test]
fn config_errors_carry_their_cause() {
    let cause = |r: Result<TlsConfig, Error>| match r {
        Err(Error::TlsConfig(e)) => e.cause(),
        other => panic!("expected a TLS configuration error, got {other:?}"),
    };
    let z = zero_config("localhost").unwrap();
    assert_eq!(
        cause(TlsConfig::server("", &z.server_key, None)),
        TlsConfigCause::Empty
    );
    assert_eq!(
        cause(TlsConfig::server("/etc/cert.pem", &z.server_key, None)),
        TlsConfigCause::NotPem
    );
    assert_eq!(
        cause(TlsConfig::server(&z.server_key, &z.server_key, None)),
        TlsConfigCause::NoCertificate
    );
    assert_eq!(
        cause(TlsConfig::server(&z.server_cert, &z.server_cert, None)),
        TlsConfigCause::NoKey
    );
    assert_eq!(
        cause(TlsConfig::server(&z.server_cert, &z.client_key, None)),
        TlsConfigCause::KeyMismatch
    );
    let garbled = z.server_cert.replacen('M', "!", 1);
    assert_eq!(
        cause(TlsConfig::server(&garbled, &z.server_key, None)),
        TlsConfigCause::BadPem
    );
    let legacy = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
    assert_eq!(
        cause(TlsConfig::server(&z.server_cert, legacy, Some("x"))),
        TlsConfigCause::UnsupportedEncryption
    );
    assert!(
        matches!(zero_config("*"), Err(Error::TlsConfig(e)) if e.cause() == TlsConfigCause::BadHostName)
    );
}
