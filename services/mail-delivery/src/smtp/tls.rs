//! TLS client settings: the web PKI roots, plus the CAs of `ca_file` when the URL names one,
//! or no certificate check at all for a host in `mail.insecure_skip_verify_hosts`.
//! STARTTLS goes through lettre's `TlsParameters`. Implicit TLS uses a rustls connector of
//! its own, because the session puts its own socket wrapper above that TLS layer.

use std::path::Path;
use std::sync::Arc;

use lettre::transport::smtp::client::{Certificate, TlsParameters};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{
    CryptoProvider, ring, verify_tls12_signature, verify_tls13_signature,
};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::MailDeliveryError;

#[derive(Clone)]
pub(crate) struct TlsSettings {
    starttls: TlsParameters,
    connector: TlsConnector,
}

impl TlsSettings {
    /// Builds the settings for a server called `host`, reading `ca_file` once, at start-up.
    /// With `skip_verify`, any certificate is accepted, so TLS protects against eavesdroppers
    /// but not against someone who can redirect the connection.
    pub(crate) fn new(
        host: &str,
        ca_file: Option<&Path>,
        skip_verify: bool,
    ) -> Result<TlsSettings, MailDeliveryError> {
        let ca_pem = match ca_file {
            Some(path) => Some(read_ca_file(path)?),
            None => None,
        };
        let starttls = starttls_parameters(host, ca_pem.as_deref(), skip_verify)
            .map_err(|reason| ca_error(ca_file, reason))?;
        let connector = implicit_tls_connector(ca_pem.as_deref(), skip_verify)
            .map_err(|reason| ca_error(ca_file, reason))?;
        Ok(TlsSettings {
            starttls,
            connector,
        })
    }

    pub(crate) fn starttls_parameters(&self) -> TlsParameters {
        self.starttls.clone()
    }

    pub(crate) fn connector(&self) -> &TlsConnector {
        &self.connector
    }
}

fn ca_error(ca_file: Option<&Path>, reason: String) -> MailDeliveryError {
    MailDeliveryError::CaFile {
        path: ca_file.unwrap_or(Path::new("")).to_owned(),
        reason,
    }
}

fn read_ca_file(path: &Path) -> Result<Vec<u8>, MailDeliveryError> {
    let pem = std::fs::read(path).map_err(|error| ca_error(Some(path), error.to_string()))?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .filter_map(Result::ok)
        .count();
    if certificates == 0 {
        return Err(ca_error(Some(path), "no PEM certificate found".to_owned()));
    }
    Ok(pem)
}

fn starttls_parameters(
    host: &str,
    ca_pem: Option<&[u8]>,
    skip_verify: bool,
) -> Result<TlsParameters, String> {
    let mut builder = TlsParameters::builder(host.to_owned())
        .dangerous_accept_invalid_certs(skip_verify)
        .dangerous_accept_invalid_hostnames(skip_verify);
    if let Some(pem) = ca_pem {
        let certificate = Certificate::from_pem(pem).map_err(|error| error.to_string())?;
        builder = builder.add_root_certificate(certificate);
    }
    builder.build_rustls().map_err(|error| error.to_string())
}

fn implicit_tls_connector(
    ca_pem: Option<&[u8]>,
    skip_verify: bool,
) -> Result<TlsConnector, String> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = ca_pem {
        for certificate in CertificateDer::pem_slice_iter(pem) {
            let certificate = certificate.map_err(|error| format!("invalid PEM: {error}"))?;
            roots
                .add(certificate)
                .map_err(|error| format!("invalid CA certificate: {error}"))?;
        }
    }
    let provider = Arc::new(ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?;
    let config = if skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate { provider }))
            .with_no_client_auth()
    } else {
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Accepts any server certificate, but still checks that the server has its private key.
#[derive(Debug)]
struct AnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, tokio_rustls::rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
