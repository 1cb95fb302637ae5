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
