//! Small exports written for the hard cases.

use serde_json::{Value, json};

pub(crate) fn contact(name: &str, email: &str, role: &str) -> Value {
    json!({"name": name, "email": email, "invoice_role": role})
}

pub(crate) fn customer(code: &str, contacts: Vec<Value>) -> Value {
    json!({
        "code": code,
        "name": format!("Customer {code}"),
        "language": "en",
        "address": ["1 Main Street", "Springfield"],
        "contacts": contacts,
    })
}

/// Builds a posted invoice with one line of `amount`, issued a day before the test runs.
pub(crate) fn invoice(number: &str, customer: &str, amount: &str) -> Value {
    json!({
        "number": number,
        "customer": customer,
        "kind": "invoice",
        "status": "posted",
        "issued_at": yesterday(),
        "currency": "EUR",
        "terms": "Net 30",
        "lines": [{"sku": "W-1", "description": "Widget", "quantity": "1", "unit": "pcs", "unit_price": amount, "amount": amount}],
        "subtotal": amount,
        "taxes": [],
        "total": amount,
        "notes": "Thank you.",
    })
}

/// Returns the RFC 3339 instant one day ago, so invoices fall inside the default 30-day lookback.
fn yesterday() -> String {
    (chrono::Utc::now() - chrono::Duration::days(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub(crate) fn export(customers: Vec<Value>, invoices: Vec<Value>) -> String {
    json!({"format": "invoicer.erp-export.v1", "customers": customers, "invoices": invoices})
        .to_string()
}
