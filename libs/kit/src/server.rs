//! Server bootstrap: checks the access and TLS settings, binds the listener, starts the chosen
//! plugins, adds health and reflection, and runs until shutdown with a drain deadline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::service::RoutesBuilder;
use tonic::transport::server::TcpIncoming;
use tracing::Instrument;

use crate::auth::{
    self, AccessPolicy, AuthError, Caller, Denial, HEALTH_PATH_PREFIX, Role, Secret,
};
use crate::client::{Channels, LocalServer};
use crate::config::Config;
use crate::plugin::{BoxError, ServiceContext, ServiceName, ServicePlugin, Shutdown};
use crate::tls;

/// A server that accepts requests until `shutdown` is called.
pub struct RunningServer {
    local_addr: SocketAddr,
    health_address: Option<SocketAddr>,
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

/// Checks what `start` checks before it binds: the access and TLS settings (token files,
/// certificate and key), whether they allow the listen address, and the endpoints of the
/// other services. Reads the files those settings name; binds and dials nothing.
pub fn check_config(config: &Config) -> Result<(), BoxError> {
    let security = Security::from_config(config)?;
    security.check_listen_address(config.server.listen)?;
    let local = LocalServer {
        address: config.server.listen,
        tls: security.tls.is_some(),
    };
    Channels::new(config, Some(local), &security.service_token)?;
    Ok(())
}

/// Binds `config.server.listen`, starts `plugins` and serves them, with health and reflection.
/// Fails before binding when the access or TLS settings do not allow the listen address.
pub async fn start(
    config: Arc<Config>,
    plugins: Vec<Arc<dyn ServicePlugin>>,
) -> Result<RunningServer, BoxError> {
    let listen = config.server.listen;
    let security = Security::from_config(&config)?;
    security.check_listen_address(listen)?;
    let listener = TcpListener::bind(listen).await.map_err(|e| {
        format!(
            "cannot listen on {listen}: {e}; stop what uses that address, or set another in \
                 server.listen or INVOICER_LISTEN"
        )
    })?;
    let local_addr = listener.local_addr()?;
    let (stop, shutdown) = Shutdown::new();
    let context = ServiceContext {
        channels: Channels::new(
            &config,
            Some(LocalServer {
                address: local_addr,
                tls: security.tls.is_some(),
            }),
            &security.service_token,
        )?,
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
    let health_address = match config.server.health_listen {
        Some(address) => {
            Some(spawn_health_listener(address, health_service.clone(), shutdown.clone()).await?)
        }
        None => None,
    };
    routes.add_service(health_service);

    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = security.tls.clone() {
        builder = builder.tls_config(tls)?;
    }
    let layer = RequestLayer {
        access: Arc::new(security.access.clone()),
        open: security.open,
        limiter: LoadLimiter::new(config.server.max_concurrent_requests),
        local_addr,
    };
    let (stop_serving, mut stop_signal) = tokio::sync::watch::channel(false);
    let router = builder.layer(layer).add_routes(routes.routes());
    let task = tokio::spawn(
        router.serve_with_incoming_shutdown(incoming(listener), async move {
            // An error means the sender is gone, which also means stop.
            let _ = stop_signal.wait_for(|stop| *stop).await;
        }),
    );

    let names: Vec<&str> = services.iter().map(|s| s.as_str()).collect();
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        address = %local_addr,
        services = %names.join(","),
        tls = security.tls.is_some(),
        health_address = health_address.map(|a| a.to_string()).unwrap_or_default(),
        "server started"
    );
    Ok(RunningServer {
        local_addr,
        health_address,
        services,
        stop,
        stop_serving,
        shutdown,
        health: health_reporter,
        task,
        grace: Duration::from_secs(config.server.shutdown_grace_secs),
    })
}

/// The access and TLS settings of a server, resolved from the config.
struct Security {
    access: AccessPolicy,
    /// No token, certificate role or service token is configured: every caller is admitted,
    /// so the server may listen on loopback only.
    open: bool,
    service_token: Secret,
    tls: Option<tonic::transport::ServerTlsConfig>,
    plaintext_allowed: bool,
}

impl Security {
    fn from_config(config: &Config) -> Result<Security, BoxError> {
        let server = &config.server;
        if server.auth_token.is_some() {
            return Err(AuthError::PlainTokenConfigured.into());
        }
        let configured_service_token = match (&server.service_token, &server.service_token_file) {
            (Some(token), _) => Some(token.clone()),
            (None, Some(path)) => Some(auth::read_token_file("server.service_token_file", path)?),
            (None, None) => None,
        };
        let certificate_roles = server
            .tls
            .as_ref()
            .map(|tls| tls.client_roles.clone())
            .unwrap_or_default();
        let open = server.tokens.is_empty()
            && certificate_roles.is_empty()
            && configured_service_token.is_none();
        // Without a configured one, a token made up for this process lets its own services
        // call each other; other processes do not know it.
        let service_token = match configured_service_token {
            Some(token) => token,
            None => Secret::new(auth::generate_token()?),
        };
        let access = AccessPolicy::new(&server.tokens, &certificate_roles, &service_token)?;
        let tls = server.tls.as_ref().map(tls::server_config).transpose()?;
        Ok(Security {
            access,
            open,
            service_token,
            tls,
            plaintext_allowed: server.plaintext,
        })
    }

