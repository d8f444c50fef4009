//! A self-signed certificate for a lab (rcgen, ring): the subject alternative names are
//! the given host plus `localhost`, `127.0.0.1` and `::1`, so the same certificate also
//! works for clients on the server's own machine. Not for production: clients must be
//! told to trust this very certificate.

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};

use super::acceptor::TlsError;

/// The loopback names every lab certificate also carries.
pub const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// A generated certificate and its private key, both PEM.
pub struct SelfSigned {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Generates an ECDSA P-256 key and a self-signed certificate for `host` (a DNS name or
/// an IP address).
pub fn self_signed(host: &str) -> Result<SelfSigned, TlsError> {
    // The name a client will check the certificate against: a DNS name or an IP.
    if rustls::pki_types::ServerName::try_from(host).is_err() {
        return Err(TlsError::Setting(format!(
            "'{host}' is neither a DNS name nor an IP address"
        )));
    }
    let mut names = vec![host.to_string()];
    for n in LOOPBACK_NAMES {
        if !names.iter().any(|h| h.eq_ignore_ascii_case(n)) {
            names.push(n.to_string());
        }
    }
    let bad =
        |e: rcgen::Error| TlsError::Setting(format!("cannot make a certificate for '{host}': {e}"));
    let mut params = CertificateParams::new(names).map_err(bad)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, host);
    params.distinguished_name = dn;
    let key = KeyPair::generate().map_err(bad)?;
    let cert = params.self_signed(&key).map_err(bad)?;
    Ok(SelfSigned {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_and_key_are_pem_and_bad_names_are_refused() {
        let p = self_signed("sip.example.com").expect("generate");
        assert!(p.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(p.key_pem.contains("PRIVATE KEY-----"));
        let e = self_signed("not a host name").err().expect("refused");
        assert!(e.to_string().contains("not a host name"), "{e}");
    }
}
