//! The bootstrap on 127.0.0.1:0: health and both reflection versions, bearer tokens and the
//! checks of the listen address.

use std::net::SocketAddr;
use std::sync::Arc;

use invoicer_kit::Config;
use tonic::transport::Channel;
use tonic_reflection::pb::{v1, v1alpha};

use invoicer_kit::Role;
use invoicer_kit::auth::{TokenEntry, token_sha256_hex};

async fn start(viewer_token: Option<&str>) -> invoicer_kit::server::RunningServer {
    let mut config = Config::default();
    config.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    if let Some(token) = viewer_token {
        config.server.tokens.push(TokenEntry {
            role: Role::Viewer,
            sha256: token_sha256_hex(token),
            name: Some("test-viewer".to_owned()),
        });
    }
    invoicer_kit::server::start(Arc::new(config), Vec::new())
        .await
        .unwrap()
}

async fn start_error(configure: impl FnOnce(&mut Config)) -> String {
    let mut config = Config::default();
    config.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    configure(&mut config);
    match invoicer_kit::server::start(Arc::new(config), Vec::new()).await {
        Ok(server) => {
            server.shutdown("test finished").await.unwrap();
            panic!("the server started");
        }
        Err(error) => error.to_string(),
    }
}

async fn channel(server: &invoicer_kit::server::RunningServer) -> Channel {
    Channel::from_shared(format!("http://{}", server.local_addr()))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

#[tokio::test]
async fn reflection_v1_lists_health() {
    let server = start(None).await;
    let mut client =
        v1::server_reflection_client::ServerReflectionClient::new(channel(&server).await);
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        response.message_response
    else {
        panic!("unexpected reflection response: {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.iter().any(|n| n == "grpc.health.v1.Health"),
        "{names:?}"
    );
    server.shutdown("test finished").await.unwrap();
}

#[tokio::test]
async fn reflection_v1alpha_lists_health() {
    let server = start(None).await;
    let mut client =
        v1alpha::server_reflection_client::ServerReflectionClient::new(channel(&server).await);
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        response.message_response
    else {
        panic!("unexpected reflection response: {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.iter().any(|n| n == "grpc.health.v1.Health"),
        "{names:?}"
    );
    server.shutdown("test finished").await.unwrap();
}

fn list_services() -> v1::ServerReflectionRequest {
    v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    }
}

async fn reflection_with(channel: Channel, token: Option<&str>) -> Result<(), tonic::Status> {
    let interceptor = invoicer_kit::client::OutgoingInterceptor::new(token).unwrap();
    let channel = tonic::service::interceptor::InterceptedService::new(channel, interceptor);
    let mut reflection = v1::server_reflection_client::ServerReflectionClient::new(channel);
    reflection
        .server_reflection_info(tokio_stream::iter([list_services()]))
        .await
        .map(|_| ())
}

#[tokio::test]
async fn bearer_token_required_except_for_health() {
    let server = start(Some("s3cret")).await;
    let channel = channel(&server).await;

    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let request = tonic_health::pb::HealthCheckRequest {
        service: String::new(),
    };
    assert!(
        health.check(request).await.is_ok(),
        "health checks must work without a token"
    );

    let missing = reflection_with(channel.clone(), None).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::Unauthenticated);
    assert!(
        missing.message().contains("missing credentials"),
        "{missing:?}"
    );

    let unknown = reflection_with(channel.clone(), Some("guess"))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::Unauthenticated);
    assert!(
        unknown.message().contains("unknown bearer token"),
        "{unknown:?}"
    );

    assert!(reflection_with(channel, Some("s3cret")).await.is_ok());
    server.shutdown("test finished").await.unwrap();
}

/// A plugin whose start begins background work that ends `work` after shutdown begins.
struct DrainingPlugin {
    work: std::time::Duration,
}

#[tonic::async_trait]
impl invoicer_kit::ServicePlugin for DrainingPlugin {
    fn name(&self) -> invoicer_kit::ServiceName {
        invoicer_kit::ServiceName::AuditLog
    }

    async fn start(
        &self,
        ctx: invoicer_kit::ServiceContext,
        _routes: &mut tonic::service::RoutesBuilder,
    ) -> Result<(), invoicer_kit::BoxError> {
        let guard = ctx.shutdown.begin_work();
        let mut shutdown = ctx.shutdown.clone();
        let work = self.work;
        tokio::spawn(async move {
            shutdown.triggered().await;
            tokio::time::sleep(work).await;
            drop(guard);
        });
        Ok(())
    }
}

