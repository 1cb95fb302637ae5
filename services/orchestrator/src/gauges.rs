//! Keeps the deferred-queue gauges current: counts the deferred deliveries at a fixed
//! interval and hands the numbers to the metrics.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use invoicer_kit::Shutdown;

use crate::engine::Engine;

/// How often the deferred queue is counted; one count is two indexed queries.
const REFRESH_INTERVAL: Duration = Duration::from_secs(15);

pub(crate) fn spawn_refresh(engine: Arc<Engine>, mut shutdown: Shutdown) {
    tokio::spawn(async move {
        loop {
            match engine.store.deferred_summary().await {
                Ok((depth, oldest)) => {
                    let age = oldest
                        .and_then(|created| (Utc::now() - created).to_std().ok())
                        .unwrap_or_default();
                    invoicer_telemetry::metrics().set_deferred(depth, age);
                }
                Err(error) => tracing::warn!(%error, "counting deferred deliveries failed"),
            }
            tokio::select! {
                _ = shutdown.triggered() => break,
                _ = tokio::time::sleep(REFRESH_INTERVAL) => {}
            }
        }
    });
}
