//! Explaining TLS failures: a sentence naming the cause of a rustls error, and its kind. The
//! sentences quote certificate names, never bytes a peer sent.
use super::TlsErrorKind;

/// Which side is describing a failure.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// The listener, about a dialing peer.
    Listener,
    /// The dialer, about the listener.
    Dialer,
}

fn cert_problem(e: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    match e {
        C::UnknownIssuer => "unknown issuer: it was not signed by a trusted CA".into(),
        C::Expired | C::ExpiredContext { .. } => "the certificate has expired".into(),
        C::NotValidYet | C::NotValidYetContext { .. } => {
            "the certificate is not valid yet (check the clocks)".into()
        }
        C::NotValidForNameContext {
            expected,
            presented,
        } => format!(
            "the certificate is not valid for '{}', the host dialed (it names {})",
            expected.to_str(),
            presented.join(", ")
        ),
        C::NotValidForName => "the certificate is not valid for the host name or IP dialed".into(),
        C::BadSignature => "bad certificate signature".into(),
        C::BadEncoding => "malformed certificate".into(),
        C::Revoked => "the certificate has been revoked".into(),
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
            "the certificate is not issued for this use (TLS server or client)".into()
        }
        other => format!("bad certificate ({other:?})"),
    }
}

fn alert_problem(a: rustls::AlertDescription) -> (String, bool) {
    use rustls::AlertDescription as A;
    let (text, auth) = match a {
        A::UnknownCA => (
            "unknown CA: our certificate is not from the CA it trusts",
            true,
        ),
        A::BadCertificate => ("bad certificate", true),
        A::CertificateExpired => ("our certificate has expired", true),
        A::CertificateRevoked => ("our certificate has been revoked", true),
        A::CertificateUnknown => ("certificate unknown", true),
        A::UnsupportedCertificate => ("unsupported certificate", true),
        A::CertificateRequired => (
            "a client certificate is required and none was configured",
            true,
        ),
        A::AccessDenied => ("access denied", true),
        A::HandshakeFailure => ("handshake failure (no common TLS parameters)", false),
        A::ProtocolVersion => ("no common TLS version", false),
        A::DecodeError | A::UnexpectedMessage => {
            ("it could not understand our TLS messages", false)
        }
        _ => return (format!("alert {a:?}"), false),
    };
    (text.to_string(), auth)
}

/// A sentence naming the cause of `e`, and its kind.
pub(crate) fn describe(e: &rustls::Error, side: Side) -> (String, TlsErrorKind) {
    use rustls::Error as R;
    let peer = match side {
        Side::Listener => "the dialing peer",
        Side::Dialer => "the listener",
    };
    match e {
        R::InvalidCertificate(c) => (
            format!("{peer}'s certificate was refused: {}", cert_problem(c)),
            TlsErrorKind::PeerAuth,
        ),
        R::NoCertificatesPresented => (
            format!("{peer} presented no certificate, and one is required"),
            TlsErrorKind::PeerAuth,
        ),
        R::AlertReceived(a) => {
            let (text, auth) = alert_problem(*a);
            (
                format!("{peer} refused the connection: {text}"),
                if auth {
                    TlsErrorKind::PeerAuth
                } else {
                    TlsErrorKind::Protocol
                },
            )
        }
        R::InvalidMessage(_) | R::InappropriateMessage { .. } => (
            match side {
                Side::Listener => format!(
                    "{peer} does not speak TLS (a plaintext tcp:// client on a tls+tcp:// \
                     port?): {e}"
                ),
                Side::Dialer => {
                    format!("{peer} does not speak TLS (is it a plain tcp:// listener?): {e}")
                }
            },
            TlsErrorKind::Protocol,
        ),
        other => (
            format!("TLS error with {peer}: {other}"),
            TlsErrorKind::Protocol,
        ),
    }
}
