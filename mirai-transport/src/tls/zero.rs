//! Zero-config TLS: single-use credentials generated for one compute profile.
use super::{config_err, TlsConfig, TlsConfigCause as Cause};
use crate::Error;

/// Credentials generated for one compute profile by [`zero_config`]: PEM text.
///
/// `server_cert`/`server_key` stay on the host; `ca_cert`, `client_cert` and `client_key` go
/// to the daemons (in their launch command). The CA's own key no longer exists.
#[derive(Clone)]
pub struct ZeroConfig {
    /// The single-use CA certificate: daemons verify the host with it, and the host verifies
    /// daemons with it.
    pub ca_cert: String,
    /// The host's certificate (CN and subject alternative names = the host names given).
    pub server_cert: String,
    /// The host's private key (PKCS#8). Never leaves the host.
    pub server_key: String,
    /// The daemons' certificate (CN `mirai daemon`), for client authentication.
    pub client_cert: String,
    /// The daemons' private key (PKCS#8).
    pub client_key: String,
}

impl std::fmt::Debug for ZeroConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZeroConfig")
            .field("ca_cert", &self.ca_cert)
            .field("server_cert", &self.server_cert)
            .field("client_cert", &self.client_cert)
            .finish_non_exhaustive()
    }
}

impl ZeroConfig {
    /// The listener side: presents the server certificate and **requires** client
    /// certificates from this CA (mutual authentication).
    pub fn server_config(&self) -> Result<TlsConfig, Error> {
        TlsConfig::server_with_client_auth(&self.server_cert, &self.server_key, None, &self.ca_cert)
    }

    /// The daemon side: trusts this CA and presents the client certificate.
    pub fn client_config(&self) -> Result<TlsConfig, Error> {
        TlsConfig::client_with_identity(&self.ca_cert, &self.client_cert, &self.client_key, None)
    }

    /// Client certificate followed by its key in one PEM text, for a launch command; feed it
    /// back as both `cert_chain_pem` and `key_pem` of [`TlsConfig::client_with_identity`].
    pub fn client_identity_pem(&self) -> String {
        format!("{}{}", self.client_cert, self.client_key)
    }
}

/// Generates single-use credentials for a host reached as `host` (an IP address or DNS name,
/// IPv6 with or without brackets): see [`ZeroConfig`] and [`zero_config_for`].
pub fn zero_config(host: &str) -> Result<ZeroConfig, Error> {
    zero_config_for(&[host])
}

/// Like [`zero_config`] for a host reached under several names or addresses (the first is the
/// certificate's CN; all become subject alternative names).
///
/// Keys are ECDSA P-256. Certificates are valid from one day before generation (so modest
/// clock differences between host and daemons do not matter) until 2030-12-31 23:59:59 UTC
/// (mirai's upstream choice), or one year after generation if that is later.
pub fn zero_config_for(hosts: &[&str]) -> Result<ZeroConfig, Error> {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose, SanType,
    };
    let gen_err = |e: rcgen::Error| {
        config_err(
            Cause::Generation,
            format!("cannot generate credentials: {e}"),
        )
    };
    let mut names = Vec::new();
    for h in hosts {
        let h = h.trim().trim_start_matches('[').trim_end_matches(']');
        if h.is_empty() || h == "*" {
            return Err(config_err(
                Cause::BadHostName,
                "zero-config TLS needs the host name or IP address that daemons dial, not an \
                 empty or wildcard host",
            ));
        }
        names.push(h.to_string());
    }
    let Some(cn) = names.first().cloned() else {
        return Err(config_err(
            Cause::BadHostName,
            "zero-config TLS needs at least one host name or IP",
        ));
    };
    let now = time::OffsetDateTime::now_utc();
    let not_before = now - time::Duration::days(1);
    let not_after = rcgen::date_time_ymd(2030, 12, 31)
        .replace_time(
            time::Time::from_hms(23, 59, 59)
                .map_err(|e| config_err(Cause::Generation, e.to_string()))?,
        )
        .max(now + time::Duration::days(365));
    let dn = |cn: &str| {
        let mut d = DistinguishedName::new();
        d.push(DnType::CommonName, cn);
        d.push(DnType::OrganizationName, "mirai");
        d
    };

    let ca_key = KeyPair::generate().map_err(gen_err)?;
    let mut ca = CertificateParams::default();
    // Verifiers find an issuer by name: each CA gets its own (from its random public key), so
    // another profile's certificate is reported as from an unknown issuer, not as a forgery.
    let tag: String = ca_key
        .public_key_raw()
        .iter()
        .skip(1)
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    ca.distinguished_name = dn(&format!("mirai single-use CA {tag} for {cn}"));
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = not_before;
    ca.not_after = not_after;
    let ca_cert = ca.self_signed(&ca_key).map_err(gen_err)?;

    let server_key = KeyPair::generate().map_err(gen_err)?;
    let mut server = CertificateParams::default();
    server.distinguished_name = dn(&cn);
    server.subject_alt_names = names
        .iter()
        .map(|n| match n.parse::<std::net::IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => n.clone().try_into().map(SanType::DnsName).map_err(|_| {
                config_err(
                    Cause::BadHostName,
                    format!("'{n}' is not a valid host name"),
                )
            }),
        })
        .collect::<Result<_, _>>()?;
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.use_authority_key_identifier_extension = true;
    server.not_before = not_before;
    server.not_after = not_after;
    let server_cert = server
        .signed_by(&server_key, &ca_cert, &ca_key)
        .map_err(gen_err)?;

    let client_key = KeyPair::generate().map_err(gen_err)?;
    let mut client = CertificateParams::default();
    client.distinguished_name = dn("mirai daemon");
    client.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    client.use_authority_key_identifier_extension = true;
    client.not_before = not_before;
    client.not_after = not_after;
    let client_cert = client
        .signed_by(&client_key, &ca_cert, &ca_key)
        .map_err(gen_err)?;
    // `ca_key` is dropped here: the CA can sign nothing else.
    Ok(ZeroConfig {
        ca_cert: ca_cert.pem(),
        server_cert: server_cert.pem(),
        server_key: server_key.serialize_pem(),
        client_cert: client_cert.pem(),
        client_key: client_key.serialize_pem(),
    })
}
