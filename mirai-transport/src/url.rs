//! Parsing of mirai URLs. (Filled in by the transport implementation.)
use crate::Error;

/// The transport a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    /// `ipc:///absolute/path` or `ipc://relative`: a Unix socket file.
    Ipc(std::path::PathBuf),
    /// `abstract://name`: a Linux abstract Unix socket.
    Abstract(String),
    /// `tcp://host:port`.
    Tcp {
        /// Host name or IP (IPv6 without brackets).
        host: String,
        /// Port; 0 asks for an ephemeral one when listening.
        port: u16,
    },
    /// `tls+tcp://host:port`.
    TlsTcp {
        /// Host name or IP (IPv6 without brackets).
        host: String,
        /// Port.
        port: u16,
    },
}

/// A parsed URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// What it names.
    pub scheme: Scheme,
}

impl std::str::FromStr for Url {
    type Err = Error;
    fn from_str(s: &str) -> Result<Url, Error> {
        let _ = s;
        unimplemented!("transport helper implements URL parsing")
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let _ = f;
        unimplemented!("transport helper implements URL display")
    }
}