async fn start_draining(
    work: std::time::Duration,
    grace_secs: u64,
) -> invoicer_kit::server::RunningServer {
    let mut config = Config::default();
    config.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.server.shutdown_grace_secs = grace_secs;
    let plugin: Arc<dyn invoicer_kit::ServicePlugin> = Arc::new(DrainingPlugin { work });
    invoicer_kit::server::start(Arc::new(config), vec![plugin])
        .await
        .unwrap()
}

async fn health_status(channel: Channel) -> i32 {
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let request = tonic_health::pb::HealthCheckRequest {
        service: String::new(),
    };
    health.check(request).await.unwrap().into_inner().status
}

#[tokio::test]
async fn health_not_serving_while_draining() {
    use tonic_health::pb::health_check_response::ServingStatus;
    let server = start_draining(std::time::Duration::from_millis(1500), 10).await;
    let channel = channel(&server).await;
    assert_eq!(
        health_status(channel.clone()).await,
        ServingStatus::Serving as i32
    );

    let started = std::time::Instant::now();
    let stopping = tokio::spawn(server.shutdown("test drain"));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        health_status(channel).await,
        ServingStatus::NotServing as i32
    );
    stopping.await.unwrap().unwrap();
    let took = started.elapsed();
    assert!(
        took >= std::time::Duration::from_millis(1500),
        "stopped before the work ended: {took:?}"
    );
    assert!(
        took < std::time::Duration::from_secs(5),
        "drain took {took:?}"
    );
}

#[tokio::test]
async fn open_server_admits_callers_without_token() {
    let server = start(None).await;
    assert!(reflection_with(channel(&server).await, None).await.is_ok());
    server.shutdown("test finished").await.unwrap();
}

#[tokio::test]
async fn plain_auth_token_is_rejected_at_start() {
    let error = start_error(|config| config.server.auth_token = Some("old".to_owned())).await;
    assert!(
        error.contains("server.auth_token is no longer supported"),
        "{error}"
    );
    assert!(error.contains("invoicer token new"), "{error}");
}

#[tokio::test]
async fn open_server_refuses_non_loopback_listen() {
    let error = start_error(|config| {
        config.server.listen = SocketAddr::from(([192, 0, 2, 1], 50051));
    })
    .await;
    assert!(error.contains("listens on loopback only"), "{error}");
    assert!(error.contains("192.0.2.1:50051"), "{error}");
}

#[tokio::test]
async fn non_loopback_listen_without_tls_is_refused() {
    let error = start_error(|config| {
        config.server.listen = SocketAddr::from(([192, 0, 2, 1], 50051));
        config.server.tokens.push(TokenEntry {
            role: Role::Admin,
            sha256: token_sha256_hex("t"),
            name: None,
        });
    })
    .await;
    assert!(error.contains("without TLS"), "{error}");
    assert!(error.contains("server.plaintext = true"), "{error}");
}

#[tokio::test]
async fn non_loopback_plaintext_when_configured() {
    // 192.0.2.1 is not an address of this machine, so the check passes and binding fails;
    // the error then comes from the bind, past the plaintext check.
    let error = start_error(|config| {
        config.server.listen = SocketAddr::from(([192, 0, 2, 1], 50051));
        config.server.plaintext = true;
        config.server.tokens.push(TokenEntry {
            role: Role::Admin,
            sha256: token_sha256_hex("t"),
            name: None,
        });
    })
    .await;
    assert!(
        error.contains("cannot listen on 192.0.2.1:50051"),
        "{error}"
    );
}

#[tokio::test]
async fn port_in_use_names_setting() {
    let other_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = other_listener.local_addr().unwrap();

    let error = start_error(|config| config.server.listen = address).await;

    assert!(
        error.contains(&format!("cannot listen on {address}")),
        "{error}"
    );
    assert!(
        error.contains("set another in server.listen or INVOICER_LISTEN"),
        "{error}"
    );
}

#[tokio::test]
async fn drain_stops_at_grace_period() {
    let server = start_draining(std::time::Duration::from_secs(30), 1).await;
    let started = std::time::Instant::now();
    server.shutdown("test grace").await.unwrap();
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_secs(3),
        "drain waited past the grace period: {took:?}"
    );
}

#[tokio::test]
async fn invalid_token_hash_is_named_at_start() {
    let error = start_error(|config| {
        config.server.tokens.push(TokenEntry {
            role: Role::Operator,
            sha256: "1234".to_owned(),
            name: None,
        });
    })
    .await;
    assert!(
        error.contains("server.tokens entry 1 (role operator)"),
        "{error}"
    );
}
