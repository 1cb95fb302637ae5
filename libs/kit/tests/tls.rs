//! TLS and mTLS on 127.0.0.1:0 with certificates made by rcgen for each test: a TLS call, a
//! plaintext client against a TLS server, client certificates mapped to roles, and a missing
//! client certificate where one is required.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use invoicer_kit::Role;
use invoicer_kit::auth::{TokenEntry, token_sha256_hex};
use invoicer_kit::config::{ClientTlsConfig, ServerTlsConfig};
use invoicer_kit::server::RunningServer;
use invoicer_kit::{Config, client};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tonic::service::interceptor::InterceptedService;
use tonic_reflection::pb::v1;

/// A CA, a server certificate for 127.0.0.1 and client certificates, as PEM files in a
/// temporary folder.
struct Pki {
    folder: tempfile::TempDir,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Pki {
        let folder = tempfile::tempdir().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "invoicer test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let certificate = params.self_signed(&key).unwrap();
        std::fs::write(folder.path().join("ca.pem"), certificate.pem()).unwrap();
        Pki {
            folder,
            issuer: Issuer::new(params, key),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.folder.path().join(name)
    }

    /// Writes `<stem>.pem` and `<stem>.key` for a certificate with common name `cn` and the
    /// subject alternative names `sans`.
    fn issue(&self, stem: &str, cn: &str, sans: &[&str], purpose: ExtendedKeyUsagePurpose) {
        let names: Vec<String> = sans.iter().map(|s| (*s).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![purpose];
        let key = KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &self.issuer).unwrap();
        std::fs::write(self.path(&format!("{stem}.pem")), certificate.pem()).unwrap();
        std::fs::write(self.path(&format!("{stem}.key")), key.serialize_pem()).unwrap();
    }

    fn server_tls(&self, client_roles: BTreeMap<String, Role>, required: bool) -> ServerTlsConfig {
        self.issue(
            "server",
            "invoicer",
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let mtls = !client_roles.is_empty() || required;
        ServerTlsConfig {
            cert_file: self.path("server.pem"),
            key_file: self.path("server.key"),
            client_ca_file: mtls.then(|| self.path("ca.pem")),
            client_cert_required: required,
            client_roles,
        }
    }

    fn client_tls(&self, client_stem: Option<&str>) -> ClientTlsConfig {
        ClientTlsConfig {
            ca_file: Some(self.path("ca.pem")),
            cert_file: client_stem.map(|s| self.path(&format!("{s}.pem"))),
            key_file: client_stem.map(|s| self.path(&format!("{s}.key"))),
            server_name: None,
        }
    }
}

async fn start_tls(tls: ServerTlsConfig, viewer_token: Option<&str>) -> RunningServer {
    let mut config = Config::default();
    config.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.server.tls = Some(tls);
    if let Some(token) = viewer_token {
        config.server.tokens.push(TokenEntry {
            role: Role::Viewer,
            sha256: token_sha256_hex(token),
            name: None,
        });
    }
    invoicer_kit::server::start(Arc::new(config), Vec::new())
        .await
        .unwrap()
}

/// Lists the services over reflection, which admits every role.
async fn list_services(
    url: &str,
    tls: &ClientTlsConfig,
    token: Option<&str>,
) -> Result<(), tonic::Status> {
    let channel = client::lazy_channel(url, None, tls).unwrap();
    let interceptor = client::OutgoingInterceptor::new(token).unwrap();
    let mut reflection = v1::server_reflection_client::ServerReflectionClient::new(
        InterceptedService::new(channel, interceptor),
    );
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut stream = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await?
        .into_inner();
    stream.message().await?;
    Ok(())
}

#[tokio::test]
async fn tls_call_with_token_works() {
    let pki = Pki::new();
    let server = start_tls(pki.server_tls(BTreeMap::new(), false), Some("t0ken")).await;
    let url = format!("https://{}", server.local_addr());
    let result = list_services(&url, &pki.client_tls(None), Some("t0ken")).await;
    assert!(result.is_ok(), "{result:?}");
    let without = list_services(&url, &pki.client_tls(None), None)
        .await
        .unwrap_err();
    assert_eq!(without.code(), tonic::Code::Unauthenticated);
    server.shutdown("test finished").await.unwrap();
}

#[tokio::test]
async fn plaintext_client_to_tls_server_fails() {
    let pki = Pki::new();
    let server = start_tls(pki.server_tls(BTreeMap::new(), false), Some("t0ken")).await;
    let url = format!("http://{}", server.local_addr());
    let error = list_services(&url, &ClientTlsConfig::default(), Some("t0ken"))
        .await
        .unwrap_err();
    assert_ne!(error.code(), tonic::Code::Ok);
    assert_ne!(error.code(), tonic::Code::Unauthenticated, "{error:?}");
    server.shutdown("test finished").await.unwrap();
}

#[tokio::test]
async fn untrusted_server_certificate_fails() {
    let pki = Pki::new();
    let other = Pki::new();
    let server = start_tls(pki.server_tls(BTreeMap::new(), false), Some("t0ken")).await;
    let url = format!("https://{}", server.local_addr());
    let error = list_services(&url, &other.client_tls(None), Some("t0ken"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::Unavailable, "{error:?}");
    server.shutdown("test finished").await.unwrap();
}

#[tokio::test]
async fn mtls_certificate_maps_to_role() {
    let pki = Pki::new();
    let roles = BTreeMap::from([("erp.company.example".to_owned(), Role::Viewer)]);
    let server = start_tls(pki.server_tls(roles, false), None).await;
    let url = format!("https://{}", server.local_addr());

    // Mapped by a DNS name of the subject alternative names.
    pki.issue(
        "erp",
        "erp client",
        &["erp.company.example"],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let result = list_services(&url, &pki.client_tls(Some("erp")), None).await;
    assert!(result.is_ok(), "{result:?}");

    pki.issue(
        "stranger",
        "stranger",
        &["stranger.example"],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let error = list_services(&url, &pki.client_tls(Some("stranger")), None)
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::Unauthenticated);
    assert!(error.message().contains("stranger.example"), "{error:?}");
    server.shutdown("test finished").await.unwrap();
}

#[tokio::test]
async fn mtls_common_name_maps_to_role() {
    let pki = Pki::new();
    let roles = BTreeMap::from([("ops-console".to_owned(), Role::Admin)]);
    let server = start_tls(pki.server_tls(roles, false), None).await;
    let url = format!("https://{}", server.local_addr());
    pki.issue(
        "ops",
        "ops-console",
        &[],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let result = list_services(&url, &pki.client_tls(Some("ops")), None).await;
    assert!(result.is_ok(), "{result:?}");
    server.shutdown("test finished").await.unwrap();
}

#[tokio::test]
async fn missing_client_certificate_rejected_when_required() {
    let pki = Pki::new();
    let roles = BTreeMap::from([("erp.company.example".to_owned(), Role::Viewer)]);
    let server = start_tls(pki.server_tls(roles, true), Some("t0ken")).await;
    let url = format!("https://{}", server.local_addr());
    // A valid token does not replace the certificate the TLS handshake requires.
    let error = list_services(&url, &pki.client_tls(None), Some("t0ken"))
        .await
        .unwrap_err();
    // With TLS 1.3 the client learns of the rejection only from the alert after the handshake.
    assert!(
        format!("{error:?}").contains("CertificateRequired"),
        "{error:?}"
    );

    pki.issue(
        "erp",
        "erp",
        &["erp.company.example"],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let result = list_services(&url, &pki.client_tls(Some("erp")), None).await;
    assert!(result.is_ok(), "{result:?}");
    server.shutdown("test finished").await.unwrap();
}

#[tokio::test]
async fn client_certificate_required_without_ca_is_refused() {
    let pki = Pki::new();
    let mut tls = pki.server_tls(BTreeMap::new(), false);
    tls.client_cert_required = true;
    let mut config = Config::default();
    config.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.server.tls = Some(tls);
    let error = invoicer_kit::server::start(Arc::new(config), Vec::new())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("client_ca_file"), "{error}");
}

#[tokio::test]
async fn missing_certificate_file_is_named() {
    let pki = Pki::new();
    let mut tls = pki.server_tls(BTreeMap::new(), false);
    tls.key_file = pki.path("absent.key");
    let mut config = Config::default();
    config.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.server.tls = Some(tls);
    let error = invoicer_kit::server::start(Arc::new(config), Vec::new())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("server.tls.key_file"), "{error}");
    assert!(error.contains("absent.key"), "{error}");
}

#[tokio::test]
async fn health_listener_serves_plaintext_beside_tls() {
    let pki = Pki::new();
    let mut config = Config::default();
    config.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.server.health_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    config.server.tls = Some(pki.server_tls(BTreeMap::new(), false));
    let server = invoicer_kit::server::start(Arc::new(config), Vec::new())
        .await
        .unwrap();
    let health_address = server.health_address().unwrap();
    let url = format!("http://{health_address}");
    let channel = client::lazy_channel(&url, None, &ClientTlsConfig::default()).unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let request = tonic_health::pb::HealthCheckRequest::default();
    let response = health.check(request).await;
    assert!(response.is_ok(), "{response:?}");

    // The health listener serves nothing else.
    let other = list_services(&url, &ClientTlsConfig::default(), None)
        .await
        .unwrap_err();
    assert_eq!(other.code(), tonic::Code::Unimplemented, "{other:?}");
    server.shutdown("test finished").await.unwrap();
}
