//! Checks of one `invoice` record: field syntax, amounts against the currency's minor digits,
//! and the two sums (lines to subtotal, subtotal plus taxes to total).

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use invoicer_domain::Currency;
use rust_decimal::Decimal;
use serde_json::Value;

use super::CheckedRecord;
use super::fields::{Checker, Lines, Scope};
use crate::model::{Invoice, InvoiceKind, InvoiceLine, InvoiceStatus, Tax};

/// Maximum length of an invoice number, in characters. The export format sets none; this
/// bound keeps numbers usable as index keys and in attachment file names.
pub(crate) const MAX_NUMBER_CHARS: usize = 255;
/// Lines of one invoice; the PDF of a longer one would run to hundreds of pages.
pub(crate) const MAX_LINES: usize = 1000;

const INVOICE_FIELDS: &[&str] = &[
    "number",
    "customer",
    "kind",
    "status",
    "order_number",
    "po_number",
    "issued_at",
    "due_date",
    "currency",
    "terms",
    "lines",
    "subtotal",
    "taxes",
    "total",
    "notes",
    "notify_opt_out",
];
const LINE_FIELDS: &[&str] = &[
    "sku",
    "description",
    "quantity",
    "unit",
    "unit_price",
    "amount",
    "tax_rate",
];
const TAX_FIELDS: &[&str] = &["name", "rate", "amount"];
const KINDS: &[&str] = &["invoice", "credit_note"];
const STATUSES: &[&str] = &["draft", "posted", "void"];

/// An invoice that passed every check that needs no database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ValidInvoice {
    pub(crate) invoice: Invoice,
    /// `issued_at` in UTC, truncated to microseconds as PostgreSQL stores it.
    pub(crate) issued_at_utc: DateTime<Utc>,
}

/// Checks the invoice record at `path`. `type_field` allows the JSON Lines `type` field.
pub(crate) fn check_invoice(
    value: &Value,
    path: &str,
    type_field: bool,
) -> CheckedRecord<ValidInvoice> {
    let key = value
        .get("number")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut checker = Checker::default();
    let invoice = checker.object(value, path).and_then(|scope| {
        let mut known = INVOICE_FIELDS.to_vec();
        if type_field {
            known.push("type");
        }
        checker.reject_unknown_fields(&scope, &known);
        read_invoice(&mut checker, &scope)
    });
    CheckedRecord::new(path, key, invoice, checker)
}

/// The parsed values of an invoice's amounts, for the sums.
struct Amounts {
    lines: Vec<Decimal>,
    subtotal: Decimal,
    taxes: Vec<Decimal>,
    total: Decimal,
}

/// The lines, taxes and totals of a valid invoice, as the ERP wrote them.
struct Priced {
    lines: Vec<InvoiceLine>,
    subtotal: String,
    taxes: Vec<Tax>,
    total: String,
}

fn read_invoice(checker: &mut Checker, scope: &Scope<'_>) -> Option<ValidInvoice> {
    let number = checker.key(scope, "number", MAX_NUMBER_CHARS);
    let customer = checker.key(scope, "customer", super::customer::MAX_CODE_CHARS);
    let kind = checker.required_choice(scope, "kind", InvoiceKind::parse, KINDS);
    let status = checker.required_choice(scope, "status", InvoiceStatus::parse, STATUSES);
    let order_number = checker.optional_text(scope, "order_number", Lines::Single);
    let po_number = checker.optional_text(scope, "po_number", Lines::Single);
    let issued = read_issued_at(checker, scope);
    let due_date = read_due_date(checker, scope);
    let currency = read_currency(checker, scope);
    let terms = checker.optional_text(scope, "terms", Lines::Single);
    let notes = checker.optional_text(scope, "notes", Lines::Multiple);
    let notify_opt_out = checker.flag(scope, "notify_opt_out");
    let priced = read_priced(checker, scope, currency)?;

    let (issued_at, issued_at_utc) = issued?;
    let invoice = Invoice {
        number: number?,
        customer: customer?,
        kind: kind?,
        status: status?,
        order_number,
        po_number,
        issued_at,
        due_date,
        currency: currency?.code().to_owned(),
        terms,
        lines: priced.lines,
        subtotal: priced.subtotal,
        taxes: priced.taxes,
        total: priced.total,
        notes,
        notify_opt_out,
    };
    Some(ValidInvoice {
        invoice,
        issued_at_utc,
    })
}

/// Reads the lines, taxes, subtotal and total, and checks the sums when every amount is
/// valid. Returns `None` when any problem was reported, also one found before this step.
fn read_priced(
    checker: &mut Checker,
    scope: &Scope<'_>,
    currency: Option<Currency>,
) -> Option<Priced> {
    let problems_before = checker.problems.len();
    let lines = read_lines(checker, scope, currency);
    let subtotal = checker.amount(scope, "subtotal", currency);
    let taxes = read_taxes(checker, scope, currency);
    let total = checker.amount(scope, "total", currency);
    if currency.is_none() || checker.problems.len() > problems_before {
        return None;
    }

    let (lines, line_amounts): (Vec<InvoiceLine>, Vec<Decimal>) = lines.into_iter().unzip();
    let (taxes, tax_amounts): (Vec<Tax>, Vec<Decimal>) = taxes.into_iter().unzip();
    let (subtotal, subtotal_value) = subtotal?;
    let (total, total_value) = total?;
    let amounts = Amounts {
        lines: line_amounts,
        subtotal: subtotal_value,
        taxes: tax_amounts,
        total: total_value,
    };
    check_sums(checker, scope, &amounts);
    if !checker.problems.is_empty() {
        return None;
    }
    Some(Priced {
        lines,
        subtotal,
        taxes,
        total,
    })
}

