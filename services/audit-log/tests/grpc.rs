//! Integration tests of audit-log over gRPC. Every case runs on SQLite, and on PostgreSQL when
//! `INVOICER_TEST_DATABASE_URL` is set.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context, Result};
use invoicer_proto::audit_log::v1 as pb;
use invoicer_proto::types::v1 as types;
use tonic::Code;
use tonic_types::StatusExt;

use support::{Harness, batch_trigger, mailbox, resend_trigger, sent_entry};

/// Generates `sqlite::<case>` and `postgres::<case>` for each case function.
macro_rules! on_every_backend {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() -> anyhow::Result<()> {
                    let database = super::support::TestDatabase::sqlite()?;
                    super::support::run(database, super::$case).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() -> anyhow::Result<()> {
                    let Some(database) =
                        super::support::TestDatabase::postgres(stringify!($case)).await?
                    else {
                        return Ok(());
                    };
                    super::support::run(database, super::$case).await
                }
            )*
        }
    };
}

on_every_backend!(
    append_assigns_chain_fields,
    append_keeps_attempt_time,
    append_rejects_future_attempt_time,
    append_round_trips_every_field,
    append_continues_chain_after_restart,
    append_with_stored_key_returns_entry,
    get_entry_by_id,
    get_entry_unknown_id_is_not_found,
    get_entry_malformed_id_is_invalid,
    list_by_invoice_number,
    list_by_customer_code,
    list_by_recipient_ignores_case,
    list_by_recipient_matches_bcc,
    list_by_since,
    list_by_until,
    list_by_since_and_until,
    list_by_batch_id,
    list_by_combined_filters,
    list_invalid_time_names_field,
    paging_covers_every_entry_once,
    paging_with_filter,
    paging_rejects_bad_token,
    verify_empty_log_is_ok,
    verify_intact_log_is_ok,
    verify_finds_changed_entry,
    verify_finds_deleted_entry,
    verify_finds_unreadable_entry,
    concurrent_appends_form_one_chain,
    concurrent_appends_from_two_servers,
    migrations_use_own_table,
    validation_errors_name_field,
);

