//! `invoicer serve`: runs the chosen services until a signal arrives.

use std::process::ExitCode;
use std::sync::Arc;

use invoicer_kit::Config;

use crate::cli::ServeArgs;

pub(crate) async fn run(mut config: Config, args: ServeArgs) -> anyhow::Result<ExitCode> {
    if let Some(services) = args.services {
        config.server.services = services;
    }
    let server = crate::host::start(Arc::new(config))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let reason = invoicer_kit::server::shutdown_signal().await;
    server
        .shutdown(reason)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(ExitCode::SUCCESS)
}