    fn check_listen_address(&self, listen: SocketAddr) -> Result<(), BoxError> {
        let loopback = listen.ip().is_loopback();
        if self.open {
            if !loopback {
                return Err(format!(
                    "no access tokens are configured, so the server listens on loopback only and cannot listen on {listen}: add tokens (`invoicer token new --role ROLE` prints an INVOICER_AUTH_TOKENS entry) or listen on 127.0.0.1"
                )
                .into());
            }
            tracing::info!(
                address = %listen,
                "no access tokens are configured: every local caller is admitted and the server listens on loopback only"
            );
        }
        if self.tls.is_none() && !loopback && !self.plaintext_allowed {
            return Err(format!(
                "listening on {listen} without TLS would send tokens and invoices in plain text: configure [server.tls] cert_file and key_file, or set server.plaintext = true when a proxy or mesh encrypts the traffic"
            )
            .into());
        }
        if self.tls.is_none() && !loopback {
            tracing::warn!(address = %listen, "serving plaintext gRPC on a non-loopback address because server.plaintext is set");
        }
        Ok(())
    }
}

/// Returns the accepted connections of `listener`, with Nagle's algorithm off. With it on, a
/// reply that the server writes in two segments waits for the client's delayed ACK, about
/// 40 ms on Linux, and every call between the services took that long.
fn incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// Serves only `grpc.health.v1`, in plaintext and without credentials, on its own listener:
/// probes such as Kubernetes' gRPC probe cannot speak TLS. Returns the bound address.
async fn spawn_health_listener(
    address: SocketAddr,
    health: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
    mut shutdown: Shutdown,
) -> Result<SocketAddr, BoxError> {
    let listener = TcpListener::bind(address)
        .await
        .map_err(|e| format!("cannot listen on server.health_listen {address}: {e}"))?;
    let bound = listener.local_addr()?;
    let server = tonic::transport::Server::builder().add_service(health);
    tokio::spawn(async move {
        let served = server
            .serve_with_incoming_shutdown(
                incoming(listener),
                async move { shutdown.triggered().await },
            )
            .await;
        if let Err(error) = served {
            tracing::error!(%error, address = %bound, "health listener failed");
        }
    });
    Ok(bound)
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

    /// The address of the plaintext health listener, when `server.health_listen` is set.
    pub fn health_address(&self) -> Option<SocketAddr> {
        self.health_address
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

/// Authenticates and authorizes each request, sheds load over the concurrency limit (health
/// checks are exempt from all three, for probes), and runs each request in a span whose
/// parent is the caller's trace context.
#[derive(Clone)]
struct RequestLayer {
    access: Arc<AccessPolicy>,
    open: bool,
    limiter: Option<LoadLimiter>,
    local_addr: SocketAddr,
}

impl<S> tower::Layer<S> for RequestLayer {
    type Service = RequestService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestService {
            inner,
            access: self.access.clone(),
            open: self.open,
            limiter: self.limiter.clone(),
            local_addr: self.local_addr,
        }
    }
}

#[derive(Clone)]
struct RequestService<S> {
    inner: S,
    access: Arc<AccessPolicy>,
    open: bool,
    limiter: Option<LoadLimiter>,
    local_addr: SocketAddr,
}

impl<S> RequestService<S> {
    /// Returns the caller of `request`, or why it is denied. An open server admits a caller
    /// without known credentials as [`Caller::anonymous`], but still recognises the service
    /// token, so that calls between its services are not counted against the load limit.
    fn admit<B>(&self, request: &http::Request<B>, path: &str) -> Result<Caller, Denial> {
        let authorization = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        let certificate_names = tls::peer_certificate_names(request.extensions());
        let identified = self.access.identify(authorization, &certificate_names);
        if self.open {
            return Ok(identified.unwrap_or_else(|_| Caller::anonymous()));
        }
        let caller = identified?;
        AccessPolicy::authorize(path, &caller)?;
        Ok(caller)
    }
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

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let mut permit = None;
        if !path.starts_with(HEALTH_PATH_PREFIX) {
            let caller = match self.admit(&request, &path) {
                Ok(caller) => caller,
                Err(denial) => {
                    log_denial(&path, &denial, tls::peer_address(request.extensions()));
                    let status = denial.into_status();
                    return Box::pin(async move { Ok(status.into_http()) });
                }
            };
            // Calls between services are not counted: they serve requests that already hold
            // a permit, so counting them could shed a batch against itself.
            if let (Some(limiter), false) = (&self.limiter, caller.role == Role::Service) {
                match limiter.try_acquire(&path) {
                    Ok(acquired) => permit = Some(acquired),
                    Err(status) => return Box::pin(async move { Ok(status.into_http()) }),
                }
            }
            request.extensions_mut().insert(caller);
        }

        let span = invoicer_telemetry::grpc::server_span(&request, self.local_addr);

        // Clone-and-swap keeps the instance that poll_ready found ready.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let response_span = span.clone();
        Box::pin(
            async move {
                let response = inner.call(request).await;
                // Held until the handler returns its response; a streamed body is not counted.
                drop(permit);
                Ok(invoicer_telemetry::grpc::observe_server_response(
                    response?,
                    response_span,
                ))
            }
            .instrument(span),
        )
    }
}

fn log_denial(path: &str, denial: &Denial, peer: Option<SocketAddr>) {
    let peer = peer.map(|a| a.to_string()).unwrap_or_default();
    match denial {
        Denial::Unauthenticated(message) => {
            tracing::warn!(rpc = %path, %peer, reason = %message, "request rejected: unauthenticated");
        }
        Denial::PermissionDenied { caller, message } => {
            tracing::warn!(
                rpc = %path,
                %peer,
                caller = %caller.name,
                role = %caller.role,
                reason = %message,
                "request rejected: permission denied"
            );
        }
    }
}

/// The cap on requests handled at once across all connections. A request over the cap is
/// answered with RESOURCE_EXHAUSTED at once instead of waiting, so a flood does not slow
/// every caller down.
#[derive(Clone)]
struct LoadLimiter {
    permits: Arc<tokio::sync::Semaphore>,
    max: usize,
    shed: Arc<std::sync::atomic::AtomicU64>,
}

impl LoadLimiter {
    /// `None` for 0, which means no cap.
    fn new(max: usize) -> Option<LoadLimiter> {
        (max > 0).then(|| LoadLimiter {
            permits: Arc::new(tokio::sync::Semaphore::new(max)),
            max,
            shed: Arc::default(),
        })
    }

    fn try_acquire(&self, path: &str) -> Result<tokio::sync::OwnedSemaphorePermit, tonic::Status> {
        self.permits.clone().try_acquire_owned().map_err(|_| {
            let shed = self.shed.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            // A flood would log every request; the first and then every 1000th is enough.
            if shed == 1 || shed.is_multiple_of(1000) {
                tracing::warn!(rpc = %path, max_concurrent_requests = self.max, shed_total = shed, "request shed: server at its concurrency limit");
            }
            tonic::Status::resource_exhausted(format!(
                "server busy: {} requests are already running (server.max_concurrent_requests); retry with backoff",
                self.max
            ))
        })
    }
}
