//! The invoice-query operations, independent of gRPC: import an export, read invoices and
//! customers, and list the posted invoices that may be due for a mail.

use std::collections::HashSet;
use std::future::Future;

use tokio::sync::Mutex;

use crate::canonical::{canonical_json, sha256_hex};
use crate::error::QueryError;
use crate::import::{CheckedRecord, ValidInvoice, parse_export};
use crate::model::{
    Customer, ImportCounts, ImportReport, InvoiceSummary, RecordType, Rejection, StoredInvoice,
};
use crate::paging::{ListFilter, decode_token, encode_token};
use crate::store::{InvoiceUpsert, ListQuery, Store, StoreError, Upserted};

/// Maximum size of one export document, in bytes (64 MiB).
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024 * 1024;

/// Page size of `list_to_notify` when the request gives none.
pub(crate) const DEFAULT_PAGE_SIZE: u32 = 500;
/// Larger page sizes are lowered to this one.
pub(crate) const MAX_PAGE_SIZE: u32 = 1000;

/// A `list_to_notify` request after its fields were parsed.
#[derive(Debug, Clone)]
pub(crate) struct ListRequest {
    pub(crate) filter: ListFilter,
    /// 0 means `DEFAULT_PAGE_SIZE`.
    pub(crate) page_size: u32,
    /// Empty for the first page.
    pub(crate) page_token: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InvoicePage {
    pub(crate) invoices: Vec<InvoiceSummary>,
    /// Empty on the last page.
    pub(crate) next_page_token: String,
}

pub(crate) struct InvoiceQuery {
    store: Store,
    /// Runs one import at a time in this process, so two imports never race for the same
    /// SQLite write lock. Replicas on PostgreSQL rely on row locks and unique keys instead.
    import_lock: Mutex<()>,
}

impl InvoiceQuery {
    pub(crate) fn new(store: Store) -> Self {
        InvoiceQuery {
            store,
            import_lock: Mutex::new(()),
        }
    }

    /// Imports one export document. Records that fail a check are rejected and reported; the
    /// others are stored, each customer and each invoice in its own transaction.
    pub(crate) async fn import(&self, document: Vec<u8>) -> Result<ImportReport, QueryError> {
        if document.len() > MAX_DOCUMENT_BYTES {
            return Err(QueryError::DocumentTooLarge {
                limit: MAX_DOCUMENT_BYTES,
            });
        }
        let parsed = tokio::task::spawn_blocking(move || parse_export(&document))
            .await
            .map_err(|error| QueryError::Worker(error.to_string()))?
            .map_err(|reason| QueryError::MalformedDocument { reason })?;

        let _one_import_at_a_time = self.import_lock.lock().await;
        let mut report = ImportReport::default();
        for untyped in &parsed.untyped {
            reject(
                &mut report,
                untyped.counts_as,
                vec![untyped.rejection.clone()],
            );
        }
        let rejected_codes = self
            .import_customers(&parsed.customers, &mut report)
            .await?;
        self.import_invoices(&parsed.invoices, &rejected_codes, &mut report)
            .await?;
        tracing::info!(
            customers_created = report.customers.created,
            customers_updated = report.customers.updated,
            customers_unchanged = report.customers.unchanged,
            customers_rejected = report.customers.rejected,
            invoices_created = report.invoices.created,
            invoices_updated = report.invoices.updated,
            invoices_unchanged = report.invoices.unchanged,
            invoices_rejected = report.invoices.rejected,
            warnings = report.warnings.len(),
            "import finished"
        );
        Ok(report)
    }

    /// Stores the valid customers and returns the codes of the rejected ones.
    async fn import_customers(
        &self,
        records: &[CheckedRecord<Customer>],
        report: &mut ImportReport,
    ) -> Result<HashSet<String>, QueryError> {
        let mut rejected_codes = HashSet::new();
        for record in records {
            warn(report, record.warnings(RecordType::Customer));
            let Ok(customer) = &record.outcome else {
                reject(
                    report,
                    RecordType::Customer,
                    record.rejections(RecordType::Customer),
                );
                rejected_codes.insert(record.key.clone());
                continue;
            };
            let outcome = retry_on_conflict(|| self.store.upsert_customer(customer)).await?;
            count(&mut report.customers, outcome);
        }
        Ok(rejected_codes)
    }

    async fn import_invoices(
        &self,
        records: &[CheckedRecord<ValidInvoice>],
        rejected_codes: &HashSet<String>,
        report: &mut ImportReport,
    ) -> Result<(), QueryError> {
        for record in records {
            warn(report, record.warnings(RecordType::Invoice));
            let Ok(valid) = &record.outcome else {
                reject(
                    report,
                    RecordType::Invoice,
                    record.rejections(RecordType::Invoice),
                );
                continue;
            };
            let content_json =
                canonical_json(&valid.invoice).map_err(|source| StoreError::Encode {
                    subject: format!("invoice {}", record.key),
                    source,
                })?;
            let sha = sha256_hex(&content_json);
            let stored =
                retry_on_conflict(|| self.store.upsert_invoice(valid, &content_json, &sha)).await?;
            match stored {
                InvoiceUpsert::Stored { outcome, .. } => count(&mut report.invoices, outcome),
                InvoiceUpsert::UnknownCustomer => {
                    let rejection =
                        unknown_customer(record, &valid.invoice.customer, rejected_codes);
                    reject(report, RecordType::Invoice, vec![rejection]);
                }
            }
        }
        Ok(())
    }