const ZERO_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Six entries with distinct times (at least 3 ms apart), in this order:
/// 1. INV-1 ALFKI batch b1, To Maria@Alfki.example, Cc accounts@alfki.example
/// 2. INV-2 ALFKI batch b1, To maria@alfki.example
/// 3. INV-3 ANATR batch b1, To ana@anatr.example, Bcc archive@company.example
/// 4. INV-1 ALFKI resend, To other@alfki.example
/// 5. INV-4 BERGS batch b2, To christina@bergs.example, Cc MARIA@ALFKI.EXAMPLE
/// 6. INV-5 BERGS batch b2, To christina@bergs.example, Bcc ARCHIVE@company.example
async fn seed(harness: &Harness) -> Result<Vec<pb::Entry>> {
    let mut first = sent_entry("INV-1", "ALFKI", batch_trigger("b1"), "Maria@Alfki.example");
    first.cc = vec![mailbox("", "accounts@alfki.example")];
    let second = sent_entry("INV-2", "ALFKI", batch_trigger("b1"), "maria@alfki.example");
    let mut third = sent_entry("INV-3", "ANATR", batch_trigger("b1"), "ana@anatr.example");
    third.bcc = vec![mailbox("", "archive@company.example")];
    let resend = resend_trigger("clerk@company.example", "customer lost it", "req-1");
    let fourth = sent_entry("INV-1", "ALFKI", resend, "other@alfki.example");
    let mut fifth = sent_entry(
        "INV-4",
        "BERGS",
        batch_trigger("b2"),
        "christina@bergs.example",
    );
    fifth.cc = vec![mailbox("Maria", "MARIA@ALFKI.EXAMPLE")];
    let mut sixth = sent_entry(
        "INV-5",
        "BERGS",
        batch_trigger("b2"),
        "christina@bergs.example",
    );
    sixth.bcc = vec![mailbox("", "ARCHIVE@company.example")];

    let mut appended = Vec::new();
    for entry in [first, second, third, fourth, fifth, sixth] {
        appended.push(harness.append(entry).await?);
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    Ok(appended)
}

fn list_request() -> pb::ListEntriesRequest {
    pb::ListEntriesRequest::default()
}

/// Clears the server-assigned fields, leaving the entry as the client sent it.
fn without_assigned_fields(mut entry: pb::Entry) -> pb::Entry {
    entry.sequence = 0;
    entry.id.clear();
    entry.at.clear();
    entry.prev_hash.clear();
    entry.entry_hash.clear();
    entry
}

async fn append_assigns_chain_fields(harness: &mut Harness) -> Result<()> {
    let mut client_values = sent_entry("INV-1", "ALFKI", batch_trigger("b1"), "a@alfki.example");
    client_values.sequence = 99;
    client_values.id = "client-chosen".to_owned();
    client_values.prev_hash = "f".repeat(64);
    client_values.entry_hash = "f".repeat(64);

    let mut appended = Vec::new();
    for _ in 0..3 {
        appended.push(harness.append(client_values.clone()).await?);
    }

    let sequences: Vec<u64> = appended.iter().map(|entry| entry.sequence).collect();
    assert_eq!(sequences, [1, 2, 3]);
    assert_eq!(appended[0].prev_hash, ZERO_HASH);
    assert_eq!(appended[1].prev_hash, appended[0].entry_hash);
    assert_eq!(appended[2].prev_hash, appended[1].entry_hash);
    for entry in &appended {
        let id = uuid::Uuid::parse_str(&entry.id).context("id is a UUID")?;
        assert_eq!(id.get_version_num(), 7, "id {} is not a UUID v7", entry.id);
        assert_eq!(entry.entry_hash.len(), 64, "{}", entry.entry_hash);
        assert!(
            entry
                .entry_hash
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        let at = chrono::DateTime::parse_from_rfc3339(&entry.at).context("at is RFC 3339")?;
        assert_eq!(
            entry.at.len(),
            "2026-12-04T02:00:00.123Z".len(),
            "{}",
            entry.at
        );
        assert!(entry.at.ends_with('Z'), "{}", entry.at);
        let age = chrono::Utc::now().signed_duration_since(at);
        assert!(
            age < chrono::Duration::minutes(1),
            "at {} is not the append time",
            entry.at
        );
    }
    let ids: HashSet<&str> = appended.iter().map(|entry| entry.id.as_str()).collect();
    assert_eq!(ids.len(), 3);
    Ok(())
}

async fn append_keeps_attempt_time(harness: &mut Harness) -> Result<()> {
    let mut late = sent_entry("INV-1", "ALFKI", batch_trigger("b1"), "a@alfki.example");
    late.at = "2026-12-04T02:00:00.123456+01:00".to_owned();
    let appended = harness.append(late).await?;
    // Kept, in UTC and cut to milliseconds.
    assert_eq!(appended.at, "2026-12-04T01:00:00.123Z");
    Ok(())
}

async fn append_rejects_future_attempt_time(harness: &mut Harness) -> Result<()> {
    let mut future = sent_entry("INV-1", "ALFKI", batch_trigger("b1"), "a@alfki.example");
    future.at = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let error = harness.append(future).await.unwrap_err();
    let status = error
        .downcast_ref::<tonic::Status>()
        .context("not a gRPC status")?;
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("entry.at"),
        "{}",
        status.message()
    );
    Ok(())
}

async fn append_round_trips_every_field(harness: &mut Harness) -> Result<()> {
    let mut sent = sent_entry("INV-7", "ALFKI", batch_trigger("b1"), "maria@alfki.example");
    sent.invoice_revision = 3;
    sent.trigger = Some(resend_trigger(
        "clerk",
        "new address: ü, \"quoted\"; second part",
        "r-9",
    ));
    sent.cc = vec![
        mailbox("Cc One", "one@alfki.example"),
        mailbox("", "two@alfki.example"),
    ];
    sent.bcc = vec![mailbox("", "archive@company.example")];
    sent.recipients.push(types::RecipientResult {
        address: "one@alfki.example".to_owned(),
        role: types::RecipientRole::Cc as i32,
        accepted: false,
        reply_code: 550,
        reply_text: "5.1.1 no such user".to_owned(),
    });
    sent.outcome = types::DeliveryOutcome::PartiallySent as i32;
    sent.detail = "one recipient rejected".to_owned();
    sent.attachment_size = u64::try_from(i64::MAX)?;

    let appended = harness.append(sent.clone()).await?;
    assert_eq!(without_assigned_fields(appended.clone()), sent);

    let listed = harness.list(list_request()).await?;
    assert_eq!(listed.entries, [appended]);
    Ok(())
}

async fn append_continues_chain_after_restart(harness: &mut Harness) -> Result<()> {
    let first = harness
        .append(sent_entry(
            "INV-1",
            "ALFKI",
            batch_trigger("b1"),
            "a@x.example",
        ))
        .await?;
    harness.restart().await?;
    let second = harness
        .append(sent_entry(
            "INV-2",
            "ALFKI",
            batch_trigger("b1"),
            "a@x.example",
        ))
        .await?;
    assert_eq!(second.sequence, 2);
    assert_eq!(second.prev_hash, first.entry_hash);
    assert!(harness.verify().await?.ok);
    Ok(())
}

/// A caller that lost the response to an append sends it again with the same key and gets the
/// stored entry, also after a restart, and the log keeps one entry for it. The same key with
/// another invoice is rejected.
async fn append_with_stored_key_returns_entry(harness: &mut Harness) -> Result<()> {
    let sent = sent_entry("INV-1", "ALFKI", batch_trigger("b1"), "a@x.example");
    let first = harness
        .append_with_key(sent.clone(), "delivery-1/1")
        .await?;
    let again = harness
        .append_with_key(sent.clone(), "delivery-1/1")
        .await?;
    assert_eq!(again, first);

    harness.restart().await?;
    let after_restart = harness
        .append_with_key(sent.clone(), "delivery-1/1")
        .await?;
    assert_eq!(after_restart, first);

    let next_attempt = harness.append_with_key(sent, "delivery-1/2").await?;
    assert_eq!(next_attempt.sequence, 2);
    assert_eq!(next_attempt.prev_hash, first.entry_hash);

    let other = sent_entry("INV-2", "ALFKI", batch_trigger("b1"), "a@x.example");
    let status = harness
        .append_with_key(other, "delivery-1/1")
        .await
        .unwrap_err()
        .downcast::<tonic::Status>()?;
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
    assert!(
        status.message().contains("\"delivery-1/1\""),
        "{}",
        status.message()
    );
    assert_eq!(harness.list(list_request()).await?.entries.len(), 2);
    assert!(harness.verify().await?.ok);
    Ok(())
}

async fn get_entry_by_id(harness: &mut Harness) -> Result<()> {
    let seeded = seed(harness).await?;
    for expected in &seeded {
        let request = pb::GetEntryRequest {
            id: expected.id.clone(),
        };
        let got = harness.client.get_entry(request).await?.into_inner().entry;
        assert_eq!(got.as_ref(), Some(expected));
    }
    Ok(())
}

async fn get_entry_unknown_id_is_not_found(harness: &mut Harness) -> Result<()> {
    seed(harness).await?;
    let id = uuid::Uuid::now_v7().to_string();
    let status = harness
        .client
        .get_entry(pb::GetEntryRequest { id: id.clone() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert!(status.message().contains(&id), "{}", status.message());
    Ok(())
}

async fn get_entry_malformed_id_is_invalid(harness: &mut Harness) -> Result<()> {
    let request = pb::GetEntryRequest {
        id: "not-a-uuid".to_owned(),
    };
    let status = harness.client.get_entry(request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(violated_field(&status), "id");
    assert!(
        status.message().contains("not-a-uuid"),
        "{}",
        status.message()
    );
    Ok(())
}

async fn list_by_invoice_number(harness: &mut Harness) -> Result<()> {
    seed(harness).await?;
    let request = pb::ListEntriesRequest {
        invoice_number: "INV-1".to_owned(),
        ..list_request()
    };
    assert_eq!(harness.list_sequences(request).await?, [4, 1]);
    let request = pb::ListEntriesRequest {
        invoice_number: "INV-9".to_owned(),
        ..list_request()
    };
    assert_eq!(harness.list_sequences(request).await?, [] as [u64; 0]);
    Ok(())
}

async fn list_by_customer_code(harness: &mut Harness) -> Result<()> {
    seed(harness).await?;
    let request = pb::ListEntriesRequest {
        customer_code: "ALFKI".to_owned(),
        ..list_request()
    };
    assert_eq!(harness.list_sequences(request).await?, [4, 2, 1]);
    let request = pb::ListEntriesRequest {
        customer_code: "BERGS".to_owned(),
        ..list_request()
    };
    assert_eq!(harness.list_sequences(request).await?, [6, 5]);
    Ok(())
}

async fn list_by_recipient_ignores_case(harness: &mut Harness) -> Result<()> {
    seed(harness).await?;
    // Entry 1 has it in To as Maria@Alfki.example, 2 in To, 5 in Cc in capitals.
    let request = pb::ListEntriesRequest {
        recipient: "mARIA@alfki.EXAMPLE".to_owned(),
        ..list_request()
    };
    assert_eq!(harness.list_sequences(request).await?, [5, 2, 1]);
    // The filter matches whole addresses, not parts of them.
    let request = pb::ListEntriesRequest {
        recipient: "maria".to_owned(),
        ..list_request()
    };
    assert_eq!(harness.list_sequences(request).await?, [] as [u64; 0]);
    Ok(())
}

async fn list_by_recipient_matches_bcc(harness: &mut Harness) -> Result<()> {
    seed(harness).await?;
    let request = pb::ListEntriesRequest {
        recipient: "archive@company.example".to_owned(),
        ..list_request()
    };
    assert_eq!(harness.list_sequences(request).await?, [6, 3]);
    Ok(())
}

async fn list_by_since(harness: &mut Harness) -> Result<()> {
    let seeded = seed(harness).await?;
    let request = pb::ListEntriesRequest {
        since: seeded[3].at.clone(),
        ..list_request()
    };
    assert_eq!(harness.list_sequences(request).await?, [6, 5, 4]);
    Ok(())
}

async fn list_by_until(harness: &mut Harness) -> Result<()> {
    let seeded = seed(harness).await?;
    // Strictly before: entry 4 itself is excluded.
    let request = pb::ListEntriesRequest {
        until: seeded[3].at.clone(),
        ..list_request()
    };
    assert_eq!(harness.list_sequences(request).await?, [3, 2, 1]);
    Ok(())
}

async fn list_by_since_and_until(harness: &mut Harness) -> Result<()> {
    let seeded = seed(harness).await?;
    let request = pb::ListEntriesRequest {
        since: seeded[1].at.clone(),
        until: seeded[4].at.clone(),
        ..list_request()
    };
    assert_eq!(harness.list_sequences(request).await?, [4, 3, 2]);
    Ok(())
}

async fn list_by_batch_id(harness: &mut Harness) -> Result<()> {
    seed(harness).await?;
    let request = pb::ListEntriesRequest {
        batch_id: "b1".to_owned(),
        ..list_request()
    };
    assert_eq!(harness.list_sequences(request).await?, [3, 2, 1]);
    let request = pb::ListEntriesRequest {
        batch_id: "b2".to_owned(),
        ..list_request()
    };
    assert_eq!(harness.list_sequences(request).await?, [6, 5]);
    Ok(())
}

async fn list_by_combined_filters(harness: &mut Harness) -> Result<()> {
    let seeded = seed(harness).await?;
    let request = pb::ListEntriesRequest {
        customer_code: "ALFKI".to_owned(),
        recipient: "maria@alfki.example".to_owned(),
        ..list_request()
    };
    assert_eq!(harness.list_sequences(request).await?, [2, 1]);
    let request = pb::ListEntriesRequest {
        batch_id: "b1".to_owned(),
        since: seeded[1].at.clone(),
        ..list_request()
    };
    assert_eq!(harness.list_sequences(request).await?, [3, 2]);
    Ok(())
}

async fn list_invalid_time_names_field(harness: &mut Harness) -> Result<()> {
    for (field, request) in [
        (
            "since",
            pb::ListEntriesRequest {
                since: "yesterday".to_owned(),
                ..list_request()
            },
        ),
        (
            "until",
            pb::ListEntriesRequest {
                until: "2026-12-04 25:00".to_owned(),
                ..list_request()
            },
        ),
    ] {
        let value = if field == "since" {
            request.since.clone()
        } else {
            request.until.clone()
        };
        let status = harness.client.list_entries(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(violated_field(&status), field);
        assert!(status.message().contains(&value), "{}", status.message());
    }
    Ok(())
}

/// Appends `count` entries; every third one goes to `shared@alfki.example`.
async fn append_many(harness: &Harness, count: usize) -> Result<()> {
    for index in 0..count {
        let to = if index % 3 == 0 {
            "shared@alfki.example"
        } else {
            "other@alfki.example"
        };
        let invoice = format!("INV-{index}");
        harness
            .append(sent_entry(&invoice, "ALFKI", batch_trigger("b1"), to))
            .await?;
    }
    Ok(())
}

/// Follows next_page_token from `first` until it is empty and returns every sequence seen.
async fn all_pages(
    harness: &Harness,
    first: pb::ListEntriesRequest,
) -> Result<(Vec<u64>, Vec<usize>)> {
    let mut sequences = Vec::new();
    let mut page_sizes = Vec::new();
    let mut request = first;
    loop {
        let response = harness.list(request.clone()).await?;
        page_sizes.push(response.entries.len());
        sequences.extend(response.entries.iter().map(|entry| entry.sequence));
        if response.next_page_token.is_empty() {
            return Ok((sequences, page_sizes));
        }
        anyhow::ensure!(page_sizes.len() < 100, "paging does not end");
        request.page_token = response.next_page_token;
    }
}

async fn paging_covers_every_entry_once(harness: &mut Harness) -> Result<()> {
    append_many(harness, 25).await?;
    let first = pb::ListEntriesRequest {
        page_size: 7,
        ..list_request()
    };
    let (sequences, page_sizes) = all_pages(harness, first).await?;
    assert_eq!(page_sizes, [7, 7, 7, 4]);
    assert_eq!(sequences, (1..=25).rev().collect::<Vec<u64>>());

    // page_size 0 means 100, so one page contains every entry and no token follows.
    let response = harness.list(list_request()).await?;
    assert_eq!(response.entries.len(), 25);
    assert_eq!(response.next_page_token, "");
    Ok(())
}

async fn paging_with_filter(harness: &mut Harness) -> Result<()> {
    append_many(harness, 25).await?;
    let first = pb::ListEntriesRequest {
        recipient: "shared@alfki.example".to_owned(),
        page_size: 4,
        ..list_request()
    };
    let (sequences, page_sizes) = all_pages(harness, first).await?;
    // Entries 1, 4, 7, ..., 25: every third, starting with the first.
    let expected: Vec<u64> = (1..=25)
        .rev()
        .filter(|sequence| sequence % 3 == 1)
        .collect();
    assert_eq!(sequences, expected);
    assert_eq!(page_sizes, [4, 4, 1]);
    Ok(())
}

async fn paging_rejects_bad_token(harness: &mut Harness) -> Result<()> {
    append_many(harness, 5).await?;
    let first = harness
        .list(pb::ListEntriesRequest {
            page_size: 2,
            ..list_request()
        })
        .await?;
    assert!(!first.next_page_token.is_empty());

    let mut bad_tokens = vec!["garbage".to_owned(), "0.0".to_owned()];
    bad_tokens.push(format!("{}x", first.next_page_token));
    for token in bad_tokens {
        let request = pb::ListEntriesRequest {
            page_size: 2,
            page_token: token.clone(),
            ..list_request()
        };
        let status = harness.client.list_entries(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{token}: {status:?}");
        assert_eq!(violated_field(&status), "page_token");
    }

    // A token continues only the listing it came from.
    let request = pb::ListEntriesRequest {
        customer_code: "ALFKI".to_owned(),
        page_token: first.next_page_token,
        ..list_request()
    };
    let status = harness.client.list_entries(request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    Ok(())
}

async fn verify_empty_log_is_ok(harness: &mut Harness) -> Result<()> {
    let verification = harness.verify().await?;
    assert!(verification.ok, "{verification:?}");
    assert_eq!(verification.entries_checked, 0);
    assert_eq!(verification.first_bad_sequence, 0);
    Ok(())
}

async fn verify_intact_log_is_ok(harness: &mut Harness) -> Result<()> {
    seed(harness).await?;
    let verification = harness.verify().await?;
    assert!(verification.ok, "{verification:?}");
    assert_eq!(verification.entries_checked, 6);
    assert_eq!(verification.first_bad_sequence, 0);
    Ok(())
}

async fn verify_finds_changed_entry(harness: &mut Harness) -> Result<()> {
    seed(harness).await?;
    harness
        .execute_sql("UPDATE al_entries SET subject = 'Invoice INV-X' WHERE sequence = 3")
        .await?;
    let verification = harness.verify().await?;
    assert!(!verification.ok, "{verification:?}");
    assert_eq!(verification.first_bad_sequence, 3);
    assert_eq!(verification.entries_checked, 2);
    assert!(
        verification.message.contains("entry 3"),
        "{}",
        verification.message
    );
    Ok(())
}

async fn verify_finds_deleted_entry(harness: &mut Harness) -> Result<()> {
    seed(harness).await?;
    harness
        .execute_sql("DELETE FROM al_entry_recipients WHERE entry_sequence = 2")
        .await?;
    harness
        .execute_sql("DELETE FROM al_entries WHERE sequence = 2")
        .await?;
    let verification = harness.verify().await?;
    assert!(!verification.ok, "{verification:?}");
    assert_eq!(verification.first_bad_sequence, 2);
    assert!(
        verification.message.contains("missing"),
        "{}",
        verification.message
    );
    Ok(())
}

async fn verify_finds_unreadable_entry(harness: &mut Harness) -> Result<()> {
    seed(harness).await?;
    harness
        .execute_sql("UPDATE al_entries SET to_mailboxes = 'not json' WHERE sequence = 5")
        .await?;
    let verification = harness.verify().await?;
    assert!(!verification.ok, "{verification:?}");
    assert_eq!(verification.first_bad_sequence, 5);
    assert_eq!(verification.entries_checked, 4);
    Ok(())
}

async fn concurrent_appends_form_one_chain(harness: &mut Harness) -> Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..20 {
        let mut client = harness.client.clone();
        tasks.spawn(async move {
            let invoice = format!("INV-{index}");
            let entry = sent_entry(&invoice, "ALFKI", batch_trigger("b1"), "a@alfki.example");
            client
                .append_entry(pb::AppendEntryRequest {
                    entry: Some(entry),
                    idempotency_key: String::new(),
                })
                .await
        });
    }
    let mut sequences = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let entry = joined??
            .into_inner()
            .entry
            .context("AppendEntry returned no entry")?;
        sequences.push(entry.sequence);
    }
    sequences.sort_unstable();
    assert_eq!(sequences, (1..=20).collect::<Vec<u64>>());

    let listed = harness.list(list_request()).await?.entries;
    let chain: Vec<&pb::Entry> = listed.iter().rev().collect();
    let listed_sequences: Vec<u64> = chain.iter().map(|entry| entry.sequence).collect();
    assert_eq!(listed_sequences, (1..=20).collect::<Vec<u64>>());
    assert_eq!(chain[0].prev_hash, ZERO_HASH);
    for pair in chain.windows(2) {
        assert_eq!(
            pair[1].prev_hash, pair[0].entry_hash,
            "fork at {}",
            pair[1].sequence
        );
    }
    let verification = harness.verify().await?;
    assert!(verification.ok, "{verification:?}");
    assert_eq!(verification.entries_checked, 20);
    Ok(())
}

async fn concurrent_appends_from_two_servers(harness: &mut Harness) -> Result<()> {
    let (replica, replica_client) = harness.start_replica().await?;
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..20 {
        let mut client = if index % 2 == 0 {
            harness.client.clone()
        } else {
            replica_client.clone()
        };
        tasks.spawn(async move {
            let invoice = format!("INV-{index}");
            let entry = sent_entry(&invoice, "ALFKI", batch_trigger("b1"), "a@alfki.example");
            client
                .append_entry(pb::AppendEntryRequest {
                    entry: Some(entry),
                    idempotency_key: String::new(),
                })
                .await
        });
    }
    let mut sequences = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let entry = joined??
            .into_inner()
            .entry
            .context("AppendEntry returned no entry")?;
        sequences.push(entry.sequence);
    }
    drop(replica_client);
    replica
        .shutdown("test finished")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    sequences.sort_unstable();
    assert_eq!(sequences, (1..=20).collect::<Vec<u64>>());
    let verification = harness.verify().await?;
    assert!(verification.ok, "{verification:?}");
    assert_eq!(verification.entries_checked, 20);
    Ok(())
}

async fn migrations_use_own_table(harness: &mut Harness) -> Result<()> {
    // Services that share one PostgreSQL database each keep their own migration table.
    harness
        .execute_sql("SELECT version FROM audit_log_migrations")
        .await?;
    let default_table = harness
        .execute_sql("SELECT version FROM seaql_migrations")
        .await;
    assert!(default_table.is_err(), "seaql_migrations exists");
    Ok(())
}

fn violated_field(status: &tonic::Status) -> String {
    let violations = status
        .get_details_bad_request()
        .map(|bad| bad.field_violations);
    match violations.as_deref() {
        Some([violation]) => violation.field.clone(),
        other => panic!("expected one field violation in {status:?}, got {other:?}"),
    }
}

async fn validation_errors_name_field(harness: &mut Harness) -> Result<()> {
    let valid = || sent_entry("INV-1", "ALFKI", batch_trigger("b1"), "a@alfki.example");
    let mut cases: Vec<(&str, Option<pb::Entry>)> = vec![("entry", None)];
    let mut add = |field: &'static str, change: fn(&mut pb::Entry)| {
        let mut entry = valid();
        change(&mut entry);
        cases.push((field, Some(entry)));
    };
    add("entry.invoice_number", |e| e.invoice_number.clear());
    add("entry.invoice_number", |e| {
        e.invoice_number = "  ".to_owned()
    });
    add("entry.outcome", |e| {
        e.outcome = types::DeliveryOutcome::Unspecified as i32
    });
    add("entry.outcome", |e| e.outcome = 99);
    add("entry.trigger", |e| e.trigger = None);
    add("entry.trigger.kind", |e| {
        e.trigger = Some(pb::Trigger::default())
    });
    add("entry.trigger.kind", |e| {
        e.trigger = Some(pb::Trigger {
            kind: 42,
            ..Default::default()
        })
    });
    add("entry.trigger.batch_id", |e| {
        e.trigger = Some(batch_trigger(""))
    });
    add("entry.recipients[0].role", |e| e.recipients[0].role = 17);
    add("entry.attachment_size", |e| e.attachment_size = u64::MAX);

    for (field, entry) in cases {
        let request = pb::AppendEntryRequest {
            entry,
            idempotency_key: String::new(),
        };
        let status = harness.client.append_entry(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert_eq!(violated_field(&status), field);
        assert!(status.message().starts_with(field), "{}", status.message());
    }
    // Rejected appends leave no trace in the log.
    assert_eq!(harness.list(list_request()).await?.entries.len(), 0);
    Ok(())
}

#[tokio::test]
async fn start_fails_on_unusable_data_dir() -> Result<()> {
    use std::sync::Arc;

    let folder = tempfile::tempdir()?;
    let file = folder.path().join("not-a-folder");
    std::fs::write(&file, "")?;
    let mut config = invoicer_kit::Config::default();
    config.server.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    config.data_dir = file.join("data");
    let plugins: Vec<Arc<dyn invoicer_kit::ServicePlugin>> =
        vec![Arc::new(invoicer_audit_log::AuditLogPlugin)];

    let Err(error) = invoicer_kit::server::start(Arc::new(config), plugins).await else {
        anyhow::bail!("server started on a data folder below a file");
    };
    let message = error.to_string();
    assert!(message.contains("cannot create data folder"), "{message}");
    assert!(message.contains("not-a-folder"), "{message}");
    Ok(())
}
