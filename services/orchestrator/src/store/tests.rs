//! The store's leases and the scheduler's lock on SQLite and, when
//! `INVOICER_TEST_DATABASE_URL` is set, on PostgreSQL.

use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::Utc;
use invoicer_test_db::TestDatabase;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::entities::document;
use super::{ItemPageRequest, Store, StoreError};
use crate::model::{
    Batch, BatchCounts, BatchItem, BatchStatus, BatchTrigger, Delivery, DeliveryState, Document,
    DocumentFacts, Purpose, RequestedResend,
};
use crate::notifier::NotifierUpdate;

/// Opens the database twice, as two replicas with leases of `lease`.
async fn two_replicas(database: &TestDatabase, lease: Duration) -> (Store, Store) {
    let url = database.database_url().unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            database.data_dir().join("orchestrator.db").display()
        )
    });
    let first = Store::open(&url, "replica-a".to_owned(), lease)
        .await
        .unwrap();
    let second = Store::open(&url, "replica-b".to_owned(), lease)
        .await
        .unwrap();
    (first, second)
}

fn deferred_delivery(number: &str) -> Delivery {
    let mut delivery = Delivery::new(
        Delivery::batch_key(number, 1),
        number,
        1,
        "C-1",
        Purpose::Batch,
    );
    delivery.state = DeliveryState::Deferred;
    delivery.next_attempt_at = Some(Utc::now() - chrono::Duration::seconds(1));
    delivery
}

/// Inserts deferred deliveries as replica `store`, which then gives up its leases.
async fn insert_deferred(store: &Store, count: usize) {
    for n in 0..count {
        let delivery = deferred_delivery(&format!("INV-{n}"));
        assert!(store.insert_delivery(&delivery).await.unwrap());
        store.save_delivery(&delivery).await.unwrap();
    }
}

/// Inserts a running manual batch as `store` and returns it.
async fn insert_running_batch(store: &Store) -> Batch {
    let now = Utc::now();
    let batch = Batch {
        id: uuid::Uuid::now_v7().to_string(),
        business_date: now.date_naive(),
        trigger: BatchTrigger::Manual,
        status: BatchStatus::Running,
        cutoff: now,
        window_start: now - chrono::Duration::days(30),
        started_at: now,
        finished_at: None,
        error: None,
    };
    assert!(store.insert_batch(&batch).await.unwrap());
    batch
}

/// Returns every item of the batch, in insertion order.
async fn all_items(store: &Store, batch: &Batch) -> Vec<BatchItem> {
    let page = ItemPageRequest {
        after: 0,
        limit: 10_000,
        attention_only: false,
    };
    let page = store.batch_items_page(&batch.id, &page).await.unwrap();
    assert_eq!(page.next_after, None, "more than one page");
    page.items
}

/// Returns the state of each item of the batch, in insertion order.
async fn item_states(store: &Store, batch: &Batch) -> Vec<DeliveryState> {
    let items = all_items(store, batch).await;
    items.iter().map(|item| item.state).collect()
}

async fn postgres(test: &str) -> Option<TestDatabase> {
    TestDatabase::postgres(test).await.unwrap()
}

/// Two replicas claim due deliveries; on PostgreSQL at the same time, on SQLite (one
/// process at a time) one after the other.
async fn claims_never_overlap(database: TestDatabase) {
    let concurrent = database.is_postgres();
    let (a, b) = two_replicas(&database, Duration::from_secs(60)).await;
    insert_deferred(&a, 20).await;
    let (claimed_a, claimed_b) = if concurrent {
        tokio::join!(
            a.claim_due_deferred(Utc::now(), 12),
            b.claim_due_deferred(Utc::now(), 12)
        )
    } else {
        let first = a.claim_due_deferred(Utc::now(), 12).await;
        (first, b.claim_due_deferred(Utc::now(), 12).await)
    };
    let claimed_a = claimed_a.unwrap();
    let claimed_b = claimed_b.unwrap();
    assert_eq!(claimed_a.len() + claimed_b.len(), 20);
    for delivery in &claimed_a {
        assert!(claimed_b.iter().all(|other| other.id != delivery.id));
        assert_eq!(delivery.state, DeliveryState::Pending);
    }
    // Nothing is left to claim, and a replica cannot write a delivery the other holds.
    assert!(
        a.claim_due_deferred(Utc::now(), 50)
            .await
            .unwrap()
            .is_empty()
    );
    if let Some(held_by_b) = claimed_b.first() {
        let error = a.save_delivery(held_by_b).await.unwrap_err();
        assert!(
            matches!(error, super::StoreError::LeaseLost { .. }),
            "{error}"
        );
    }
    database.remove().await.unwrap();
}

async fn expired_lease_taken_over(database: TestDatabase) {
    let (a, b) = two_replicas(&database, Duration::from_secs(1)).await;
    insert_deferred(&a, 2).await;
    let mut claimed = a.claim_due_deferred(Utc::now(), 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    claimed[0].state = DeliveryState::Submitting;
    a.save_delivery(&claimed[0]).await.unwrap();

    // Live leases are left alone; renewed ones too.
    assert!(b.take_over_abandoned(false).await.unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(a.renew_leases().await.unwrap(), 2);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(b.take_over_abandoned(false).await.unwrap().is_empty());

    // Replica a stops renewing, as a killed process does.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let taken = b.take_over_abandoned(false).await.unwrap();
    assert_eq!(taken.len(), 2);
    let states: Vec<DeliveryState> = taken.iter().map(|d| d.state).collect();
    assert!(states.contains(&DeliveryState::Submitting), "{states:?}");
    assert!(states.contains(&DeliveryState::Pending), "{states:?}");
    // The old owner is fenced off.
    let error = a.save_delivery(&claimed[1]).await.unwrap_err();
    assert!(
        matches!(error, super::StoreError::LeaseLost { .. }),
        "{error}"
    );
    assert!(b.save_delivery(&taken[0]).await.is_ok());
    database.remove().await.unwrap();
}

/// Storing a delivery updates its item in the batch that claimed it, with no further call: a
/// process killed right after an attempt must not leave the item at `pending`, because no
/// later batch lists a settled delivery again.
async fn saved_outcome_updates_batch_item(database: TestDatabase) {
    let (a, b) = two_replicas(&database, Duration::from_secs(60)).await;
    let first = insert_running_batch(&a).await;
    let mut delivery = Delivery::new(
        Delivery::batch_key("INV-1", 1),
        "INV-1",
        1,
        "C-1",
        Purpose::Batch,
    );
    delivery.batch_id = Some(first.id.clone());
    assert!(a.insert_delivery(&delivery).await.unwrap());
    // The batch's planning records the item too. A second call keeps one item.
    a.record_batch_item(&first.id, &delivery).await.unwrap();
    a.record_batch_item(&first.id, &delivery).await.unwrap();
    assert_eq!(item_states(&a, &first).await, [DeliveryState::Pending]);

    delivery.state = DeliveryState::Deferred;
    delivery.next_attempt_at = Some(Utc::now());
    delivery.reason = "451 try again later".to_owned();
    a.save_delivery(&delivery).await.unwrap();
    let items = all_items(&a, &first).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].state, DeliveryState::Deferred);
    assert_eq!(items[0].reason, "451 try again later");

    // A later batch claims it and sends it: the first batch keeps the state the delivery
    // ended in there, and the later one lists it as sent.
    let second = insert_running_batch(&a).await;
    let claimable = [DeliveryState::Deferred];
    assert!(
        a.claim_delivery(&delivery.id, &claimable, Some(&second.id))
            .await
            .unwrap()
    );
    delivery = a.get_delivery(&delivery.id).await.unwrap().unwrap();
    delivery.state = DeliveryState::Sent;
    delivery.attempts = 2;
    delivery.next_attempt_at = None;
    delivery.reason.clear();

    // A replica without the lease writes neither the delivery nor the item.
    let error = b.save_delivery(&delivery).await.unwrap_err();
    assert!(
        matches!(error, super::StoreError::LeaseLost { .. }),
        "{error}"
    );
    let stored = a.get_delivery(&delivery.id).await.unwrap().unwrap();
    assert_eq!(stored.state, DeliveryState::Pending);
    assert!(item_states(&a, &second).await.is_empty());

    a.save_delivery(&delivery).await.unwrap();
    assert_eq!(item_states(&a, &first).await, [DeliveryState::Deferred]);
    assert_eq!(item_states(&a, &second).await, [DeliveryState::Sent]);
    database.remove().await.unwrap();
}

