//! [`TlsConfigError`]: why TLS credentials or settings are unusable, as a cause a caller can
//! act on and a sentence for the user.
/// The cause of a [`TlsConfigError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsConfigCause {
    /// The PEM text given is empty.
    Empty,
    /// The text is not PEM at all (no `-----BEGIN` line): often a file path given where the
    /// file's contents were expected.
    NotPem,
    /// A PEM block is malformed: not terminated, bad base64, a bad begin line, or an
    /// encrypted key whose structure is damaged.
    BadPem,
    /// No certificate block where a certificate (chain) was expected.
    NoCertificate,
    /// No private key block where a key was expected.
    NoKey,
    /// The private key is encrypted and no password was given.
    PasswordNeeded,
    /// The password does not decrypt the private key (or the key is damaged).
    WrongPassword,
    /// The key is encrypted with a scheme this crate does not decrypt (legacy OpenSSL PEM
    /// encryption, or an unsupported PKCS#8 algorithm).
    UnsupportedEncryption,
    /// The private key does not belong to the (first) certificate.
    KeyMismatch,
    /// A certificate was refused: not usable as a trust anchor, or not acceptable to rustls.
    CertificateRejected,
    /// [`crate::Options::tls`] lacks the part the URL needs (a server part to listen, a
    /// client part to dial).
    MissingPart,
    /// A host name or address cannot be put in, or checked against, a certificate.
    BadHostName,
    /// Generating zero-config credentials failed.
    Generation,
    /// Anything else (setting up the TLS provider, ...).
    Other,
}

/// TLS credentials or settings are unusable: the payload of [`crate::Error::TlsConfig`].
///
/// [`TlsConfigError::cause`] says why in a form code can act on; its `Display` (and, for
/// callers written when this was a `String`, its `Deref` to `str`) is the sentence naming
/// what is wrong, which never quotes key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TlsConfigError {
    cause: TlsConfigCause,
    message: String,
}

impl TlsConfigError {
    /// An error of `cause` described by `message`.
    pub fn new(cause: TlsConfigCause, message: impl Into<String>) -> TlsConfigError {
        TlsConfigError {
            cause,
            message: message.into(),
        }
    }

    /// Why the configuration is unusable.
    pub fn cause(&self) -> TlsConfigCause {
        self.cause
    }

    /// The sentence naming what is wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::ops::Deref for TlsConfigError {
    type Target = str;
    fn deref(&self) -> &str {
        &self.message
    }
}

impl From<String> for TlsConfigError {
    /// A message without a more precise cause ([`TlsConfigCause::Other`]).
    fn from(message: String) -> TlsConfigError {
        TlsConfigError::new(TlsConfigCause::Other, message)
    }
}

impl From<&str> for TlsConfigError {
    /// A message without a more precise cause ([`TlsConfigCause::Other`]).
    fn from(message: &str) -> TlsConfigError {
        TlsConfigError::new(TlsConfigCause::Other, message)
    }
}

impl From<TlsConfigError> for String {
    fn from(e: TlsConfigError) -> String {
        e.message
    }
}

impl PartialEq<str> for TlsConfigError {
    fn eq(&self, other: &str) -> bool {
        self.message == other
    }
}
