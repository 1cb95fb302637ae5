//! End-to-end tests: the whole system on loopback with a real SMTP server, on SQLite always
//! and on PostgreSQL when `INVOICER_TEST_DATABASE_URL` is set.

/// Turns `async fn name(database: TestDatabase) -> Result<()>` cases into two tests,
/// `name::on_sqlite` and `name::on_postgres`; the PostgreSQL one prints a skip line and passes
/// when `INVOICER_TEST_DATABASE_URL` is unset.
macro_rules! on_both_databases {
    ($($case:ident),+ $(,)?) => {
        $(
            mod $case {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn on_sqlite() -> anyhow::Result<()> {
                    super::$case(invoicer_test_db::TestDatabase::sqlite()?).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn on_postgres() -> anyhow::Result<()> {
                    let name = concat!(module_path!(), "::", stringify!($case));
                    match invoicer_test_db::TestDatabase::postgres(name).await? {
                        Some(database) => super::$case(database).await,
                        None => Ok(()),
                    }
                }
            }
        )+
    };
}

mod access;
mod bad_input;
mod batch_runs;
mod chinook;
mod config_check;
mod data;
mod delivery_faults;
mod email_log;
mod endpoints;
mod grpc_tools;
mod notifiers;
mod pdf_documents;
mod recipients;
mod replicas;
mod resend;
mod retries;
mod schedule_cli;
mod shutdown;
mod triggers;
mod unknown;
