//! Reading PEM text: certificate chains, trust anchors, and private keys (plain or encrypted
//! PKCS#8), each failure named with its cause.
use super::{config_err, TlsConfigCause as Cause};
use crate::Error;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Why rustls refused a certificate and key pair, and its cause.
pub(super) fn key_problem(e: &rustls::Error) -> (Cause, String) {
    match e {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => (
            Cause::KeyMismatch,
            "the private key does not belong to the (first) certificate".into(),
        ),
        other => (Cause::CertificateRejected, other.to_string()),
    }
}

fn pem_problem(e: &rustls_pki_types::pem::Error) -> String {
    use rustls_pki_types::pem::Error as E;
    match e {
        E::MissingSectionEnd { end_marker } => format!(
            "a PEM block is not terminated (missing '{}')",
            String::from_utf8_lossy(end_marker)
        ),
        E::IllegalSectionStart { line } => format!(
            "malformed PEM begin line '{}'",
            String::from_utf8_lossy(line)
        ),
        E::Base64Decode(m) => format!("a PEM block is not valid base64 ({m})"),
        other => other.to_string(),
    }
}

/// Says what is wrong with text that should be PEM but has no usable block.
fn no_pem(pem: &str, what: &str, expected: &str, missing: Cause) -> Error {
    if pem.trim().is_empty() {
        config_err(Cause::Empty, format!("{what} is empty"))
    } else if !pem.contains("-----BEGIN") {
        config_err(
            Cause::NotPem,
            format!(
            "{what} is not PEM text (no '-----BEGIN' line); pass the file's contents, not its path"
        ),
        )
    } else {
        config_err(
            missing,
            format!("{what}: no {expected} block found in the PEM text"),
        )
    }
}

pub(super) fn parse_certs(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| config_err(Cause::BadPem, format!("{what}: {}", pem_problem(&e))))?;
    if certs.is_empty() {
        return Err(no_pem(
            pem,
            what,
            "'-----BEGIN CERTIFICATE-----'",
            Cause::NoCertificate,
        ));
    }
    Ok(certs)
}

pub(super) fn root_store(pem: &str, what: &str) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    for (i, cert) in parse_certs(pem, what)?.into_iter().enumerate() {
        roots.add(cert).map_err(|e| {
            config_err(
                Cause::CertificateRejected,
                format!("{what} (certificate {} in the PEM): {e}", i + 1),
            )
        })?;
    }
    Ok(roots)
}

/// The text of the first PEM block labelled `label`, begin and end lines included.
fn pem_block<'a>(pem: &'a str, label: &str) -> Option<Result<&'a str, String>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)?;
    Some(match pem[start..].find(&end) {
        Some(e) => Ok(&pem[start..start + e + end.len()]),
        None => Err(format!("a PEM block is not terminated (missing '{end}')")),
    })
}

pub(super) fn parse_key(
    pem: &str,
    password: Option<&str>,
    what: &str,
) -> Result<PrivateKeyDer<'static>, Error> {
    if let Some(block) = pem_block(pem, "ENCRYPTED PRIVATE KEY") {
        let block = block.map_err(|m| config_err(Cause::BadPem, format!("{what}: {m}")))?;
        let Some(password) = password else {
            return Err(config_err(
                Cause::PasswordNeeded,
                format!("{what} is encrypted: its password is needed (`pass`)"),
            ));
        };
        return decrypt_pkcs8(block, password, what);
    }
    if pem.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(config_err(
            Cause::UnsupportedEncryption,
            format!(
                "{what} uses legacy OpenSSL PEM encryption, which is not supported; convert it to \
             encrypted PKCS#8 with `openssl pkcs8 -topk8 -v2 aes-256-cbc`"
            ),
        ));
    }
    match PrivateKeyDer::from_pem_slice(pem.as_bytes()) {
        Ok(k) => Ok(k),
        Err(rustls_pki_types::pem::Error::NoItemsFound) => Err(no_pem(
            pem,
            what,
            "private key ('PRIVATE KEY', 'RSA PRIVATE KEY', 'EC PRIVATE KEY' or 'ENCRYPTED \
             PRIVATE KEY')",
            Cause::NoKey,
        )),
        Err(e) => Err(config_err(
            Cause::BadPem,
            format!("{what}: {}", pem_problem(&e)),
        )),
    }
}

fn decrypt_pkcs8(block: &str, password: &str, what: &str) -> Result<PrivateKeyDer<'static>, Error> {
    let (_, doc) = pkcs8::der::Document::from_pem(block).map_err(|e| {
        config_err(
            Cause::BadPem,
            format!("{what}: malformed encrypted key PEM ({e})"),
        )
    })?;
    let info = pkcs8::EncryptedPrivateKeyInfo::try_from(doc.as_bytes()).map_err(|e| {
        config_err(
            Cause::BadPem,
            format!("{what}: malformed encrypted key ({e})"),
        )
    })?;
    let wrong = || {
        config_err(
            Cause::WrongPassword,
            format!("{what}: cannot decrypt it: wrong password (or a damaged key)"),
        )
    };
    let plain = match info.decrypt(password.as_bytes()) {
        Ok(p) => p,
        Err(pkcs8::Error::EncryptedPrivateKey(pkcs8::pkcs5::Error::UnsupportedAlgorithm {
            oid,
        })) => {
            return Err(config_err(
                Cause::UnsupportedEncryption,
                format!(
                    "{what}: unsupported key encryption algorithm {oid}; re-encrypt with \
                 `openssl pkcs8 -topk8 -v2 aes-256-cbc`"
                ),
            ))
        }
        Err(_) => return Err(wrong()),
    };
    // CBC padding alone lets about one wrong password in 256 through: the result must also
    // be a well-formed key.
    if pkcs8::PrivateKeyInfo::try_from(plain.as_bytes()).is_err() {
        return Err(wrong());
    }
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        plain.as_bytes().to_vec(),
    )))
}