/// Ends every session on the server, as a restart does, then stores outcomes and their email
/// log marks after the connections sat idle for `DATABASE_PING_AFTER_IDLE`. The pool's ping
/// at checkout finds each cut connection, so every write goes through on a new one.
async fn outcomes_stored_after_sessions_end(database: TestDatabase) {
    let (store, _) = two_replicas(&database, Duration::from_secs(60)).await;
    let mut deliveries = Vec::new();
    for n in 0..4 {
        let number = format!("INV-{n}");
        let delivery = Delivery::new(
            Delivery::batch_key(&number, 1),
            &number,
            1,
            "C-1",
            Purpose::Batch,
        );
        assert!(store.insert_delivery(&delivery).await.unwrap());
        deliveries.push(delivery);
    }
    // Reads at the same time leave several connections in the pool.
    let reads = deliveries.iter().map(|d| store.get_delivery(&d.id));
    for read in futures::future::join_all(reads).await {
        assert!(read.unwrap().is_some());
    }

    database.end_sessions().await.unwrap();
    tokio::time::sleep(invoicer_kit::config::DATABASE_PING_AFTER_IDLE + Duration::from_millis(200))
        .await;
    for delivery in &mut deliveries {
        delivery.state = DeliveryState::Sent;
        delivery.attempts = 1;
    }
    let writes = deliveries.iter().map(|d| store.save_delivery(d));
    for written in futures::future::join_all(writes).await {
        written.unwrap();
    }
    let marks = deliveries
        .iter()
        .map(|d| store.mark_logged(&d.id, d.attempts));
    for marked in futures::future::join_all(marks).await {
        marked.unwrap();
    }
    for delivery in &deliveries {
        let stored = store.get_delivery(&delivery.id).await.unwrap().unwrap();
        assert_eq!(
            stored.state,
            DeliveryState::Sent,
            "{}",
            delivery.invoice_number
        );
        assert!(stored.logged, "{}", delivery.invoice_number);
    }
    database.remove().await.unwrap();
}

/// Pages through a batch of seven items, three per page, with and without the filter of the
/// items that need attention, and counts them by state.
async fn batch_items_paged_and_counted(database: TestDatabase) {
    let (store, _) = two_replicas(&database, Duration::from_secs(60)).await;
    let batch = insert_running_batch(&store).await;
    let outcomes = [
        (DeliveryState::Sent, ""),
        (DeliveryState::Deferred, "451 mailbox busy"),
        (DeliveryState::Sent, ""),
        (DeliveryState::Sent, "rejected: gone@buyer.example (550)"),
        (DeliveryState::Skipped, "no recipient with a billing role"),
        (DeliveryState::Sent, ""),
        (DeliveryState::Failed, "554 rejected"),
    ];
    for (n, (state, reason)) in outcomes.iter().enumerate() {
        let mut delivery = Delivery::new(
            Delivery::batch_key(&format!("INV-{n}"), 1),
            &format!("INV-{n}"),
            1,
            "C-1",
            Purpose::Batch,
        );
        delivery.state = *state;
        delivery.reason = (*reason).to_owned();
        assert!(store.insert_delivery(&delivery).await.unwrap());
        store.record_batch_item(&batch.id, &delivery).await.unwrap();
    }

    let mut expected = BatchCounts::default();
    for (state, _) in outcomes {
        expected.add(state);
    }
    assert_eq!(store.batch_counts(&batch.id).await.unwrap(), expected);
    assert_eq!(
        store.batch_counts("no-such-batch").await.unwrap(),
        BatchCounts::default()
    );

    for (attention_only, numbers) in [
        (
            false,
            vec![
                "INV-0", "INV-1", "INV-2", "INV-3", "INV-4", "INV-5", "INV-6",
            ],
        ),
        (true, vec!["INV-1", "INV-3", "INV-4", "INV-6"]),
    ] {
        let mut listed = Vec::new();
        let mut pages = 0;
        let mut request = ItemPageRequest {
            after: 0,
            limit: 3,
            attention_only,
        };
        loop {
            let page = store.batch_items_page(&batch.id, &request).await.unwrap();
            pages += 1;
            assert!(page.items.len() <= 3, "page of {}", page.items.len());
            listed.extend(
                page.items
                    .into_iter()
                    .map(|item| item.delivery.invoice_number),
            );
            match page.next_after {
                Some(after) => request.after = after,
                None => break,
            }
        }
        assert_eq!(listed, numbers, "attention_only {attention_only}");
        assert_eq!(
            pages,
            numbers.len().div_ceil(3),
            "attention_only {attention_only}"
        );
    }
    database.remove().await.unwrap();
}

#[tokio::test]
async fn batch_items_paged_and_counted_on_sqlite() {
    batch_items_paged_and_counted(TestDatabase::sqlite().unwrap()).await;
}

#[tokio::test]
async fn batch_items_paged_and_counted_on_postgres() {
    if let Some(database) = postgres("orchestrator_store_batch_items_paged_and_counted").await {
        batch_items_paged_and_counted(database).await;
    }
}

