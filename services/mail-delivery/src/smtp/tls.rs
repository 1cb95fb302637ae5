//! TLS client settings: the web PKI roots, plus the CAs of `ca_file` when the URL names one.
//! STARTTLS goes through lettre's `TlsParameters`. Implicit TLS uses a rustls connector of
//! its own, because the session puts its own socket wrapper above that TLS layer.

use std::path::Path;
use std::sync::Arc;

use lettre::transport::smtp::client::{Certificate, TlsParameters};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use crate::error::MailDeliveryError;

#[derive(Clone)]
pub(crate) struct TlsSettings {
    starttls: TlsParameters,
    connector: TlsConnector,
}

impl TlsSettings {
    /// Builds the settings for a server called `host`, reading `ca_file` once, at start-up.
    pub(crate) fn new(
        host: &str,
        ca_file: Option<&Path>,
    ) -> Result<TlsSettings, MailDeliveryError> {
        let ca_pem = match ca_file {
            Some(path) => Some(read_ca_file(path)?),
            None => None,
        };
        let starttls = starttls_parameters(host, ca_pem.as_deref())
            .map_err(|reason| ca_error(ca_file, reason))?;
        let connector = implicit_tls_connector(ca_pem.as_deref())
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

fn starttls_parameters(host: &str, ca_pem: Option<&[u8]>) -> Result<TlsParameters, String> {
    let mut builder = TlsParameters::builder(host.to_owned());
    if let Some(pem) = ca_pem {
        let certificate = Certificate::from_pem(pem).map_err(|error| error.to_string())?;
        builder = builder.add_root_certificate(certificate);
    }
    builder.build_rustls().map_err(|error| error.to_string())
}

fn implicit_tls_connector(ca_pem: Option<&[u8]>) -> Result<TlsConnector, String> {
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
    let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}
