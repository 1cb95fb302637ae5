//! Parsing and checking an ERP export (format `invoicer.erp-export.v1`), one JSON document or
//! JSON Lines, into records that are each valid or rejected on their own.
//!
//! Everything here needs no database; whether an invoice's customer exists is checked when
//! the invoice is stored.

mod customer;
mod document;
mod fields;
mod invoice;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

pub(crate) use customer::MAX_CODE_CHARS;
pub use document::FORMAT;
pub(crate) use document::parse_export;
use fields::Checker;
pub(crate) use fields::FieldProblem;
pub(crate) use invoice::{MAX_NUMBER_CHARS, ValidInvoice};

use crate::model::{Customer, RecordType, Rejection};

/// One record of the export after its checks.
#[derive(Debug, Clone)]
pub(crate) struct CheckedRecord<T> {
    /// Location of the record, such as `invoices[3]` or, in JSON Lines, `line[4]` (1-based).
    pub(crate) path: String,
    /// Customer code or invoice number as written, empty when the record has none.
    pub(crate) key: String,
    pub(crate) outcome: Result<T, Vec<FieldProblem>>,
    /// Problems that did not reject the record, such as one invalid address in a list whose
    /// other addresses are valid. A rejected record keeps its warnings too.
    pub(crate) warnings: Vec<FieldProblem>,
}

impl<T> CheckedRecord<T> {
    fn new(path: &str, key: String, value: Option<T>, checker: Checker) -> Self {
        let outcome = match value {
            Some(value) if checker.problems.is_empty() => Ok(value),
            _ => Err(checker.problems),
        };
        CheckedRecord {
            path: path.to_owned(),
            key,
            outcome,
            warnings: checker.warnings,
        }
    }

    /// Rejects the record, keeping any problems found before.
    pub(crate) fn reject(&mut self, field: String, message: String) {
        let problem = FieldProblem { field, message };
        match &mut self.outcome {
            Ok(_) => self.outcome = Err(vec![problem]),
            Err(problems) => problems.push(problem),
        }
    }

    pub(crate) fn rejections(&self, record_type: RecordType) -> Vec<Rejection> {
        let Err(problems) = &self.outcome else {
            return Vec::new();
        };
        self.to_report_entries(problems, record_type)
    }

    /// Returns the warnings in the shape of rejections, as the import report carries them.
    pub(crate) fn warnings(&self, record_type: RecordType) -> Vec<Rejection> {
        self.to_report_entries(&self.warnings, record_type)
    }

    fn to_report_entries(
        &self,
        problems: &[FieldProblem],
        record_type: RecordType,
    ) -> Vec<Rejection> {
        problems
            .iter()
            .map(|problem| Rejection {
                record_type,
                key: self.key.clone(),
                field: problem.field.clone(),
                message: problem.message.clone(),
            })
            .collect()
    }
}

/// An export after parsing: every record with its outcome, in document order.
#[derive(Debug, Default)]
pub(crate) struct ParsedExport {
    pub(crate) customers: Vec<CheckedRecord<Customer>>,
    pub(crate) invoices: Vec<CheckedRecord<ValidInvoice>>,
    /// JSON Lines records whose `type` is missing or unknown, so neither list contains them.
    pub(crate) untyped: Vec<UntypedRecord>,
}

/// A rejected JSON Lines record of unknown type.
#[derive(Debug, Clone)]
pub(crate) struct UntypedRecord {
    pub(crate) rejection: Rejection,
    /// Rejected count that the record adds to. It is the customers' count when the record has
    /// a `code` and no `number`, otherwise the invoices', so a rejection never leaves both at zero.
    pub(crate) counts_as: RecordType,
}

impl ParsedExport {
    /// Rejects every record whose key appears more than once: the export does not say which
    /// of them is right, so none is imported.
    pub(crate) fn reject_duplicates(&mut self) {
        reject_duplicate_keys(&mut self.customers, "code", "customer code");
        reject_duplicate_keys(&mut self.invoices, "number", "invoice number");
    }
}

fn reject_duplicate_keys<T>(records: &mut [CheckedRecord<T>], field: &str, key_name: &str) {
    let mut paths_by_key: HashMap<String, Vec<String>> = HashMap::new();
    for record in records.iter().filter(|record| !record.key.is_empty()) {
        paths_by_key
            .entry(record.key.clone())
            .or_default()
            .push(record.path.clone());
    }
    for record in records.iter_mut() {
        let Some(paths) = paths_by_key
            .get(&record.key)
            .filter(|paths| paths.len() > 1)
        else {
            continue;
        };
        let others: Vec<&str> = paths
            .iter()
            .filter(|path| **path != record.path)
            .map(String::as_str)
            .collect();
        let message = format!(
            "duplicate {key_name} {:?}: it also appears at {}; each {key_name} may appear once in an export",
            record.key,
            others.join(", ")
        );
        record.reject(format!("{}.{field}", record.path), message);
    }
}