/// Checks that a chunk's new deliveries go in with their batch items in one transaction. A delivery whose
/// key another replica inserted first is left to it and gets no item in this batch.
async fn planned_deliveries_inserted_once(database: TestDatabase) {
    let (a, b) = two_replicas(&database, Duration::from_secs(60)).await;
    let batch = insert_running_batch(&a).await;
    let new_delivery = |number: &str| {
        Delivery::new(
            Delivery::batch_key(number, 1),
            number,
            1,
            "C-1",
            Purpose::Batch,
        )
    };
    let other = new_delivery("INV-1");
    assert!(b.insert_delivery(&other).await.unwrap());

    let planned = [new_delivery("INV-1"), new_delivery("INV-2")];
    let inserted = a.insert_planned(&batch.id, &planned).await.unwrap();

    assert_eq!(inserted, [false, true]);
    let items = all_items(&a, &batch).await;
    let numbers: Vec<&str> = items
        .iter()
        .map(|item| item.delivery.invoice_number.as_str())
        .collect();
    assert_eq!(numbers, ["INV-2"]);
    assert_eq!(items[0].state, DeliveryState::Pending);
    assert!(a.get_delivery(&planned[0].id).await.unwrap().is_none());
    assert!(a.get_delivery(&other.id).await.unwrap().is_some());
    assert!(a.get_delivery(&planned[1].id).await.unwrap().is_some());

    // A chunk larger than one insert statement's rows, with keys taken in two of its parts.
    let numbers: Vec<String> = (100..350).map(|n| format!("INV-{n}")).collect();
    for taken_number in ["INV-150", "INV-301"] {
        assert!(
            b.insert_delivery(&new_delivery(taken_number))
                .await
                .unwrap()
        );
    }
    let planned: Vec<Delivery> = numbers.iter().map(|number| new_delivery(number)).collect();
    let inserted = a.insert_planned(&batch.id, &planned).await.unwrap();

    let skipped: Vec<&str> = numbers
        .iter()
        .zip(&inserted)
        .filter(|(_, inserted)| !**inserted)
        .map(|(number, _)| number.as_str())
        .collect();
    assert_eq!(skipped, ["INV-150", "INV-301"]);
    let items = all_items(&a, &batch).await;
    assert_eq!(items.len(), 1 + 248);
    assert!(
        items
            .iter()
            .all(|item| item.state == DeliveryState::Pending)
    );
    assert!(
        !items
            .iter()
            .any(|item| item.delivery.invoice_number == "INV-150")
    );
    database.remove().await.unwrap();
}

fn rendered_document(number: &str, content: &[u8]) -> Document {
    Document {
        invoice_number: number.to_owned(),
        invoice_revision: 1,
        sha256: format!("sha-of-{}", String::from_utf8_lossy(content)),
        file_name: format!("{number}.pdf"),
        page_count: 1,
        content: content.to_vec(),
        facts: Some(Box::new(DocumentFacts {
            kind: "invoice".to_owned(),
            issued_date: chrono::NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
            due_date: "2026-03-31".to_owned(),
            currency: "EUR".to_owned(),
            total: format!("{}.00", content.len()),
            po_number: "PO-7".to_owned(),
        })),
    }
}

/// Freezing a first render stores the PDF and the delivery's `submitting` state in one
/// transaction. A later render of the same revision is dropped for the frozen one, and a
/// replica without the delivery's lease stores neither.
async fn first_render_frozen_with_delivery(database: TestDatabase) {
    let (a, b) = two_replicas(&database, Duration::from_secs(60)).await;
    let new_delivery =
        |key: &str, number: &str| Delivery::new(key.to_owned(), number, 1, "C-1", Purpose::Batch);
    let mut first = new_delivery("INV-1/first", "INV-1");
    assert!(a.insert_delivery(&first).await.unwrap());
    first.state = DeliveryState::Submitting;
    let frozen = a
        .freeze_rendered(rendered_document("INV-1", b"first"), &mut first)
        .await
        .unwrap();
    assert_eq!(frozen.content, b"first");
    let first_facts = rendered_document("INV-1", b"first").facts;
    assert_eq!(
        a.document("INV-1", 1).await.unwrap().unwrap().facts,
        first_facts
    );
    assert_eq!(
        a.document_facts("INV-1", 1).await.unwrap(),
        Some(first_facts.clone().map(|facts| *facts))
    );
    assert_eq!(a.document_facts("INV-1", 2).await.unwrap(), None);
    let stored = a.get_delivery(&first.id).await.unwrap().unwrap();
    assert_eq!(stored.state, DeliveryState::Submitting);
    assert_eq!(stored.pdf_sha256, "sha-of-first");
    assert_eq!(stored.attachment_name, "INV-1.pdf");

    // Another replica rendered the same revision a moment later: its bytes are dropped.
    let mut second = new_delivery("INV-1/second", "INV-1");
    assert!(b.insert_delivery(&second).await.unwrap());
    second.state = DeliveryState::Submitting;
    let frozen = b
        .freeze_rendered(rendered_document("INV-1", b"second"), &mut second)
        .await
        .unwrap();
    assert_eq!(frozen.content, b"first");
    assert_eq!(frozen.facts, first_facts);
    assert_eq!(second.pdf_sha256, "sha-of-first");
    let stored = b.get_delivery(&second.id).await.unwrap().unwrap();
    assert_eq!(stored.pdf_sha256, "sha-of-first");
    assert_eq!(stored.state, DeliveryState::Submitting);

    // A delivery that settles without a new attempt (every recipient accepted it before)
    // gives up its lease in the same write, and still gets the frozen document.
    let mut settled = new_delivery("INV-1/settled", "INV-1");
    assert!(b.insert_delivery(&settled).await.unwrap());
    settled.state = DeliveryState::Sent;
    let frozen = b
        .freeze_rendered(rendered_document("INV-1", b"third"), &mut settled)
        .await
        .unwrap();
    assert_eq!(frozen.content, b"first");
    let stored = b.get_delivery(&settled.id).await.unwrap().unwrap();
    assert_eq!(stored.state, DeliveryState::Sent);
    assert_eq!(stored.pdf_sha256, "sha-of-first");

    // Replica b does not hold this delivery's lease, so the whole write is rolled back.
    let mut leased_to_a = new_delivery("INV-2/a", "INV-2");
    assert!(a.insert_delivery(&leased_to_a).await.unwrap());
    leased_to_a.state = DeliveryState::Submitting;
    let error = b
        .freeze_rendered(rendered_document("INV-2", b"other"), &mut leased_to_a)
        .await
        .unwrap_err();
    assert!(
        matches!(error, super::StoreError::LeaseLost { .. }),
        "{error}"
    );
    assert!(a.document("INV-2", 1).await.unwrap().is_none());
    let stored = a.get_delivery(&leased_to_a.id).await.unwrap().unwrap();
    assert_eq!(stored.state, DeliveryState::Pending);

    // A document frozen before facts were kept has none, and one whose facts no longer
    // parse is reported as corrupt, not read as having none.
    let mut without_facts = new_delivery("INV-3/1", "INV-3");
    assert!(a.insert_delivery(&without_facts).await.unwrap());
    without_facts.state = DeliveryState::Submitting;
    let document = Document {
        facts: None,
        ..rendered_document("INV-3", b"older")
    };
    a.freeze_rendered(document, &mut without_facts)
        .await
        .unwrap();
    assert_eq!(a.document("INV-3", 1).await.unwrap().unwrap().facts, None);
    assert_eq!(a.document_facts("INV-3", 1).await.unwrap(), Some(None));
    document::Entity::update_many()
        .col_expr(document::Column::FactsJson, Expr::value("{\"kind\": 1}"))
        .filter(document::Column::InvoiceNumber.eq("INV-3"))
        .exec(&a.db)
        .await
        .unwrap();
    let error = a.document_facts("INV-3", 1).await.unwrap_err();
    assert!(error.to_string().contains("INV-3 revision 1"), "{error}");
    database.remove().await.unwrap();
}

