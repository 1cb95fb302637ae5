//! Database triggers that tests install in the orchestrator's database to make one write fail
//! or to add a row beside it, on SQLite and on PostgreSQL.

use anyhow::Result;
use invoicer_e2e::System;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend};

/// Connects to the orchestrator's database of `system`, where the tests add their triggers.
pub(crate) async fn orchestrator_database(system: &System) -> Result<DatabaseConnection> {
    let url = system
        .config
        .database_url_for(invoicer_kit::ServiceName::Orchestrator);
    Ok(Database::connect(url.as_str()).await?)
}

/// Creates trigger `name` that runs for each row of `event` (such as `BEFORE INSERT ON
/// or_batch_items`) that matches `when`. PostgreSQL runs `postgres_body` in a PL/pgSQL
/// function, SQLite runs `sqlite_body`.
pub(crate) async fn create_trigger(
    db: &DatabaseConnection,
    name: &str,
    event: &str,
    when: &str,
    postgres_body: &str,
    sqlite_body: &str,
) -> Result<()> {
    let statements = if db.get_database_backend() == DbBackend::Postgres {
        vec![
            format!(
                "CREATE FUNCTION {name}() RETURNS trigger AS $$ BEGIN {postgres_body}; END $$ \
                 LANGUAGE plpgsql"
            ),
            format!(
                "CREATE TRIGGER {name} {event} FOR EACH ROW WHEN ({when}) \
                 EXECUTE FUNCTION {name}()"
            ),
        ]
    } else {
        vec![format!(
            "CREATE TRIGGER {name} {event} WHEN {when} BEGIN {sqlite_body}; END"
        )]
    };
    for statement in statements {
        db.execute_unprepared(&statement).await?;
    }
    Ok(())
}

/// Creates trigger `name` that rejects each write of `event` that matches `when` with the
/// error "rejected by the test".
pub(crate) async fn reject_writes(
    db: &DatabaseConnection,
    name: &str,
    event: &str,
    when: &str,
) -> Result<()> {
    create_trigger(
        db,
        name,
        event,
        when,
        "RAISE EXCEPTION 'rejected by the test'",
        "SELECT RAISE(ABORT, 'rejected by the test')",
    )
    .await
}

/// Drops trigger `name` on `table`, which `create_trigger` created, and on PostgreSQL its
/// function too.
pub(crate) async fn drop_trigger(db: &DatabaseConnection, name: &str, table: &str) -> Result<()> {
    let statements = if db.get_database_backend() == DbBackend::Postgres {
        vec![
            format!("DROP TRIGGER {name} ON {table}"),
            format!("DROP FUNCTION {name}()"),
        ]
    } else {
        vec![format!("DROP TRIGGER {name}")]
    };
    for statement in statements {
        db.execute_unprepared(&statement).await?;
    }
    Ok(())
}
