//! Server bootstrap: binds the listener, starts the chosen plugins, adds health and reflection,
//! and runs until shutdown with a drain deadline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::RoutesBuilder;
use tracing::Instrument;

use crate::client::Channels;
use crate::config::Config;
use crate::plugin::{BoxError, ServiceContext, ServiceName, ServicePlugin, Shutdown};

const HEALTH_PATH_PREFIX: &str = "/grpc.health.v1.Health/";

/// A server that accepts requests until `shutdown` is called.
pub struct RunningServer {
    local_addr: SocketAddr,
    services: Vec<ServiceName>,
    /// Tells the plugins to stop taking new work.
    stop: tokio::sync::watch::Sender<bool>,
    /// Stops the gRPC server, once the plugins' work drained.
    stop_serving: tokio::sync::watch::Sender<bool>,
    shutdown: Shutdown,
    health: tonic_health::server::HealthReporter,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
    grace: Duration,
}

/// Binds `config.server.listen`, starts `plugins` and serves them, with health and reflection.
pub async fn start(
    config: Arc<Config>,
    plugins: Vec<Arc<dyn ServicePlugin>>,
) -> Result<RunningServer, BoxError> {
    let listen = config.server.listen;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let local_addr = listener.local_addr()?;
    let (stop, shutdown) = Shutdown::new();
    let context = ServiceContext {
        channels: Channels::new(&config, Some(local_addr))?,
        config: config.clone(),
        shutdown: shutdown.clone(),
    };

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    let mut routes = RoutesBuilder::default();
    let mut services = Vec::new();
    for plugin in &plugins {
        let name = plugin.name();
        plugin
            .start(context.clone(), &mut routes)
            .await
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        health_reporter
            .set_service_status(name.grpc_service(), tonic_health::ServingStatus::Serving)
            .await;
        services.push(name);
    }
    add_reflection(&mut routes)?;
    routes.add_service(health_service);

    let auth = config.server.auth_token.clone().map(Arc::<str>::from);
    let (stop_serving, mut stop_signal) = tokio::sync::watch::channel(false);
    let router = tonic::transport::Server::builder()
        .layer(RequestLayer { auth, local_addr })
        .add_routes(routes.routes());
    let task = tokio::spawn(router.serve_with_incoming_shutdown(
        TcpListenerStream::new(listener),
        async move {
            // An error means the sender is gone, which also means stop.
            let _ = stop_signal.wait_for(|stop| *stop).await;
        },
    ));

    let names: Vec<&str> = services.iter().map(|s| s.as_str()).collect();
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        address = %local_addr,
        services = %names.join(","),
        "server started"
    );
    Ok(RunningServer {
        local_addr,
        services,
        stop,
        stop_serving,
        shutdown,
        health: health_reporter,
        task,
        grace: Duration::from_secs(config.server.shutdown_grace_secs),
    })
}

fn add_reflection(routes: &mut RoutesBuilder) -> Result<(), BoxError> {
    // Both versions: grpcurl 1.8 speaks only v1alpha, newer clients prefer v1. The health
    // descriptor is registered too, or reflection clients cannot see grpc.health.v1. Each
    // builder adds its own version's descriptor; the other version's is added by hand, so
    // that either one lists and describes both reflection services.
    let v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(invoicer_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(invoicer_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    routes.add_service(v1);
    routes.add_service(v1alpha);
    Ok(())
}

impl RunningServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn services(&self) -> &[ServiceName] {
        &self.services
    }

    /// Drains, then stops: health reports NOT_SERVING, the plugins stop taking new work and
    /// their in-flight work (`Shutdown::begin_work`) may finish while the server still
    /// serves, then the server stops accepting requests and waits for in-flight ones. The
    /// whole drain lasts at most the grace period.
    pub async fn shutdown(self, reason: &str) -> Result<(), BoxError> {
        tracing::info!(
            reason,
            grace_secs = self.grace.as_secs(),
            "server stopping: health reports NOT_SERVING while work drains"
        );
        let deadline = tokio::time::Instant::now() + self.grace;
        self.health
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        for service in &self.services {
            self.health
                .set_service_status(
                    service.grpc_service(),
                    tonic_health::ServingStatus::NotServing,
                )
                .await;
        }
        let _ = self.stop.send(true);
        if tokio::time::timeout_at(deadline, self.shutdown.work_done())
            .await
            .is_err()
        {
            tracing::warn!(
                in_flight = self.shutdown.work_in_flight(),
                grace_secs = self.grace.as_secs(),
                "background work still running after the grace period; stopping it"
            );
        }
        let _ = self.stop_serving.send(true);
        let mut task = self.task;
        match tokio::time::timeout_at(deadline, &mut task).await {
            Ok(joined) => {
                joined??;
                tracing::info!(address = %self.local_addr, "server stopped");
            }
            Err(_) => {
                tracing::warn!(
                    grace_secs = self.grace.as_secs(),
                    "requests still running after the grace period; stopping them"
                );
                task.abort();
            }
        }
        Ok(())
    }

    /// Serves until the task ends by itself, which only happens on a transport error.
    pub async fn wait(&mut self) -> Result<(), BoxError> {
        (&mut self.task).await??;
        Ok(())
    }
}

/// Resolves on Ctrl-C or SIGTERM and returns which one arrived.
pub async fn shutdown_signal() -> &'static str {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
        "interrupt"
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
        "terminate"
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<&'static str>();
    tokio::select! {
        reason = ctrl_c => reason,
        reason = terminate => reason,
    }
}

/// Checks the bearer token (health checks are exempt, for probes) and runs each request in a
/// span whose parent is the caller's trace context.
#[derive(Clone)]
struct RequestLayer {
    auth: Option<Arc<str>>,
    local_addr: SocketAddr,
}

impl<S> tower::Layer<S> for RequestLayer {
    type Service = RequestService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestService {
            inner,
            auth: self.auth.clone(),
            local_addr: self.local_addr,
        }
    }
}

#[derive(Clone)]
struct RequestService<S> {
    inner: S,
    auth: Option<Arc<str>>,
    local_addr: SocketAddr,
}

impl<S> RequestService<S> {
    fn authorized<B>(&self, request: &http::Request<B>) -> bool {
        let Some(token) = &self.auth else { return true };
        if request.uri().path().starts_with(HEALTH_PATH_PREFIX) {
            return true;
        }
        let Some(value) = request.headers().get(http::header::AUTHORIZATION) else {
            return false;
        };
        let expected = format!("Bearer {token}");
        constant_time_eq(value.as_bytes(), expected.as_bytes())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl<S, B> tower::Service<http::Request<B>> for RequestService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_owned();
        if !self.authorized(&request) {
            tracing::warn!(rpc = %path, "request rejected: missing or wrong bearer token");
            let status = tonic::Status::unauthenticated(
                "missing or wrong bearer token: send `authorization: Bearer <server.auth_token>`",
            );
            return Box::pin(async move { Ok(status.into_http()) });
        }

        let span = invoicer_telemetry::grpc::server_span(&request, self.local_addr);

        // Clone-and-swap keeps the instance that poll_ready found ready.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let response_span = span.clone();
        Box::pin(
            async move {
                let response = inner.call(request).await?;
                Ok(invoicer_telemetry::grpc::observe_server_response(
                    response,
                    response_span,
                ))
            }
            .instrument(span),
        )
    }
}