/// The chunk queries of planning return, per revision or customer, what the single queries
/// return: only batch deliveries, only the requested revisions, oldest first, and only the
/// requested customers' notifiers.
async fn chunk_queries_match_single_ones(database: TestDatabase) {
    let (store, _) = two_replicas(&database, Duration::from_secs(60)).await;
    // A second apart, so that "oldest first" gives one order.
    let started = Utc::now() - chrono::Duration::minutes(1);
    let mut created = 0;
    let mut new_delivery = |key: &str, number: &str, revision: u32, purpose: Purpose| {
        let mut delivery = Delivery::new(key.to_owned(), number, revision, "C-1", purpose);
        delivery.created_at = started + chrono::Duration::seconds(created);
        created += 1;
        delivery
    };
    let first = new_delivery("INV-1/1", "INV-1", 1, Purpose::Batch);
    let split = new_delivery("INV-1/1/to", "INV-1", 1, Purpose::Batch);
    let newer_revision = new_delivery("INV-1/2", "INV-1", 2, Purpose::Batch);
    let other = new_delivery("INV-2/1", "INV-2", 1, Purpose::Batch);
    let not_requested = new_delivery("INV-3/1", "INV-3", 1, Purpose::Batch);
    let resend = new_delivery("resend-1", "INV-2", 1, Purpose::Resend);
    for delivery in [
        &first,
        &split,
        &newer_revision,
        &other,
        &not_requested,
        &resend,
    ] {
        assert!(store.insert_delivery(delivery).await.unwrap());
    }
    let revisions = [("INV-1", 1), ("INV-2", 1), ("INV-4", 1)];

    let found = store.batch_deliveries_of(&revisions).await.unwrap();

    let ids = |deliveries: &[Delivery]| -> Vec<String> {
        deliveries
            .iter()
            .map(|delivery| delivery.id.clone())
            .collect()
    };
    assert_eq!(found.len(), 2, "{:?}", found.keys());
    for (number, revision) in [("INV-1", 1), ("INV-2", 1)] {
        let single = store.batch_deliveries(number, revision).await.unwrap();
        let key = (number.to_owned(), revision);
        assert_eq!(
            ids(&found[&key]),
            ids(&single),
            "{number} revision {revision}"
        );
    }
    assert_eq!(
        ids(&found[&("INV-1".to_owned(), 1)]),
        [first.id.clone(), split.id]
    );
    assert!(store.batch_deliveries_of(&[]).await.unwrap().is_empty());

    let mut rendering = first.clone();
    store
        .freeze_rendered(rendered_document("INV-1", b"pdf"), &mut rendering)
        .await
        .unwrap();
    let frozen = store
        .frozen_revisions(&[("INV-1", 1), ("INV-1", 2), ("INV-2", 1)])
        .await
        .unwrap();
    assert_eq!(frozen.len(), 1, "{frozen:?}");
    assert!(frozen.contains(&("INV-1".to_owned(), 1)));
    assert!(store.frozen_revisions(&[]).await.unwrap().is_empty());

    for code in ["C-1", "C-2"] {
        let update = NotifierUpdate {
            enabled: Some(false),
            ..NotifierUpdate::default()
        };
        let notifier = update.into_notifier(code, "test", Utc::now()).unwrap();
        store.update_notifier(&notifier, "test").await.unwrap();
    }
    let own = store.notifiers_of(&["C-1", "C-3"]).await.unwrap();
    assert_eq!(own.len(), 1, "{own:?}");
    assert_eq!(Some(&own[0]), store.notifier("C-1").await.unwrap().as_ref());
    assert!(store.notifiers_of(&[]).await.unwrap().is_empty());
    database.remove().await.unwrap();
}

/// Each replica lists the in-flight deliveries leased to it and no other's, and a write whose
/// caller stopped waiting is stored once `flush_writes` returns.
async fn leased_in_flight_lists_own_deliveries(database: TestDatabase) {
    let (a, b) = two_replicas(&database, Duration::from_secs(60)).await;
    let new_delivery = |number: &str| {
        Delivery::new(
            Delivery::batch_key(number, 1),
            number,
            1,
            "C-1",
            Purpose::Batch,
        )
    };
    let mut first = new_delivery("INV-A1");
    let second = new_delivery("INV-A2");
    let other = new_delivery("INV-B");
    for (store, delivery) in [(&a, &first), (&a, &second), (&b, &other)] {
        assert!(store.insert_delivery(delivery).await.unwrap());
    }
    let numbers = |deliveries: Vec<Delivery>| -> Vec<String> {
        deliveries.into_iter().map(|d| d.invoice_number).collect()
    };
    assert_eq!(
        numbers(a.leased_in_flight().await.unwrap()),
        ["INV-A1", "INV-A2"]
    );
    assert_eq!(numbers(b.leased_in_flight().await.unwrap()), ["INV-B"]);

    // The caller of this write goes away once it is queued.
    first.state = DeliveryState::Sent;
    first.attempts = 1;
    let mut save = Box::pin(a.save_delivery(&first));
    assert!(futures::poll!(&mut save).is_pending());
    drop(save);
    a.flush_writes().await.unwrap();
    let stored = a.get_delivery(&first.id).await.unwrap().unwrap();
    assert_eq!(stored.state, DeliveryState::Sent);
    assert_eq!(numbers(a.leased_in_flight().await.unwrap()), ["INV-A2"]);
    database.remove().await.unwrap();
}

#[tokio::test]
async fn leased_in_flight_lists_own_deliveries_on_sqlite() {
    leased_in_flight_lists_own_deliveries(TestDatabase::sqlite().unwrap()).await;
}

#[tokio::test]
async fn leased_in_flight_lists_own_deliveries_on_postgres() {
    if let Some(database) = postgres("orchestrator_store_leased_in_flight").await {
        leased_in_flight_lists_own_deliveries(database).await;
    }
}

#[tokio::test]
async fn chunk_queries_match_single_ones_on_sqlite() {
    chunk_queries_match_single_ones(TestDatabase::sqlite().unwrap()).await;
}

#[tokio::test]
async fn chunk_queries_match_single_ones_on_postgres() {
    if let Some(database) = postgres("orchestrator_store_chunk_queries").await {
        chunk_queries_match_single_ones(database).await;
    }
}

#[tokio::test]
async fn first_render_frozen_with_delivery_on_sqlite() {
    first_render_frozen_with_delivery(TestDatabase::sqlite().unwrap()).await;
}

