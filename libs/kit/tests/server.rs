//! The bootstrap on 127.0.0.1:0: health and both reflection versions, and the bearer token.

use std::net::SocketAddr;
use std::sync::Arc;

use invoicer_kit::Config;
use tonic::transport::Channel;
use tonic_reflection::pb::{v1, v1alpha};

async fn start(auth_token: Option<&str>) -> invoicer_kit::server::RunningServer {
    let mut config = Config::default();
    config.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.server.auth_token = auth_token.map(str::to_owned);
    invoicer_kit::server::start(Arc::new(config), Vec::new())
        .await
        .unwrap()
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

    let mut reflection = v1::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let error = reflection
        .server_reflection_info(tokio_stream::iter([request.clone()]))
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::Unauthenticated);

    let interceptor = invoicer_kit::client::OutgoingInterceptor::new(Some("s3cret")).unwrap();
    let authorized = tonic::service::interceptor::InterceptedService::new(channel, interceptor);
    let mut reflection = v1::server_reflection_client::ServerReflectionClient::new(authorized);
    assert!(
        reflection
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .is_ok()
    );
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
