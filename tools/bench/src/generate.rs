//! Generated ERP exports: `count` posted invoices over `count / 20` customers (at least one),
//! each with one billing contact and three lines that add up.

use chrono::{Duration, TimeZone, Utc};
use serde_json::{Value, json};

const INVOICES_PER_CUSTOMER: usize = 20;

/// Invoices per generated file. The server takes an export document of at most 64 MiB, and
/// 20,000 generated invoices come to about 13 MB.
const INVOICES_PER_FILE: usize = 20_000;

/// Returns the export of `count` invoices as one or more documents, each with every customer
/// and at most `INVOICES_PER_FILE` invoices, to import one after the other.
pub(crate) fn exports(count: usize) -> Vec<String> {
    let customers = count.div_ceil(INVOICES_PER_CUSTOMER).max(1);
    let customer_list: Vec<Value> = (0..customers).map(customer).collect();
    let start = Utc
        .with_ymd_and_hms(2026, 1, 1, 8, 0, 0)
        .single()
        .unwrap_or_default();
    let mut documents = Vec::new();
    let mut first = 0;
    while first < count || documents.is_empty() {
        let last = (first + INVOICES_PER_FILE).min(count);
        let invoices: Vec<Value> = (first..last)
            .map(|index| {
                invoice(
                    index,
                    index % customers,
                    start + Duration::minutes(index as i64),
                )
            })
            .collect();
        let document = json!({
            "format": "invoicer.erp-export.v1",
            "customers": customer_list,
            "invoices": invoices,
        });
        documents.push(document.to_string());
        first = last;
    }
    documents
}

fn customer(index: usize) -> Value {
    json!({
        "code": format!("B-{index:06}"),
        "name": format!("Bench Customer {index} Ltd"),
        "language": if index.is_multiple_of(2) { "en" } else { "de" },
        "address": [format!("{} Bench Street", index + 1), "12345 Springfield"],
        "contacts": [{
            "name": format!("Accounts {index}"),
            "email": format!("ap{index}@bench-customer.example"),
            "invoice_role": "to"
        }]
    })
}

fn invoice(index: usize, customer: usize, issued: chrono::DateTime<Utc>) -> Value {
    // Amounts in cents, so that the lines add up exactly.
    let prices = [
        1250 + (index % 97) as u64,
        4990,
        99 * (1 + (index % 5) as u64),
    ];
    let quantities = [1 + (index % 3) as u64, 1, 2];
    let amounts: Vec<u64> = prices.iter().zip(quantities).map(|(p, q)| p * q).collect();
    let subtotal: u64 = amounts.iter().sum();
    let tax = subtotal * 19 / 100;
    let lines: Vec<Value> = (0..3)
        .map(|line| {
            json!({
                "sku": format!("SKU-{line}"),
                "description": format!("Service item {line} for order {index}"),
                "quantity": quantities[line].to_string(),
                "unit": "pcs",
                "unit_price": cents(prices[line]),
                "amount": cents(amounts[line]),
            })
        })
        .collect();
    json!({
        "number": format!("BN-{index:07}"),
        "customer": format!("B-{customer:06}"),
        "kind": "invoice",
        "status": "posted",
        "issued_at": issued.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "due_date": (issued + Duration::days(30)).format("%Y-%m-%d").to_string(),
        "currency": "EUR",
        "terms": "Net 30",
        "lines": lines,
        "subtotal": cents(subtotal),
        "taxes": [{"name": "VAT 19%", "rate": "19", "amount": cents(tax)}],
        "total": cents(subtotal + tax),
    })
}

fn cents(value: u64) -> String {
    format!("{}.{:02}", value / 100, value % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invoice_numbers(documents: &[String]) -> Vec<String> {
        documents
            .iter()
            .flat_map(|document| {
                let value: Value = serde_json::from_str(document).expect("generated JSON");
                value["invoices"]
                    .as_array()
                    .expect("an invoices array")
                    .iter()
                    .map(|invoice| invoice["number"].as_str().unwrap_or_default().to_owned())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn large_export_splits_into_files() {
        let documents = exports(INVOICES_PER_FILE * 2 + 1);
        assert_eq!(documents.len(), 3);
        let numbers = invoice_numbers(&documents);
        assert_eq!(numbers.len(), INVOICES_PER_FILE * 2 + 1);
        let distinct: std::collections::BTreeSet<&String> = numbers.iter().collect();
        assert_eq!(distinct.len(), numbers.len(), "an invoice is in two files");
    }

    #[test]
    fn small_export_is_one_file() {
        assert_eq!(exports(10).len(), 1);
        assert_eq!(invoice_numbers(&exports(10)).len(), 10);
    }

    #[test]
    fn file_stays_under_import_limit() {
        let documents = exports(INVOICES_PER_FILE);
        assert!(
            documents[0].len() < 64 << 20,
            "{} bytes",
            documents[0].len()
        );
    }
}