#[tokio::test]
async fn first_render_frozen_with_delivery_on_postgres() {
    if let Some(database) = postgres("orchestrator_store_first_render_frozen").await {
        first_render_frozen_with_delivery(database).await;
    }
}

#[tokio::test]
async fn planned_deliveries_inserted_once_on_sqlite() {
    planned_deliveries_inserted_once(TestDatabase::sqlite().unwrap()).await;
}

#[tokio::test]
async fn planned_deliveries_inserted_once_on_postgres() {
    if let Some(database) = postgres("orchestrator_store_planned_deliveries_inserted_once").await {
        planned_deliveries_inserted_once(database).await;
    }
}

#[tokio::test]
async fn saved_outcome_updates_batch_item_on_sqlite() {
    saved_outcome_updates_batch_item(TestDatabase::sqlite().unwrap()).await;
}

#[tokio::test]
async fn saved_outcome_updates_batch_item_on_postgres() {
    if let Some(database) = postgres("orchestrator_store_saved_outcome_updates_batch_item").await {
        saved_outcome_updates_batch_item(database).await;
    }
}

#[tokio::test]
async fn outcomes_stored_after_sessions_end_on_postgres() {
    if let Some(database) = postgres("orchestrator_store_outcomes_after_sessions_end").await {
        outcomes_stored_after_sessions_end(database).await;
    }
}

/// A mark for an earlier attempt, such as one another replica's catch-up round appended,
/// leaves the delivery's later attempt unlogged, because that outcome is not in the log yet.
async fn logged_mark_names_attempt(database: TestDatabase) {
    let (a, _b) = two_replicas(&database, Duration::from_secs(60)).await;
    let mut delivery = deferred_delivery("INV-1");
    assert!(a.insert_delivery(&delivery).await.unwrap());
    delivery.state = DeliveryState::Sent;
    delivery.attempts = 2;
    a.save_delivery(&delivery).await.unwrap();
    let unlogged = |store: Store| async move {
        let found = store.unlogged_deliveries(None, 10).await.unwrap();
        found.into_iter().map(|d| d.attempts).collect::<Vec<u32>>()
    };

    a.mark_logged(&delivery.id, 1).await.unwrap();
    assert_eq!(unlogged(a.clone()).await, [2]);
    a.mark_logged(&delivery.id, 2).await.unwrap();
    assert!(unlogged(a.clone()).await.is_empty());
    database.remove().await.unwrap();
}

#[tokio::test]
async fn logged_mark_names_attempt_on_sqlite() {
    logged_mark_names_attempt(TestDatabase::sqlite().unwrap()).await;
}

#[tokio::test]
async fn logged_mark_names_attempt_on_postgres() {
    if let Some(database) = postgres("logged_mark_names_attempt").await {
        logged_mark_names_attempt(database).await;
    }
}

/// Checks that a resend's requested revision and addresses come back as stored and that a
/// batch delivery has none. A second delivery with the same request id is rejected even under
/// another key.
async fn resend_request_round_trip(database: TestDatabase) {
    let (store, _other) = two_replicas(&database, Duration::from_secs(60)).await;
    let resend = |revision: u32| {
        let mut delivery = Delivery::new(
            Delivery::resend_key("INV-1", revision, "ticket-1"),
            "INV-1",
            revision,
            "C-1",
            Purpose::Resend,
        );
        delivery.request_id = Some("ticket-1".to_owned());
        delivery.requested = Some(RequestedResend {
            revision: 0,
            to: vec!["copy@elsewhere.example".to_owned()],
            cc: Vec::new(),
            bcc: Vec::new(),
        });
        delivery
    };
    let first = resend(1);
    assert!(store.insert_delivery(&first).await.unwrap());
    let stored = store
        .delivery_by_request_id("ticket-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.requested, first.requested);

    let batch = deferred_delivery("INV-2");
    assert!(store.insert_delivery(&batch).await.unwrap());
    let stored = store.get_delivery(&batch.id).await.unwrap().unwrap();
    assert_eq!(stored.requested, None);

    assert!(store.insert_delivery(&resend(2)).await.is_err());
    database.remove().await.unwrap();
}

#[tokio::test]
async fn resend_request_round_trip_on_sqlite() {
    resend_request_round_trip(TestDatabase::sqlite().unwrap()).await;
}

#[tokio::test]
async fn resend_request_round_trip_on_postgres() {
    if let Some(database) = postgres("resend_request_round_trip").await {
        resend_request_round_trip(database).await;
    }
}

/// Unlogged outcomes come in pages in the order of their ids, each after the id where the
/// last one ended, so the log catch-up can go on after a page that audit-log rejected.
async fn unlogged_pages_follow_ids(database: TestDatabase) {
    let (store, _other) = two_replicas(&database, Duration::from_secs(60)).await;
    let mut ids = Vec::new();
    for number in ["INV-1", "INV-2", "INV-3", "INV-4", "INV-5"] {
        let mut delivery = deferred_delivery(number);
        delivery.attempts = 1;
        assert!(store.insert_delivery(&delivery).await.unwrap());
        ids.push(delivery.id);
    }
    let logged = ids.remove(2);
    store.mark_logged(&logged, 1).await.unwrap();
    ids.sort();
    let page = |after: Option<String>| {
        let store = store.clone();
        async move {
            let found = store
                .unlogged_deliveries(after.as_deref(), 2)
                .await
                .unwrap();
            found.into_iter().map(|d| d.id).collect::<Vec<String>>()
        }
    };

    assert_eq!(page(None).await, ids[..2]);
    assert_eq!(page(Some(ids[1].clone())).await, ids[2..]);
    assert!(page(Some(ids[3].clone())).await.is_empty());
    database.remove().await.unwrap();
}

/// A revision corrects a sent invoice only when an earlier revision was sent: a deferred one
/// does not count, nor does the revision itself.
async fn only_sent_earlier_revision_corrects(database: TestDatabase) {
    let (store, _other) = two_replicas(&database, Duration::from_secs(60)).await;
    let mut sent = deferred_delivery("INV-1");
    sent.state = DeliveryState::Sent;
    assert!(store.insert_delivery(&sent).await.unwrap());
    assert!(
        store
            .insert_delivery(&deferred_delivery("INV-2"))
            .await
            .unwrap()
    );

    assert!(store.sent_before_revision("INV-1", 2).await.unwrap());
    assert!(!store.sent_before_revision("INV-1", 1).await.unwrap());
    assert!(!store.sent_before_revision("INV-2", 2).await.unwrap());
    assert!(!store.sent_before_revision("INV-3", 2).await.unwrap());
    database.remove().await.unwrap();
}

#[tokio::test]
async fn only_sent_earlier_revision_corrects_on_sqlite() {
    only_sent_earlier_revision_corrects(TestDatabase::sqlite().unwrap()).await;
}

#[tokio::test]
async fn only_sent_earlier_revision_corrects_on_postgres() {
    if let Some(database) = postgres("orchestrator_store_sent_before_revision").await {
        only_sent_earlier_revision_corrects(database).await;
    }
}

#[tokio::test]
async fn unlogged_pages_follow_ids_on_sqlite() {
    unlogged_pages_follow_ids(TestDatabase::sqlite().unwrap()).await;
}

#[tokio::test]
async fn unlogged_pages_follow_ids_on_postgres() {
    if let Some(database) = postgres("orchestrator_store_unlogged_pages").await {
        unlogged_pages_follow_ids(database).await;
    }
}

#[tokio::test]
async fn claims_never_overlap_on_sqlite() {
    claims_never_overlap(TestDatabase::sqlite().unwrap()).await;
}

#[tokio::test]
async fn claims_never_overlap_on_postgres() {
    if let Some(database) = postgres("orchestrator_store_claims_never_overlap").await {
        claims_never_overlap(database).await;
    }
}

#[tokio::test]
async fn expired_lease_taken_over_on_sqlite() {
    expired_lease_taken_over(TestDatabase::sqlite().unwrap()).await;
}

#[tokio::test]
async fn expired_lease_taken_over_on_postgres() {
    if let Some(database) = postgres("orchestrator_store_expired_lease_taken_over").await {
        expired_lease_taken_over(database).await;
    }
}

#[tokio::test]
async fn scheduler_lock_held_by_one_replica() {
    let Some(database) = postgres("orchestrator_store_scheduler_lock").await else {
        return;
    };
    let (a, b) = two_replicas(&database, Duration::from_secs(60)).await;
    let mut lock = a.try_lead().await.unwrap().expect("first replica leads");
    assert!(lock.is_held().await);
    assert!(b.try_lead().await.unwrap().is_none(), "two leaders");
    assert!(
        a.try_lead().await.unwrap().is_none(),
        "a second lock of one replica"
    );
    // The lock goes with its connection, as when the leader's process dies.
    drop(lock);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if b.try_lead().await.unwrap().is_some() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "lock never released");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    database.remove().await.unwrap();
}

