//! Tests of the grouped append against real databases: SQLite always, PostgreSQL when
//! `INVOICER_TEST_DATABASE_URL` is set.

use chrono::Utc;
use invoicer_test_db::TestDatabase;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::{Append, ChainTip, Queued, Store, append_all, write_group};
use crate::chain::{self, GENESIS_PREV_HASH};
use crate::entry::{
    Entry, Mailbox, Outcome, RecipientResult, RecipientRole, SendAttempt, Trigger, TriggerKind,
};
use crate::error::Error;

fn attempt(invoice_number: &str, subject: &str) -> SendAttempt {
    let address = format!("ap@{}.example", invoice_number.to_ascii_lowercase());
    SendAttempt {
        invoice_number: invoice_number.to_owned(),
        invoice_revision: 1,
        customer_code: "ALFKI".to_owned(),
        trigger: Trigger {
            kind: TriggerKind::Batch,
            batch_id: "batch-1".to_owned(),
            actor: String::new(),
            reason: String::new(),
            request_id: String::new(),
        },
        delivery_id: format!("delivery-{invoice_number}"),
        from: Mailbox {
            name: "Billing".to_owned(),
            address: "billing@company.example".to_owned(),
        },
        to: vec![Mailbox {
            name: String::new(),
            address: address.clone(),
        }],
        cc: Vec::new(),
        bcc: Vec::new(),
        subject: subject.to_owned(),
        message_id: format!("<{invoice_number}@company.example>"),
        attachment_name: format!("{invoice_number}.pdf"),
        attachment_size: 1_000,
        attachment_sha256: "ab".repeat(32),
        recipients: vec![RecipientResult {
            address,
            role: RecipientRole::To,
            accepted: true,
            reply_code: 250,
            reply_text: "2.1.5 ok".to_owned(),
        }],
        server_reply: "250 2.0.0 queued".to_owned(),
        outcome: Outcome::Sent,
        detail: String::new(),
        trace_id: String::new(),
        destination: "smtp://127.0.0.1:2525".to_owned(),
    }
}

/// Seals `attempt` on `tip` as the service does.
fn seal(attempt: SendAttempt) -> impl Fn(ChainTip) -> Entry + Send + Sync + 'static {
    move |tip| {
        let mut entry = Entry {
            sequence: tip.next_sequence,
            id: Uuid::now_v7(),
            at: Utc::now(),
            attempt: attempt.clone(),
            prev_hash: tip.prev_hash,
            entry_hash: String::new(),
        };
        entry.entry_hash = chain::entry_hash(&entry);
        entry
    }
}

/// Writes one append per attempt as one group and returns the result each caller receives.
async fn write_as_group(store: &Store, attempts: Vec<SendAttempt>) -> Vec<Result<Entry, Error>> {
    let appends = attempts
        .into_iter()
        .map(|attempt| (attempt, None))
        .collect();
    write_keyed_group(store, appends).await
}

/// Writes one append per attempt, each with its idempotency key, as one group and returns the
/// result each caller receives.
async fn write_keyed_group(
    store: &Store,
    appends: Vec<(SendAttempt, Option<&str>)>,
) -> Vec<Result<Entry, Error>> {
    let mut group = Vec::new();
    let mut answers = Vec::new();
    for (attempt, key) in appends {
        let (reply, answer) = oneshot::channel();
        group.push(Queued {
            append: Append {
                seal: Box::new(seal(attempt)),
                idempotency_key: key.map(str::to_owned),
            },
            reply,
        });
        answers.push(answer);
    }
    write_group(store.db.clone(), group).await;
    let mut results = Vec::new();
    for answer in answers {
        results.push(answer.await.expect("write_group replies to every append"));
    }
    results
}

async fn open(database: &TestDatabase) -> Store {
    let url = database.database_url().unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            database.data_dir().join("audit-log.db").display()
        )
    });
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    store
}

fn invoice_numbers(results: &[Result<Entry, Error>]) -> Vec<Option<String>> {
    results
        .iter()
        .map(|result| {
            result
                .as_ref()
                .ok()
                .map(|entry| entry.attempt.invoice_number.clone())
        })
        .collect()
}

