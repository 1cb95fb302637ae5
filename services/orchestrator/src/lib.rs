//! orchestrator: the nightly batch, deliveries and their frozen PDFs, resends and previews.

mod api;
mod batch;
mod deliver;
mod engine;
mod error;
mod gauges;
mod log;
mod log_backoff;
mod message;
mod model;
mod notifier;
mod outgoing;
mod recipients;
mod resend;
mod retry;
mod schedule;
mod scheduler;
mod store;
mod upstream;

use std::sync::Arc;

use invoicer_kit::{BoxError, Config, ServiceContext, ServiceName, ServicePlugin};
use tonic::service::RoutesBuilder;

use crate::error::OrchestratorError;

pub use schedule::{FireInstant, Schedule, ScheduleError};

/// The orchestrator as a host plugin.
pub struct OrchestratorPlugin;

#[tonic::async_trait]
impl ServicePlugin for OrchestratorPlugin {
    fn name(&self) -> ServiceName {
        ServiceName::Orchestrator
    }

    async fn start(&self, ctx: ServiceContext, routes: &mut RoutesBuilder) -> Result<(), BoxError> {
        let config = ctx.config.clone();
        let url = config.database_url_for(ServiceName::Orchestrator);
        // A new id per process start: a restarted replica does not inherit the leases of its
        // previous life, which expire and are taken over like any dead replica's.
        let replica_id = uuid::Uuid::now_v7().to_string();
        let lease = engine::lease_duration(&config.batch.lease_duration)?;
        let store = store::Store::open(&url, replica_id.clone(), lease).await?;
        let upstream = api::Upstream::new(&ctx.channels);
        let engine = Arc::new(engine::Engine::new(
            config.clone(),
            store,
            upstream,
            ctx.shutdown.clone(),
        )?);
        engine.recover().await?;

        let schedule_config = &config.batch.schedule;
        let schedule = Schedule::new(&schedule_config.cron, config.schedule_timezone())?;
        if schedule_config.enabled {
            scheduler::spawn_scheduler(
                engine.clone(),
                schedule,
                schedule_config.catch_up,
                ctx.shutdown.clone(),
            );
        }
        scheduler::spawn_retry_loop(engine.clone(), ctx.shutdown.clone());
        gauges::spawn_refresh(engine.clone(), ctx.shutdown.clone());
        scheduler::spawn_lease_renewal(engine.clone(), ctx.shutdown.clone());
        scheduler::spawn_drain_report(
            engine.clone(),
            std::time::Duration::from_secs(config.server.shutdown_grace_secs),
            ctx.shutdown.clone(),
        );
        tracing::info!(
            replica_id = %replica_id,
            lease = %humantime::format_duration(lease),
            database = if url.starts_with("postgres") { "postgresql" } else { "sqlite" },
            schedule = %schedule_config.cron,
            timezone = config.schedule_timezone(),
            schedule_enabled = schedule_config.enabled,
            "orchestrator started"
        );

        let demo = config.demo_sender_settings();
        let smtp = config
            .mail
            .smtp_url
            .as_deref()
            .is_some_and(|url| !url.trim().is_empty());
        if !demo.is_empty() && smtp {
            tracing::warn!(
                settings = %demo.join(", "),
                "the emails and PDFs name the demo company: set these before sending to customers"
            );
        }

        api::add_service(routes, engine);
        Ok(())
    }

    /// Checks what `Engine::new` and `start` parse: the lease, the schedule (its expression in
    /// UTC too when the timezone is unknown), the batch and mail settings, and the default
    /// notifier with its templates. Each check runs even after another fails, and the error has
    /// one line per problem. The settings check stops at its own first problem.
    fn check_config(&self, config: &Config) -> Result<(), BoxError> {
        let mut results: Vec<Result<(), OrchestratorError>> =
            vec![engine::lease_duration(&config.batch.lease_duration).map(drop)];
        if let Err(errors) =
            Schedule::parse_reporting_all(&config.batch.schedule.cron, config.schedule_timezone())
        {
            results.extend(errors.into_iter().map(|error| Err(error.into())));
        }
        results.push(engine::Settings::from_config(config).map(drop));
        results.push(notifier::EffectiveNotifier::from_config(&config.notifier).map(drop));
        // The settings parse the lease and the timezone again, so a problem there comes
        // twice and is named once.
        let mut problems: Vec<String> = Vec::new();
        for error in results.into_iter().filter_map(Result::err) {
            let problem = error.to_string();
            if !problems.contains(&problem) {
                problems.push(problem);
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n").into())
        }
    }
}