#[tokio::test]
async fn sqlite_process_always_leads() {
    let database = TestDatabase::sqlite().unwrap();
    let (a, _) = two_replicas(&database, Duration::from_secs(60)).await;
    let mut lock = a.try_lead().await.unwrap().expect("SQLite leads");
    assert!(lock.is_held().await);
}

/// On PostgreSQL the column of the frozen PDFs is set to lz4, and a PDF is stored compressed
/// with it, not with the slower default pglz.
#[tokio::test]
async fn frozen_pdf_compressed_with_lz4_on_postgres() {
    use sea_orm::{ConnectionTrait, Statement};

    let Some(database) = postgres("orchestrator_store_frozen_pdf_lz4").await else {
        return;
    };
    let (store, _) = two_replicas(&database, Duration::from_secs(60)).await;
    let query_text = |sql: &'static str| {
        let db = &store.db;
        async move {
            let row = db
                .query_one_raw(Statement::from_string(sea_orm::DbBackend::Postgres, sql))
                .await
                .unwrap()
                .expect("one row");
            row.try_get::<Option<String>>("", "value").unwrap()
        }
    };
    // The column's own setting, whatever the server's default_toast_compression.
    let column = query_text(
        "SELECT attcompression::text AS value FROM pg_attribute \
         WHERE attrelid = 'or_documents'::regclass AND attname = 'content'",
    )
    .await;
    assert_eq!(column.as_deref(), Some("l"));

    let mut delivery = Delivery::new("INV-1/lz4".to_owned(), "INV-1", 1, "C-1", Purpose::Batch);
    assert!(store.insert_delivery(&delivery).await.unwrap());
    delivery.state = DeliveryState::Submitting;
    // Above PostgreSQL's 2 kB threshold and compressible, so the server compresses it.
    let document = Document {
        content: b"%PDF-1.7 BT /F1 12 Tf (Invoice INV-1) Tj ET\n".repeat(200),
        ..rendered_document("INV-1", b"lz4")
    };
    store
        .freeze_rendered(document, &mut delivery)
        .await
        .unwrap();
    let stored =
        query_text("SELECT pg_column_compression(content) AS value FROM or_documents").await;
    assert_eq!(stored.as_deref(), Some("lz4"));
    drop(store);
    database.remove().await.unwrap();
}

/// Runs `writes` on replica `a` as one group of its committing task: a first write, of
/// `blocker`, waits for a lock that a transaction of replica `b` has taken, while the others
/// queue behind it. Returns the blocker's result and the others' in order.
async fn write_as_group(
    a: &Store,
    b: &Store,
    blocker: &Delivery,
    writes: Vec<futures::future::BoxFuture<'static, Result<(), StoreError>>>,
) -> (Result<(), StoreError>, Vec<Result<(), StoreError>>) {
    use sea_orm::{ConnectionTrait, TransactionTrait};

    let counts = a.commit.as_ref().unwrap().counts.clone();
    let queue = a.commit.clone().unwrap();
    let received = counts.received.load(Ordering::Relaxed);
    let hold = b.db.begin().await.unwrap();
    hold.execute_unprepared(&format!(
        "UPDATE or_deliveries SET logged = logged WHERE id = '{}'",
        blocker.id
    ))
    .await
    .unwrap();
    let first = tokio::spawn({
        let a = a.clone();
        let blocker = blocker.clone();
        async move { a.save_delivery(&blocker).await }
    });
    wait_for(|| counts.received.load(Ordering::Relaxed) == received + 1).await;
    let count = writes.len();
    // One at a time, so the writes queue in the order given.
    let mut queued = Vec::with_capacity(count);
    for write in writes {
        queued.push(tokio::spawn(write));
        let waiting = queued.len();
        wait_for(|| queue.queued() == waiting).await;
    }
    hold.rollback().await.unwrap();
    let first = first.await.unwrap();
    let mut results = Vec::new();
    for write in queued {
        results.push(write.await.unwrap());
    }
    assert_eq!(
        counts.received.load(Ordering::Relaxed),
        received + 1 + count as u64
    );
    (first, results)
}

/// Returns a write of `delivery` for `write_as_group`.
fn queued_save(
    store: &Store,
    delivery: Delivery,
) -> futures::future::BoxFuture<'static, Result<(), StoreError>> {
    let store = store.clone();
    Box::pin(async move { store.save_delivery(&delivery).await })
}

/// Returns a freeze of a rendered PDF with `delivery` for `write_as_group`.
fn queued_freeze(
    store: &Store,
    mut delivery: Delivery,
) -> futures::future::BoxFuture<'static, Result<(), StoreError>> {
    let store = store.clone();
    Box::pin(async move {
        let document = rendered_document(&delivery.invoice_number, b"pdf");
        store
            .freeze_rendered(document, &mut delivery)
            .await
            .map(drop)
    })
}