    /// Reads the latest revision of invoice `number` and its customer.
    pub(crate) async fn get_invoice(
        &self,
        number: &str,
    ) -> Result<(StoredInvoice, Customer), QueryError> {
        let (invoice, customer) = self
            .store
            .get_invoice_with_customer(number)
            .await?
            .ok_or_else(|| QueryError::InvoiceNotFound {
                number: number.to_owned(),
            })?;
        let customer = customer.ok_or_else(|| StoreError::Corrupt {
            subject: format!("invoice {number}"),
            reason: format!("its customer {:?} is missing", invoice.invoice.customer),
        })?;
        Ok((invoice, customer))
    }

    pub(crate) async fn get_customer(&self, code: &str) -> Result<Customer, QueryError> {
        self.store
            .get_customer(code)
            .await?
            .ok_or_else(|| QueryError::CustomerNotFound {
                code: code.to_owned(),
            })
    }

    /// Lists one page of posted invoices issued in [`issued_since`, `issued_before`), oldest first
    /// by (`issued_at_utc`, `number`).
    pub(crate) async fn list_to_notify(
        &self,
        request: ListRequest,
    ) -> Result<InvoicePage, QueryError> {
        let filter = &request.filter;
        if let (Some(since), Some(before)) = (filter.issued_since, filter.issued_before)
            && since > before
        {
            return Err(QueryError::InvalidArgument {
                field: "issued_since",
                message: format!(
                    "{since} is after issued_before {before}; swap them or widen the window"
                ),
            });
        }
        let page_size = match request.page_size {
            0 => DEFAULT_PAGE_SIZE,
            size => size.min(MAX_PAGE_SIZE),
        };
        let after = match request.page_token.as_str() {
            "" => None,
            token => Some(decode_token(filter, token)?),
        };
        let query = ListQuery {
            issued_since: filter.issued_since,
            issued_before: filter.issued_before,
            kinds: filter.kinds.clone(),
            after,
            limit: u64::from(page_size) + 1,
        };
        let mut invoices = self.store.list_posted(&query).await?;
        let mut next_page_token = String::new();
        if invoices.len() > page_size as usize {
            invoices.truncate(page_size as usize);
            if let Some(last) = invoices.last() {
                next_page_token = encode_token(filter, last.issued_at_utc, &last.number);
            }
        }
        Ok(InvoicePage {
            invoices,
            next_page_token,
        })
    }
}

/// Adds the rejections of one record to the report, counting the record once under
/// `counts_as`, and logs each.
fn reject(report: &mut ImportReport, counts_as: RecordType, rejections: Vec<Rejection>) {
    let counts = match counts_as {
        RecordType::Customer => &mut report.customers,
        RecordType::Invoice | RecordType::Unknown => &mut report.invoices,
    };
    counts.rejected += 1;
    for rejection in rejections {
        log_rejection(&rejection);
        report.rejections.push(rejection);
    }
}

fn log_rejection(rejection: &Rejection) {
    let Rejection {
        record_type,
        key,
        field,
        message,
    } = rejection;
    match record_type {
        RecordType::Customer => {
            tracing::info!(customer = %key, field = %field, reason = %message, "customer rejected");
        }
        RecordType::Invoice => {
            tracing::info!(invoice = %key, field = %field, reason = %message, "invoice rejected");
        }
        RecordType::Unknown => {
            tracing::info!(key = %key, field = %field, reason = %message, "record of unknown type rejected");
        }
    }
}

/// Adds the warnings of one record to the report and logs each.
fn warn(report: &mut ImportReport, warnings: Vec<Rejection>) {
    for warning in warnings {
        log_warning(&warning);
        report.warnings.push(warning);
    }
}

fn log_warning(warning: &Rejection) {
    let Rejection {
        record_type,
        key,
        field,
        message,
    } = warning;
    match record_type {
        RecordType::Customer => {
            tracing::info!(customer = %key, field = %field, reason = %message, "warning on customer record");
        }
        RecordType::Invoice => {
            tracing::info!(invoice = %key, field = %field, reason = %message, "warning on invoice record");
        }
        RecordType::Unknown => {
            tracing::info!(key = %key, field = %field, reason = %message, "warning on record of unknown type");
        }
    }
}

fn count(counts: &mut ImportCounts, outcome: Upserted) {
    match outcome {
        Upserted::Created => counts.created += 1,
        Upserted::Updated => counts.updated += 1,
        Upserted::Unchanged => counts.unchanged += 1,
    }
}

fn unknown_customer(
    record: &CheckedRecord<ValidInvoice>,
    code: &str,
    rejected_codes: &HashSet<String>,
) -> Rejection {
    let message = if rejected_codes.contains(code) {
        format!(
            "customer {code:?} was rejected in this export and is not in the database; fix the customer record"
        )
    } else {
        format!(
            "unknown customer {code:?}: it is neither in this export nor in the database; export the customer too"
        )
    };
    Rejection {
        record_type: RecordType::Invoice,
        key: record.key.clone(),
        field: format!("{}.customer", record.path),
        message,
    }
}

/// Runs `attempt` again once when it fails on a unique key: another import inserted the same
/// customer or invoice at the same moment, and the second attempt updates that row instead.
async fn retry_on_conflict<T, F, Fut>(mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    match attempt().await {
        Err(error) if error.is_unique_violation() => {
            tracing::debug!(attempt = 2, %error, "unique key conflict with a concurrent import, retrying");
            attempt().await
        }
        result => result,
    }
}

#[cfg(test)]
mod tests;
