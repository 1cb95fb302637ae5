//! Database triggers that tests install in the orchestrator's database to make one write fail
//! or to add a row beside it, on SQLite and on PostgreSQL.

use anyhow::Result;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend};

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