async fn wait_for(done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Writes of several deliveries that queue up are committed in one transaction. A write for
/// a delivery leased to another replica fails alone. A write the database rejects rolls its
/// group back, and the other writes of the group are then committed one at a time.
async fn queued_writes_committed_as_one_group(database: TestDatabase) {
    use sea_orm::{ConnectionTrait, TransactionTrait};

    let (a, b) = two_replicas(&database, Duration::from_secs(60)).await;
    let mut ours = Vec::new();
    for n in 0..6 {
        let number = format!("INV-{n}");
        let delivery = Delivery::new(format!("{number}/1"), &number, 1, "C-1", Purpose::Batch);
        assert!(a.insert_delivery(&delivery).await.unwrap());
        ours.push(delivery);
    }
    let theirs = Delivery::new("INV-9/1".to_owned(), "INV-9", 1, "C-1", Purpose::Batch);
    assert!(b.insert_delivery(&theirs).await.unwrap());
    let counts = a.commit.as_ref().unwrap().counts.clone();
    let with_state = |delivery: &Delivery, state: DeliveryState| {
        let mut delivery = delivery.clone();
        delivery.state = state;
        delivery
    };
    let save = |delivery: Delivery| queued_save(&a, delivery);
    let freeze = |delivery: Delivery| queued_freeze(&a, delivery);
    let mark_logged = |delivery: &Delivery| -> futures::future::BoxFuture<'static, _> {
        let (a, id, attempt) = (a.clone(), delivery.id.clone(), delivery.attempts);
        Box::pin(async move { a.mark_logged(&id, attempt).await })
    };

    let commits = counts.commits.load(Ordering::Relaxed);
    let (first, results) = write_as_group(
        &a,
        &b,
        &ours[0],
        vec![
            save(with_state(&ours[1], DeliveryState::Sent)),
            save(with_state(&theirs, DeliveryState::Sent)),
            freeze(with_state(&ours[2], DeliveryState::Submitting)),
            mark_logged(&ours[3]),
        ],
    )
    .await;
    first.unwrap();
    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert!(
        matches!(&results[1], Err(StoreError::LeaseLost { id }) if *id == theirs.id),
        "{:?}",
        results[1]
    );
    assert!(results[2].is_ok(), "{:?}", results[2]);
    assert!(results[3].is_ok(), "{:?}", results[3]);
    // The blocker alone, then the four others together.
    assert_eq!(counts.commits.load(Ordering::Relaxed), commits + 2);
    assert_eq!(counts.retried_groups.load(Ordering::Relaxed), 0);
    let stored = |id: String| {
        let a = a.clone();
        async move { a.get_delivery(&id).await.unwrap().unwrap() }
    };
    assert_eq!(stored(ours[1].id.clone()).await.state, DeliveryState::Sent);
    assert_eq!(
        stored(theirs.id.clone()).await.state,
        DeliveryState::Pending
    );
    let frozen = stored(ours[2].id.clone()).await;
    assert_eq!(frozen.state, DeliveryState::Submitting);
    assert_eq!(frozen.pdf_sha256, "sha-of-pdf");
    assert!(a.document("INV-2", 1).await.unwrap().is_some());
    assert!(stored(ours[3].id.clone()).await.logged);

    // The database rejects every update of ours[4].
    let poison = if database.is_postgres() {
        vec![
            format!(
                "CREATE FUNCTION reject_update() RETURNS trigger AS $$ BEGIN \
                 IF NEW.id = '{}' THEN RAISE EXCEPTION 'rejected by the test'; END IF; \
                 RETURN NEW; END $$ LANGUAGE plpgsql",
                ours[4].id
            ),
            "CREATE TRIGGER reject_update BEFORE UPDATE ON or_deliveries \
             FOR EACH ROW EXECUTE FUNCTION reject_update()"
                .to_owned(),
        ]
    } else {
        vec![format!(
            "CREATE TRIGGER reject_update BEFORE UPDATE ON or_deliveries \
             WHEN NEW.id = '{}' BEGIN SELECT RAISE(ABORT, 'rejected by the test'); END",
            ours[4].id
        )]
    };
    for statement in poison {
        a.db.execute_unprepared(&statement).await.unwrap();
    }
    let commits = counts.commits.load(Ordering::Relaxed);
    let (first, results) = write_as_group(
        &a,
        &b,
        &ours[0],
        vec![
            save(with_state(&ours[3], DeliveryState::Failed)),
            save(with_state(&ours[4], DeliveryState::Sent)),
            save(with_state(&theirs, DeliveryState::Sent)),
            mark_logged(&ours[2]),
        ],
    )
    .await;
    first.unwrap();
    assert!(results[0].is_ok(), "{:?}", results[0]);
    let rejected = results[1].as_ref().unwrap_err();
    assert!(matches!(rejected, StoreError::Database(_)), "{rejected}");
    assert!(
        rejected.to_string().contains("rejected by the test"),
        "{rejected}"
    );
    assert!(
        matches!(&results[2], Err(StoreError::LeaseLost { .. })),
        "{:?}",
        results[2]
    );
    assert!(results[3].is_ok(), "{:?}", results[3]);
    // The blocker, then ours[3] and the mark of ours[2], each alone after the rollback.
    assert_eq!(counts.retried_groups.load(Ordering::Relaxed), 1);
    assert_eq!(counts.commits.load(Ordering::Relaxed), commits + 3);
    assert_eq!(
        stored(ours[3].id.clone()).await.state,
        DeliveryState::Failed
    );
    assert_eq!(
        stored(ours[4].id.clone()).await.state,
        DeliveryState::Pending
    );
    assert_eq!(
        stored(theirs.id.clone()).await.state,
        DeliveryState::Pending
    );
    assert!(stored(ours[2].id.clone()).await.logged);

    // A caller that stops waiting before its `submitting` state is stored, as a cancelled
    // resend does, leaves the delivery as it was: nothing would send it.
    let received = counts.received.load(Ordering::Relaxed);
    let hold = b.db.begin().await.unwrap();
    hold.execute_unprepared(&format!(
        "UPDATE or_deliveries SET logged = logged WHERE id = '{}'",
        ours[0].id
    ))
    .await
    .unwrap();
    let blocked = tokio::spawn(save(ours[0].clone()));
    wait_for(|| counts.received.load(Ordering::Relaxed) == received + 1).await;
    let cancelled = tokio::spawn(save(with_state(&ours[5], DeliveryState::Submitting)));
    let queue = a.commit.clone().unwrap();
    wait_for(|| queue.queued() == 1).await;
    cancelled.abort();
    assert!(cancelled.await.unwrap_err().is_cancelled());
    hold.rollback().await.unwrap();
    blocked.await.unwrap().unwrap();
    wait_for(|| counts.received.load(Ordering::Relaxed) == received + 2).await;
    // A later write returns only after the task has dealt with the dropped one.
    a.mark_logged(&ours[0].id, ours[0].attempts).await.unwrap();
    assert_eq!(
        stored(ours[5].id.clone()).await.state,
        DeliveryState::Pending
    );
    drop((a, b));
    database.remove().await.unwrap();
}

