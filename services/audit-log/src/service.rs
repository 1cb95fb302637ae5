//! The operations of audit-log, independent of gRPC: append, list, get and verify.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::chain::{self, ChainVerifier, Verification};
use crate::entry::{Entry, SendAttempt, now_millis};
use crate::error::Error;
use crate::query::{ListRequest, PageQuery};
use crate::store::{ChainTip, Store};

/// Entries read per query while verifying the chain.
const VERIFY_BATCH_SIZE: u64 = 500;

/// One page of `ListEntries`.
#[derive(Debug, Clone)]
pub(crate) struct Page {
    pub(crate) entries: Vec<Entry>,
    /// Empty on the last page.
    pub(crate) next_page_token: String,
}

pub(crate) struct AuditLog {
    store: Store,
}

impl AuditLog {
    pub(crate) fn new(store: Store) -> AuditLog {
        AuditLog { store }
    }

    /// Validates `attempt` and appends it as the next entry of the chain. `attempted_at` is
    /// when the attempt ended, for outcomes appended late (after audit-log was unreachable);
    /// `None` uses the time of the append. When an entry was appended with `idempotency_key`
    /// before, that entry is returned and nothing is appended.
    pub(crate) async fn append(
        &self,
        attempt: SendAttempt,
        attempted_at: Option<DateTime<Utc>>,
        idempotency_key: Option<String>,
    ) -> Result<Entry, Error> {
        attempt.validate()?;
        let at = attempted_at.unwrap_or_else(now_millis);
        let entry = self
            .store
            .append(idempotency_key, move |tip| seal(&attempt, at, tip))
            .await?;
        tracing::debug!(
            sequence = entry.sequence,
            invoice = %entry.attempt.invoice_number,
            outcome = entry.attempt.outcome.as_str(),
            "entry appended"
        );
        Ok(entry)
    }

    pub(crate) async fn list(&self, request: &ListRequest) -> Result<Page, Error> {
        let query = PageQuery::parse(request)?;
        // Reading one extra entry shows whether another page follows.
        let mut entries = self.store.list(&query, query.page_size + 1).await?;
        let has_more = entries.len() as u64 > query.page_size;
        entries.truncate(query.page_size as usize);
        let next_page_token = match entries.last() {
            Some(last) if has_more => query.next_page_token(last.sequence),
            _ => String::new(),
        };
        Ok(Page {
            entries,
            next_page_token,
        })
    }

    pub(crate) async fn get(&self, id: &str) -> Result<Entry, Error> {
        let parsed = Uuid::parse_str(id.trim()).map_err(|error| {
            Error::invalid(
                "id",
                format!("invalid entry id {id:?} ({error}): pass an entry's UUID"),
            )
        })?;
        self.store
            .get(parsed)
            .await?
            .ok_or_else(|| Error::EntryNotFound {
                id: id.trim().to_owned(),
            })
    }

    /// Recomputes the chain from the first entry and stops at the first break.
    pub(crate) async fn verify(&self) -> Result<Verification, Error> {
        let mut verifier = ChainVerifier::new();
        loop {
            let batch = self
                .store
                .entries_after(verifier.checked(), VERIFY_BATCH_SIZE)
                .await?;
            if batch.is_empty() {
                return Ok(verifier.intact());
            }
            for decoded in batch {
                let result = match decoded {
                    Ok(entry) => verifier.check(&entry),
                    Err(error) => Err(unreadable_break(&verifier, error)?),
                };
                if let Err(chain_break) = result {
                    tracing::warn!(
                        sequence = chain_break.sequence,
                        reason = %chain_break.reason,
                        "hash chain of the email log is broken"
                    );
                    return Ok(verifier.broken(chain_break));
                }
            }
        }
    }
}

/// Builds the break for a stored row that does not decode: the row itself, or a missing
/// entry before it.
fn unreadable_break(verifier: &ChainVerifier, error: Error) -> Result<chain::ChainBreak, Error> {
    let Error::CorruptEntry { sequence, reason } = error else {
        return Err(error);
    };
    let expected = verifier.next_sequence();
    let reason = if sequence == expected {
        format!("entry {sequence} was changed: {reason}")
    } else {
        format!("entry {expected} is missing (the next stored is {sequence})")
    };
    Ok(chain::ChainBreak {
        sequence: expected,
        reason,
    })
}

/// Builds the entry that follows `tip`, with a new id, the attempt's time and its hash.
fn seal(attempt: &SendAttempt, at: DateTime<Utc>, tip: ChainTip) -> Entry {
    let mut entry = Entry {
        sequence: tip.next_sequence,
        id: Uuid::now_v7(),
        at,
        attempt: attempt.clone(),
        prev_hash: tip.prev_hash,
        entry_hash: String::new(),
    };
    entry.entry_hash = chain::entry_hash(&entry);
    entry
}