fn read_issued_at(checker: &mut Checker, scope: &Scope<'_>) -> Option<(String, DateTime<Utc>)> {
    let text = checker.required_text(scope, "issued_at", Lines::Single)?;
    match DateTime::parse_from_rfc3339(&text) {
        Ok(instant) => Some((text, instant.with_timezone(&Utc).trunc_subsecs(6))),
        Err(error) => {
            checker.report(
                scope.field_path("issued_at"),
                format!(
                    "invalid timestamp {text:?}: {error}; expected RFC 3339 with an offset, such as \
                     \"2026-12-03T16:20:00-06:00\""
                ),
            );
            None
        }
    }
}

fn read_due_date(checker: &mut Checker, scope: &Scope<'_>) -> Option<String> {
    let text = checker.optional_text(scope, "due_date", Lines::Single)?;
    // chrono alone also accepts one-digit months and days, which ISO 8601 does not.
    let shaped = text.len() == 10 && text.as_bytes()[4] == b'-' && text.as_bytes()[7] == b'-';
    if shaped && NaiveDate::parse_from_str(&text, "%Y-%m-%d").is_ok() {
        return Some(text);
    }
    checker.report(
        scope.field_path("due_date"),
        format!("invalid date {text:?}: expected an ISO 8601 date such as \"2027-01-02\""),
    );
    None
}

fn read_currency(checker: &mut Checker, scope: &Scope<'_>) -> Option<Currency> {
    let code = checker.required_text(scope, "currency", Lines::Single)?;
    match Currency::parse(&code) {
        Ok(currency) => Some(currency),
        Err(error) => {
            checker.report(scope.field_path("currency"), error.to_string());
            None
        }
    }
}

fn read_lines(
    checker: &mut Checker,
    scope: &Scope<'_>,
    currency: Option<Currency>,
) -> Vec<(InvoiceLine, Decimal)> {
    let mut lines = Vec::new();
    let items = checker.array(scope, "lines", true);
    if items.len() > MAX_LINES {
        checker.report(
            scope.field_path("lines"),
            format!("has {} lines; the maximum is {MAX_LINES}", items.len()),
        );
        return lines;
    }
    for (path, item) in items {
        let Some(line_scope) = checker.object(item, &path) else {
            continue;
        };
        checker.reject_unknown_fields(&line_scope, LINE_FIELDS);
        let sku = checker.optional_text(&line_scope, "sku", Lines::Single);
        let description = checker.optional_text(&line_scope, "description", Lines::Multiple);
        let quantity = checker.optional_decimal(&line_scope, "quantity");
        let unit = checker.optional_text(&line_scope, "unit", Lines::Single);
        // A unit price is a rate per unit, so like quantities and tax rates it may have more
        // digits than the currency. Only the amounts that are summed must fit the currency.
        let unit_price = checker.optional_decimal(&line_scope, "unit_price");
        let tax_rate = checker.optional_decimal(&line_scope, "tax_rate");
        let Some((amount, value)) = checker.amount(&line_scope, "amount", currency) else {
            continue;
        };
        let line = InvoiceLine {
            sku,
            description,
            quantity: quantity.map(|(text, _)| text),
            unit,
            unit_price: unit_price.map(|(text, _)| text),
            amount,
            tax_rate: tax_rate.map(|(text, _)| text),
        };
        lines.push((line, value));
    }
    lines
}

fn read_taxes(
    checker: &mut Checker,
    scope: &Scope<'_>,
    currency: Option<Currency>,
) -> Vec<(Tax, Decimal)> {
    let mut taxes = Vec::new();
    for (path, item) in checker.array(scope, "taxes", false) {
        let Some(tax_scope) = checker.object(item, &path) else {
            continue;
        };
        checker.reject_unknown_fields(&tax_scope, TAX_FIELDS);
        let name = checker.optional_text(&tax_scope, "name", Lines::Single);
        let rate = checker.optional_decimal(&tax_scope, "rate");
        let Some((amount, value)) = checker.amount(&tax_scope, "amount", currency) else {
            continue;
        };
        taxes.push((
            Tax {
                name,
                rate: rate.map(|(text, _)| text),
                amount,
            },
            value,
        ));
    }
    taxes
}

/// Checks that the lines add up to the subtotal and subtotal plus taxes to the total. The
/// amounts are compared as numbers, so `"25.0"` equals `"25.00"`.
fn check_sums(checker: &mut Checker, scope: &Scope<'_>, amounts: &Amounts) {
    let Some(lines_sum) = checked_sum(&amounts.lines) else {
        checker.report(
            scope.field_path("lines"),
            "the sum of lines[].amount is out of range",
        );
        return;
    };
    if lines_sum != amounts.subtotal {
        checker.report(
            scope.field_path("subtotal"),
            format!(
                "subtotal is {} but lines[].amount add up to {lines_sum}",
                amounts.subtotal
            ),
        );
    }
    let taxes_sum = checked_sum(&amounts.taxes);
    let expected_total = taxes_sum.and_then(|taxes| taxes.checked_add(amounts.subtotal));
    let (Some(taxes_sum), Some(expected_total)) = (taxes_sum, expected_total) else {
        checker.report(
            scope.field_path("taxes"),
            "the sum of subtotal and taxes[].amount is out of range",
        );
        return;
    };
    if expected_total != amounts.total {
        checker.report(
            scope.field_path("total"),
            format!(
                "total is {} but subtotal {} plus taxes[].amount {taxes_sum} is {expected_total}",
                amounts.total, amounts.subtotal
            ),
        );
    }
}

fn checked_sum(values: &[Decimal]) -> Option<Decimal> {
    values
        .iter()
        .try_fold(Decimal::ZERO, |sum, value| sum.checked_add(*value))
}