/// On PostgreSQL, renewing the leases skips a delivery row that another transaction has
/// locked instead of waiting for it, and renews it the next time.
#[tokio::test]
async fn lease_renewal_skips_locked_rows_on_postgres() {
    use sea_orm::{ConnectionTrait, TransactionTrait};

    let Some(database) = postgres("orchestrator_store_renewal_skips_locked").await else {
        return;
    };
    let (a, _) = two_replicas(&database, Duration::from_secs(60)).await;
    let mut ids = Vec::new();
    for number in ["INV-1", "INV-2"] {
        let delivery = Delivery::new(format!("{number}/1"), number, 1, "C-1", Purpose::Batch);
        assert!(a.insert_delivery(&delivery).await.unwrap());
        ids.push(delivery.id);
    }
    let hold = a.db.begin().await.unwrap();
    hold.execute_unprepared(&format!(
        "SELECT id FROM or_deliveries WHERE id = '{}' FOR UPDATE",
        ids[0]
    ))
    .await
    .unwrap();
    let renewed = tokio::time::timeout(Duration::from_secs(5), a.renew_leases())
        .await
        .expect("renewal waited for the locked row")
        .unwrap();
    assert_eq!(renewed, 1);
    hold.rollback().await.unwrap();
    assert_eq!(a.renew_leases().await.unwrap(), 2);
    drop(a);
    database.remove().await.unwrap();
}

/// Commits queued writes of deliveries in a batch as one group and checks that their batch
/// items match the deliveries, with one item per delivery even when the group writes a
/// delivery twice. A write for a delivery leased to another replica changes neither.
async fn batch_items_written_with_their_group(database: TestDatabase) {
    let (a, b) = two_replicas(&database, Duration::from_secs(60)).await;
    let batch = insert_running_batch(&a).await;
    let in_batch = |number: &str| {
        let mut delivery = Delivery::new(format!("{number}/1"), number, 1, "C-1", Purpose::Batch);
        delivery.batch_id = Some(batch.id.clone());
        delivery
    };
    let ours: Vec<Delivery> = (0..3).map(|n| in_batch(&format!("INV-{n}"))).collect();
    for delivery in &ours {
        assert!(a.insert_delivery(delivery).await.unwrap());
        a.record_batch_item(&batch.id, delivery).await.unwrap();
    }
    let theirs = in_batch("INV-9");
    assert!(b.insert_delivery(&theirs).await.unwrap());
    b.record_batch_item(&batch.id, &theirs).await.unwrap();
    let with_state = |delivery: &Delivery, state: DeliveryState, reason: &str| {
        let mut delivery = delivery.clone();
        delivery.state = state;
        delivery.reason = reason.to_owned();
        delivery
    };
    let save = |delivery: Delivery| queued_save(&a, delivery);
    let freeze = |delivery: Delivery| queued_freeze(&a, delivery);
    let counts = a.commit.as_ref().unwrap().counts.clone();
    let commits = counts.commits.load(Ordering::Relaxed);

    let (first, results) = write_as_group(
        &a,
        &b,
        &with_state(&ours[0], DeliveryState::Sent, ""),
        vec![
            save(with_state(
                &ours[1],
                DeliveryState::Rendered,
                "left out: a@b.example",
            )),
            save(with_state(&ours[1], DeliveryState::Sent, "")),
            freeze(with_state(&ours[2], DeliveryState::Submitting, "")),
            save(with_state(&theirs, DeliveryState::Sent, "")),
        ],
    )
    .await;
    first.unwrap();
    assert!(results[..3].iter().all(Result::is_ok), "{results:?}");
    assert!(
        matches!(&results[3], Err(StoreError::LeaseLost { .. })),
        "{:?}",
        results[3]
    );
    // The first write alone, then the four others together, none of them again alone.
    assert_eq!(counts.commits.load(Ordering::Relaxed), commits + 2);
    assert_eq!(counts.retried_groups.load(Ordering::Relaxed), 0);

    let items = all_items(&a, &batch).await;
    assert_eq!(items.len(), 4, "{items:?}");
    for delivery in ours.iter().chain([&theirs]) {
        let stored = a.get_delivery(&delivery.id).await.unwrap().unwrap();
        let item = items
            .iter()
            .find(|item| item.delivery.id == delivery.id)
            .unwrap();
        assert_eq!(item.state, stored.state, "{}", delivery.invoice_number);
        assert_eq!(item.reason, stored.reason, "{}", delivery.invoice_number);
    }
    let states: Vec<DeliveryState> = items.iter().map(|item| item.state).collect();
    assert!(states.contains(&DeliveryState::Submitting), "{states:?}");
    assert_eq!(
        states
            .iter()
            .filter(|s| **s == DeliveryState::Pending)
            .count(),
        1,
        "only the other replica's delivery stays pending: {states:?}"
    );
    database.remove().await.unwrap();
}

#[tokio::test]
async fn batch_items_written_with_their_group_on_sqlite() {
    batch_items_written_with_their_group(TestDatabase::sqlite().unwrap()).await;
}

#[tokio::test]
async fn batch_items_written_with_their_group_on_postgres() {
    if let Some(database) = postgres("orchestrator_store_group_batch_items").await {
        batch_items_written_with_their_group(database).await;
    }
}

#[tokio::test]
async fn queued_writes_committed_as_one_group_on_sqlite() {
    queued_writes_committed_as_one_group(TestDatabase::sqlite().unwrap()).await;
}

#[tokio::test]
async fn queued_writes_committed_as_one_group_on_postgres() {
    if let Some(database) = postgres("orchestrator_store_group_commit").await {
        queued_writes_committed_as_one_group(database).await;
    }
}

/// A connection cut while idle in the pool is pinged and replaced before a write uses it. One
/// cut moments after its last use may fail its next write, and the pool drops it, so a write
/// tried again after the waits of `OUTCOME_WRITE_RETRIES`, as after a send, goes through.
#[tokio::test]
async fn write_after_cut_connections_on_postgres() {
    let Some(database) = postgres("orchestrator_store_write_after_cut").await else {
        return;
    };
    let (a, _b) = two_replicas(&database, Duration::from_secs(60)).await;
    let mut delivery = Delivery::new("INV-1/cut".to_owned(), "INV-1", 1, "C-1", Purpose::Batch);
    assert!(a.insert_delivery(&delivery).await.unwrap());

    database.end_sessions().await.unwrap();
    tokio::time::sleep(invoicer_kit::config::DATABASE_PING_AFTER_IDLE + Duration::from_millis(200))
        .await;
    delivery.state = DeliveryState::Rendered;
    a.save_delivery(&delivery).await.unwrap();

    // Reads at the same time leave several connections in the pool, each used just now.
    let reads = (0..4).map(|_| a.get_delivery(&delivery.id));
    for read in futures::future::join_all(reads).await {
        assert!(read.unwrap().is_some());
    }
    database.end_sessions().await.unwrap();
    delivery.state = DeliveryState::Sent;
    crate::deliver::with_write_retries("storing the outcome", &delivery.id, || {
        a.save_delivery(&delivery)
    })
    .await
    .unwrap();
    let stored = a.get_delivery(&delivery.id).await.unwrap().unwrap();
    assert_eq!(stored.state, DeliveryState::Sent);
    database.remove().await.unwrap();
}
