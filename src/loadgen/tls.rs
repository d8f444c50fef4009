//! The generator's TLS client: one rustls configuration (ring provider) per run, shared
//! by every lane so that resumed sessions cross lanes, with the server certificate
//! checked against a CA file or, for lab certificates, not checked at all.

use std::path::Path;
use std::sync::Arc;

use rustls::client::Resumption;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, HandshakeKind, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::plan::Connect;

/// How many sessions the client remembers (rustls keeps a few TLS 1.3 tickets per
/// server name, each used once).
const SESSION_CACHE: usize = 4096;

/// What a run needs to open TLS connections.
#[derive(Clone)]
pub struct Client {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl Client {
    /// Builds the client for `connect`, naming the server `default_name` unless
    /// `--server-name` says otherwise.
    pub fn new(connect: &Connect, default_name: &str) -> Result<Client, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?;
        let mut config = match (&connect.ca_file, connect.tls_insecure) {
            (Some(file), _) => builder
                .with_root_certificates(roots(file)?)
                .with_no_client_auth(),
            (None, true) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(
                    provider.signature_verification_algorithms,
                )))
                .with_no_client_auth(),
            (None, false) => return Err("TLS needs --ca-file FILE or --tls-insecure".into()),
        };
        config.resumption = if connect.tls_resume {
            Resumption::in_memory_sessions(SESSION_CACHE)
        } else {
            Resumption::disabled()
        };
        let name = connect.server_name.as_deref().unwrap_or(default_name);
        let name = ServerName::try_from(name.to_string())
            .map_err(|e| format!("TLS: {name:?} is not a server name: {e}"))?;
        Ok(Client {
            connector: TlsConnector::from(Arc::new(config)),
            name,
        })
    }

    /// Runs the handshake over `tcp`; says whether the session was resumed.
    pub async fn handshake(&self, tcp: TcpStream) -> std::io::Result<(TlsStream<TcpStream>, bool)> {
        let tls = self.connector.connect(self.name.clone(), tcp).await?;
        let resumed = tls.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed);
        Ok((tls, resumed))
    }
}

/// The certificates of a PEM file as trust anchors; an error names the file.
fn roots(file: &Path) -> Result<RootCertStore, String> {
    let shown = file.display();
    let mut store = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(file).map_err(|e| format!("{shown}: {e}"))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("{shown}: {e}"))?;
        store
            .add(cert)
            .map_err(|e| format!("{shown}: not a usable CA certificate: {e}"))?;
    }
    if store.is_empty() {
        return Err(format!("{shown}: no certificate in the file"));
    }
    Ok(store)
}

/// `--tls-insecure`: any certificate is accepted, but the handshake signatures are still
/// verified, so the handshake costs what it costs with a checked certificate.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect() -> Connect {
        Connect {
            tls_insecure: true,
            ..Connect::default()
        }
    }

    #[test]
    fn an_ip_address_is_a_server_name() {
        assert!(Client::new(&connect(), "127.0.0.1").is_ok());
        assert!(Client::new(&connect(), "sip.example.com").is_ok());
        assert!(Client::new(&connect(), "not a name").is_err());
    }

    #[test]
    fn a_ca_file_error_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.pem");
        let c = Connect {
            ca_file: Some(missing.clone()),
            ..Connect::default()
        };
        let e = Client::new(&c, "127.0.0.1").err().expect("an error");
        assert!(e.contains("missing.pem"), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let c = Connect {
            ca_file: Some(empty),
            ..Connect::default()
        };
        let e = Client::new(&c, "127.0.0.1").err().expect("an error");
        assert!(e.contains("no certificate"), "{e}");
    }

    #[test]
    fn tls_needs_a_way_to_check_the_certificate() {
        assert!(Client::new(&Connect::default(), "127.0.0.1").is_err());
    }
}