/// A group is written as consecutive entries, each linked to the one before, and each caller
/// receives its own entry.
async fn group_continues_the_chain(database: TestDatabase) {
    let store = open(&database).await;
    let first = write_as_group(&store, vec![attempt("INV-1", "Invoice INV-1")]).await;
    let first = first.into_iter().next().unwrap().unwrap();

    let results = write_as_group(
        &store,
        ["INV-2", "INV-3", "INV-4"]
            .iter()
            .map(|number| attempt(number, &format!("Invoice {number}")))
            .collect(),
    )
    .await;

    assert_eq!(
        invoice_numbers(&results),
        [Some("INV-2"), Some("INV-3"), Some("INV-4")].map(|n| n.map(str::to_owned))
    );
    let mut previous = first;
    assert_eq!(previous.prev_hash, GENESIS_PREV_HASH);
    for result in results {
        let entry = result.unwrap();
        assert_eq!(entry.sequence, previous.sequence + 1);
        assert_eq!(entry.prev_hash, previous.entry_hash);
        previous = entry;
    }
    let stored = store.entries_after(0, 10).await.unwrap();
    assert_eq!(stored.len(), 4);
    database.remove().await.unwrap();
}

#[tokio::test]
async fn group_continues_the_chain_on_sqlite() {
    group_continues_the_chain(TestDatabase::sqlite().unwrap()).await;
}

#[tokio::test]
async fn group_continues_the_chain_on_postgres() {
    if let Some(database) = TestDatabase::postgres("group_continues_the_chain")
        .await
        .unwrap()
    {
        group_continues_the_chain(database).await;
    }
}

/// PostgreSQL rejects a NUL character in text, which the gRPC validation keeps out. An entry
/// it rejects in a group fails alone: the others are appended one at a time, in order, with
/// no gap in the chain. SQLite stores the character, so this case runs on PostgreSQL only.
#[tokio::test]
async fn rejected_entry_fails_alone_on_postgres() {
    let Some(database) = TestDatabase::postgres("rejected_entry_fails_alone")
        .await
        .unwrap()
    else {
        return;
    };
    let store = open(&database).await;

    let results = write_as_group(
        &store,
        vec![
            attempt("INV-1", "Invoice INV-1"),
            attempt("INV-2", "Invoice\0INV-2"),
            attempt("INV-3", "Invoice INV-3"),
        ],
    )
    .await;

    assert_eq!(
        invoice_numbers(&results),
        [Some("INV-1"), None, Some("INV-3")].map(|n| n.map(str::to_owned))
    );
    assert!(
        matches!(results[1], Err(Error::Database(_))),
        "{:?}",
        results[1]
    );
    let stored = store.entries_after(0, 10).await.unwrap();
    assert_eq!(stored.len(), 2);
    let first = results[0].as_ref().unwrap();
    let third = results[2].as_ref().unwrap();
    assert_eq!((first.sequence, third.sequence), (1, 2));
    assert_eq!(third.prev_hash, first.entry_hash);
    database.remove().await.unwrap();
}

