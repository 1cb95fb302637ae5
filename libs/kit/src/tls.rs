//! TLS for the gRPC servers and clients (rustls with the ring provider, through tonic), and
//! the names of a client certificate that `server.tls.client_roles` maps to roles.

use std::net::SocketAddr;
use std::path::Path;

use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::transport::{Certificate, Identity};

use crate::config::{ClientTlsConfig, ServerTlsConfig};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {key} {path}: {cause}")]
    Read {
        key: &'static str,
        path: std::path::PathBuf,
        cause: std::io::Error,
    },
    #[error("{key} {path} contains no PEM block; expected `-----BEGIN ...-----`")]
    NotPem {
        key: &'static str,
        path: std::path::PathBuf,
    },
    #[error("client.tls.cert_file and client.tls.key_file must be set together")]
    HalfClientIdentity,
    #[error(
        "server.tls.client_cert_required needs server.tls.client_ca_file, the CA that signs the client certificates"
    )]
    RequiredWithoutCa,
}

fn read_pem(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    let bytes = std::fs::read(path).map_err(|cause| TlsError::Read {
        key,
        path: path.to_owned(),
        cause,
    })?;
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(TlsError::NotPem {
            key,
            path: path.to_owned(),
        });
    }
    Ok(bytes)
}

/// Builds tonic's server TLS settings: the server identity and, with a client CA, the client
/// certificate check (optional unless `client_cert_required`).
pub fn server_config(
    config: &ServerTlsConfig,
) -> Result<tonic::transport::ServerTlsConfig, TlsError> {
    let cert = read_pem("server.tls.cert_file", &config.cert_file)?;
    let key = read_pem("server.tls.key_file", &config.key_file)?;
    let mut tls = tonic::transport::ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
    match &config.client_ca_file {
        Some(path) => {
            let ca = read_pem("server.tls.client_ca_file", path)?;
            tls = tls
                .client_ca_root(Certificate::from_pem(ca))
                .client_auth_optional(!config.client_cert_required);
        }
        None if config.client_cert_required => return Err(TlsError::RequiredWithoutCa),
        None => {}
    }
    Ok(tls)
}

/// Builds tonic's client TLS settings for `https://` endpoints: the CA file or the built-in
/// Mozilla roots, an optional client certificate, and an optional server name.
pub fn client_config(
    config: &ClientTlsConfig,
) -> Result<tonic::transport::ClientTlsConfig, TlsError> {
    let mut tls = tonic::transport::ClientTlsConfig::new();
    tls = match &config.ca_file {
        Some(path) => {
            tls.ca_certificate(Certificate::from_pem(read_pem("client.tls.ca_file", path)?))
        }
        None => tls.with_webpki_roots(),
    };
    match (&config.cert_file, &config.key_file) {
        (Some(cert), Some(key)) => {
            let cert = read_pem("client.tls.cert_file", cert)?;
            let key = read_pem("client.tls.key_file", key)?;
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        (None, None) => {}
        _ => return Err(TlsError::HalfClientIdentity),
    }
    if let Some(name) = &config.server_name {
        tls = tls.domain_name(name.clone());
    }
    Ok(tls)
}

/// Returns the names of the verified client certificate of this connection, as
/// [`certificate_names`] lists them. Without a client certificate the list is empty.
pub fn peer_certificate_names(extensions: &http::Extensions) -> Vec<String> {
    let Some(info) = extensions.get::<TlsConnectInfo<TcpConnectInfo>>() else {
        return Vec::new();
    };
    let Some(certificates) = info.peer_certs() else {
        return Vec::new();
    };
    let Some(leaf) = certificates.first() else {
        return Vec::new();
    };
    certificate_names(leaf.as_ref())
}

/// Returns the subject common names, then the SAN DNS names, of a DER certificate.
pub fn certificate_names(der: &[u8]) -> Vec<String> {
    let Ok((_, certificate)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    let mut names: Vec<String> = certificate
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .map(str::to_owned)
        .collect();
    if let Ok(Some(san)) = certificate.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(dns) = name {
                names.push((*dns).to_owned());
            }
        }
    }
    names
}

/// Returns the remote address of the connection, with or without TLS.
pub fn peer_address(extensions: &http::Extensions) -> Option<SocketAddr> {
    if let Some(info) = extensions.get::<TcpConnectInfo>() {
        return info.remote_addr();
    }
    extensions
        .get::<TlsConnectInfo<TcpConnectInfo>>()
        .and_then(|info| info.get_ref().remote_addr())
}
