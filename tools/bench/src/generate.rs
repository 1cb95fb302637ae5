//! Generated ERP exports: `count` posted invoices over `count / 20` customers (at least one),
//! each with one billing contact and three lines that add up.

use chrono::{Duration, TimeZone, Utc};
use serde_json::{Value, json};

const INVOICES_PER_CUSTOMER: usize = 20;

pub(crate) fn export(count: usize) -> String {
    let customers = count.div_ceil(INVOICES_PER_CUSTOMER).max(1);
    let customer_list: Vec<Value> = (0..customers).map(customer).collect();
    let start = Utc
        .with_ymd_and_hms(2026, 1, 1, 8, 0, 0)
        .single()
        .unwrap_or_default();
    let invoices: Vec<Value> = (0..count)
        .map(|index| {
            invoice(
                index,
                index % customers,
                start + Duration::minutes(index as i64),
            )
        })
        .collect();
    json!({
        "format": "invoicer.erp-export.v1",
        "customers": customer_list,
        "invoices": invoices,
    })
    .to_string()
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