/// An append sent again with the key of a stored entry returns that entry and appends
/// nothing, alone and inside a group, and two appends with one key in a group get one entry.
/// A stored key sent with another invoice fails that append alone.
async fn repeated_key_appends_nothing(database: TestDatabase) {
    let store = open(&database).await;
    let first = write_keyed_group(&store, vec![(attempt("INV-1", "first"), Some("d-1/1"))]).await;
    let first = first.into_iter().next().unwrap().unwrap();

    let again = write_keyed_group(&store, vec![(attempt("INV-1", "again"), Some("d-1/1"))]).await;
    let again = again.into_iter().next().unwrap().unwrap();
    assert_eq!(again.sequence, first.sequence);
    assert_eq!(again.id, first.id);
    assert_eq!(again.entry_hash, first.entry_hash);
    assert_eq!(again.attempt.subject, "first");

    let group = write_keyed_group(
        &store,
        vec![
            (attempt("INV-2", "second"), Some("d-2/1")),
            (attempt("INV-1", "again"), Some("d-1/1")),
            (attempt("INV-3", "third"), Some("d-3/1")),
            (attempt("INV-3", "third again"), Some("d-3/1")),
            (attempt("INV-4", "no key"), None),
        ],
    )
    .await;
    let group: Vec<Entry> = group.into_iter().map(Result::unwrap).collect();
    let sequences: Vec<u64> = group.iter().map(|entry| entry.sequence).collect();
    assert_eq!(sequences, [2, 1, 3, 3, 4]);
    assert_eq!(group[1].id, first.id);
    assert_eq!(group[3].id, group[2].id);
    assert_eq!(group[3].attempt.subject, "third");

    let stored: Vec<Entry> = store
        .entries_after(0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let subjects: Vec<&str> = stored
        .iter()
        .map(|entry| entry.attempt.subject.as_str())
        .collect();
    assert_eq!(subjects, ["first", "second", "third", "no key"]);
    for pair in stored.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].entry_hash);
    }

    // The key of INV-1's entry, sent with another invoice, fails only that append.
    let reused = write_keyed_group(
        &store,
        vec![
            (attempt("INV-5", "fifth"), Some("d-5/1")),
            (attempt("INV-9", "other"), Some("d-1/1")),
        ],
    )
    .await;
    assert_eq!(reused[0].as_ref().unwrap().sequence, 5);
    match &reused[1] {
        Err(Error::IdempotencyKeyReused { key, sequence, .. }) => {
            assert_eq!(key, "d-1/1");
            assert_eq!(*sequence, 1);
        }
        other => panic!("expected IdempotencyKeyReused, got {other:?}"),
    }
    assert_eq!(store.entries_after(0, 10).await.unwrap().len(), 5);

    // Two appends of one group with one key but other invoices: the second fails.
    let repeated = write_keyed_group(
        &store,
        vec![
            (attempt("INV-6", "sixth"), Some("d-6/1")),
            (attempt("INV-7", "seventh"), Some("d-6/1")),
        ],
    )
    .await;
    assert_eq!(repeated[0].as_ref().unwrap().sequence, 6);
    assert!(
        matches!(repeated[1], Err(Error::IdempotencyKeyReused { .. })),
        "{:?}",
        repeated[1]
    );
    assert_eq!(store.entries_after(0, 10).await.unwrap().len(), 6);

    // An append without a key in such a group is written once.
    let mixed = write_keyed_group(
        &store,
        vec![
            (attempt("INV-8", "eighth"), Some("d-8/1")),
            (attempt("INV-9", "ninth"), Some("d-8/1")),
            (attempt("INV-10", "tenth"), None),
        ],
    )
    .await;
    assert_eq!(mixed[0].as_ref().unwrap().sequence, 7);
    assert!(
        matches!(mixed[1], Err(Error::IdempotencyKeyReused { .. })),
        "{:?}",
        mixed[1]
    );
    assert_eq!(mixed[2].as_ref().unwrap().sequence, 8);
    assert_eq!(store.entries_after(0, 20).await.unwrap().len(), 8);
    database.remove().await.unwrap();
}

/// A group with a stored key is written as one group, not one append at a time: the group's
/// own call returns every entry.
async fn stored_key_keeps_group(database: TestDatabase) {
    let store = open(&database).await;
    let keyed = |number: &str, key: &str| Append {
        seal: Box::new(seal(attempt(number, number))),
        idempotency_key: Some(key.to_owned()),
    };
    let first = keyed("INV-1", "d-1/1");
    append_all(&store.db, &[&first]).await.unwrap();

    let group = [
        keyed("INV-2", "d-2/1"),
        keyed("INV-1", "d-1/1"),
        keyed("INV-3", "d-3/1"),
    ];
    let appends: Vec<&Append> = group.iter().collect();
    let entries = append_all(&store.db, &appends).await.unwrap();
    let sequences: Vec<u64> = entries.iter().map(|entry| entry.sequence).collect();
    assert_eq!(sequences, [2, 1, 3]);
    assert_eq!(entries[2].prev_hash, entries[0].entry_hash);
    database.remove().await.unwrap();
}

#[tokio::test]
async fn stored_key_keeps_group_on_sqlite() {
    stored_key_keeps_group(TestDatabase::sqlite().unwrap()).await;
}

#[tokio::test]
async fn stored_key_keeps_group_on_postgres() {
    if let Some(database) = TestDatabase::postgres("stored_key_keeps_group")
        .await
        .unwrap()
    {
        stored_key_keeps_group(database).await;
    }
}

#[tokio::test]
async fn repeated_key_appends_nothing_on_sqlite() {
    repeated_key_appends_nothing(TestDatabase::sqlite().unwrap()).await;
}

#[tokio::test]
async fn repeated_key_appends_nothing_on_postgres() {
    if let Some(database) = TestDatabase::postgres("repeated_key_appends_nothing")
        .await
        .unwrap()
    {
        repeated_key_appends_nothing(database).await;
    }
}
