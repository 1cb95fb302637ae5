//! Channels to the other services. Every call carries the service token and the caller's trace
//! context, so one invoice's delivery chain is one trace. `https://` endpoints use TLS as
//! `client.tls` sets it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use invoicer_telemetry::grpc::ClientTracing;

use crate::auth::Secret;
use crate::config::{ClientTlsConfig, Config};
use crate::plugin::{BoxError, ServiceName};

/// A channel with a client span per call and the outgoing interceptor applied; generated
/// clients wrap it.
pub type GrpcChannel = InterceptedService<ClientTracing<Channel>, OutgoingInterceptor>;

/// Adds the bearer token to every outgoing request. `ClientTracing` adds the trace context.
#[derive(Clone)]
pub struct OutgoingInterceptor {
    authorization: Option<AsciiMetadataValue>,
}

impl OutgoingInterceptor {
    pub fn new(auth_token: Option<&str>) -> Result<Self, BoxError> {
        let authorization = match auth_token {
            Some(token) => Some(
                MetadataValue::try_from(format!("Bearer {token}"))
                    .map_err(|_| "auth token contains characters not allowed in a header")?,
            ),
            None => None,
        };
        Ok(OutgoingInterceptor { authorization })
    }
}

impl Interceptor for OutgoingInterceptor {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// The server of this process, which serves the services that have no endpoint configured.
#[derive(Debug, Clone, Copy)]
pub struct LocalServer {
    pub address: SocketAddr,
    /// The server uses TLS, so it is dialed with `https://`.
    pub tls: bool,
}

/// Lazily connecting channels, one per service.
#[derive(Clone)]
pub struct Channels {
    channels: Arc<HashMap<ServiceName, ClientTracing<Channel>>>,
    interceptor: OutgoingInterceptor,
}

impl Channels {
    /// Builds a channel for every service: its configured endpoint, or `local` (the server of
    /// this process) when none is configured. Every call sends `service_token`.
    pub fn new(
        config: &Config,
        local: Option<LocalServer>,
        service_token: &Secret,
    ) -> Result<Channels, BoxError> {
        let mut channels = HashMap::new();
        for name in ServiceName::ALL {
            let url = match (config.endpoints.get(name), local) {
                (Some(url), _) => url.to_owned(),
                (None, Some(LocalServer { address, tls: true })) => format!("https://{address}"),
                (
                    None,
                    Some(LocalServer {
                        address,
                        tls: false,
                    }),
                ) => format!("http://{address}"),
                (None, None) => config.client.endpoint.clone(),
            };
            let channel = lazy_channel(&url, None, &config.client.tls)
                .map_err(|e| format!("endpoint of {name}: {e}"))?;
            channels.insert(name, ClientTracing::new(channel, &url));
        }
        let interceptor = OutgoingInterceptor::new(Some(service_token.expose()))?;
        Ok(Channels {
            channels: Arc::new(channels),
            interceptor,
        })
    }

    pub fn get(&self, name: ServiceName) -> GrpcChannel {
        let channel = self.channels[&name].clone();
        InterceptedService::new(channel, self.interceptor.clone())
    }
}

/// Builds a channel that connects on first use and reconnects after failures. `request_timeout`
/// bounds each call; services leave it unset and rely on their callers' deadlines. An
/// `https://` URL uses TLS with `tls`; an `http://` one ignores it.
pub fn lazy_channel(
    url: &str,
    request_timeout: Option<Duration>,
    tls: &ClientTlsConfig,
) -> Result<Channel, BoxError> {
    let mut endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|e| format!("invalid endpoint {url:?}: {e}"))?;
    // The URI parser takes any digits as the port, and the connector then dials the scheme's
    // default port instead of failing.
    let authority = endpoint.uri().authority().map_or("", |a| a.as_str());
    let port = authority
        .rsplit_once(':')
        .filter(|(host, _)| !host.starts_with('[') || host.ends_with(']'))
        .map(|(_, port)| port);
    if let Some(port) = port
        && !port.parse::<u16>().is_ok_and(|port| port > 0)
    {
        return Err(
            format!("invalid endpoint {url:?}: port {port} is not between 1 and 65535").into(),
        );
    }
    endpoint = endpoint
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30));
    if url.starts_with("https://") {
        endpoint = endpoint
            .tls_config(crate::tls::client_config(tls)?)
            .map_err(|e| format!("TLS settings for {url}: {e}"))?;
    }
    if let Some(timeout) = request_timeout {
        endpoint = endpoint.timeout(timeout);
    }
    Ok(endpoint.connect_lazy())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A port past 65535 is an error naming it, not a call to port 80.
    #[tokio::test]
    async fn endpoint_port_out_of_range_rejected() {
        let tls = ClientTlsConfig::default();
        let error = lazy_channel("http://127.0.0.1:99999", None, &tls)
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "invalid endpoint \"http://127.0.0.1:99999\": port 99999 is not between 1 and 65535"
        );
        assert!(lazy_channel("http://127.0.0.1:0", None, &tls).is_err());
        assert!(lazy_channel("http://127.0.0.1:65535", None, &tls).is_ok());
        assert!(lazy_channel("http://127.0.0.1", None, &tls).is_ok());
        assert!(lazy_channel("http://[::1]:50051", None, &tls).is_ok());
        assert!(lazy_channel("http://[::1]", None, &tls).is_ok());
        assert!(lazy_channel("http://[::1]:70000", None, &tls).is_err());
    }
}
