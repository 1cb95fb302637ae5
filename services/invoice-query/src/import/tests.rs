//! Tests of the export checks: one case per rule, each asserting the field path and that the
//! message names the offending value.

use invoicer_domain::email::parse_address_list;
use serde_json::{Value, json};

use super::fields::FieldProblem;
use super::{CheckedRecord, ParsedExport, ValidInvoice, parse_export};
use crate::model::{Customer, InvoiceKind, InvoiceStatus, RecipientRole, RecordType};

fn customer_json() -> Value {
    json!({
        "code": "C-1001",
        "name": "Müller & Söhne GmbH",
        "language": "de",
        "address": ["Hauptstraße 5", "10115 Berlin", "Germany"],
        "tax_id": "DE123456789",
        "contacts": [
            { "name": "Anna Schmidt", "email": "anna.schmidt@mueller-soehne.example", "invoice_role": "to" },
            { "name": "Kreditoren", "email": "kreditoren@mueller-soehne.example", "invoice_role": "cc" },
            { "name": "Max Weber", "email": "max@mueller-soehne.example", "invoice_role": "none" }
        ]
    })
}

fn invoice_json() -> Value {
    json!({
        "number": "INV-2026-0001",
        "customer": "C-1001",
        "kind": "invoice",
        "status": "posted",
        "order_number": "SO-5521",
        "po_number": "PO-77",
        "issued_at": "2026-12-03T16:20:00-06:00",
        "due_date": "2027-01-02",
        "currency": "EUR",
        "terms": "Net 30",
        "lines": [
            { "sku": "WID-1", "description": "Widget, blue", "quantity": "2", "unit": "pcs",
              "unit_price": "12.50", "amount": "25.00", "tax_rate": "19" }
        ],
        "subtotal": "25.00",
        "taxes": [ { "name": "VAT 19%", "rate": "19", "amount": "4.75" } ],
        "total": "29.75",
        "notes": "Thank you for your order."
    })
}

fn check_customer(value: &Value) -> CheckedRecord<Customer> {
    super::customer::check_customer(value, "customers[0]", false)
}

fn check_invoice(value: &Value) -> CheckedRecord<ValidInvoice> {
    super::invoice::check_invoice(value, "invoices[0]", false)
}

fn valid_customer(value: &Value) -> Customer {
    check_customer(value)
        .outcome
        .unwrap_or_else(|problems| panic!("{problems:?}"))
}

fn valid_invoice(value: &Value) -> ValidInvoice {
    check_invoice(value)
        .outcome
        .unwrap_or_else(|problems| panic!("{problems:?}"))
}

/// Returns the one problem of the customer after `change`, and fails when there are none or several.
fn customer_problem(change: impl FnOnce(&mut Value)) -> FieldProblem {
    let mut value = customer_json();
    change(&mut value);
    let problems = check_customer(&value)
        .outcome
        .expect_err("customer should be rejected");
    assert_eq!(problems.len(), 1, "{problems:?}");
    problems.into_iter().next().unwrap()
}

/// Returns the one problem of the invoice after `change`, and fails when there are none or several.
fn invoice_problem(change: impl FnOnce(&mut Value)) -> FieldProblem {
    let mut value = invoice_json();
    change(&mut value);
    let problems = check_invoice(&value)
        .outcome
        .expect_err("invoice should be rejected");
    assert_eq!(problems.len(), 1, "{problems:?}");
    problems.into_iter().next().unwrap()
}

/// Checks the example customer with the email field of `contacts[1]` replaced by `email`.
fn check_second_contact_email(email: &str) -> CheckedRecord<Customer> {
    let mut value = customer_json();
    value["contacts"][1]["email"] = json!(email);
    check_customer(&value)
}

fn parse(text: &str) -> ParsedExport {
    parse_export(text.as_bytes()).unwrap_or_else(|error| panic!("{error}"))
}

fn parse_error(text: &[u8]) -> String {
    parse_export(text).expect_err("document should be rejected")
}

// Customers.

#[test]
fn customer_spec_example_is_valid() {
    let customer = valid_customer(&customer_json());
    assert_eq!(customer.code, "C-1001");
    assert_eq!(customer.language.as_deref(), Some("de"));
    assert_eq!(customer.address.len(), 3);
    assert_eq!(customer.contacts.len(), 3);
    assert_eq!(customer.contacts[1].invoice_role, RecipientRole::Cc);
    assert_eq!(customer.contacts[2].invoice_role, RecipientRole::None);
}

#[test]
fn customer_code_missing() {
    let problem = customer_problem(|c| {
        c.as_object_mut().unwrap().remove("code");
    });
    assert_eq!(problem.field, "customers[0].code");
    assert_eq!(problem.message, "missing required field");
}

#[test]
fn customer_code_empty() {
    let problem = customer_problem(|c| c["code"] = json!(""));
    assert_eq!(problem.field, "customers[0].code");
    assert_eq!(problem.message, "must not be empty");
}

#[test]
fn customer_code_too_long() {
    let code = "C".repeat(65);
    let problem = customer_problem(|c| c["code"] = json!(code));
    assert_eq!(problem.field, "customers[0].code");
    assert!(
        problem
            .message
            .contains("is 65 characters long; the maximum is 64"),
        "{}",
        problem.message
    );
}

#[test]
fn customer_code_of_64_characters_is_valid() {
    let mut value = customer_json();
    value["code"] = json!("C".repeat(64));
    assert!(check_customer(&value).outcome.is_ok());
}

#[test]
fn customer_code_with_control_character() {
    let problem = customer_problem(|c| c["code"] = json!("C-\u{7}1"));
    assert_eq!(problem.field, "customers[0].code");
    assert!(
        problem.message.contains("\"C-\\u{7}1\""),
        "{}",
        problem.message
    );
    assert!(
        problem.message.contains("control character U+0007"),
        "{}",
        problem.message
    );
}

#[test]
fn customer_code_with_tab() {
    let problem = customer_problem(|c| c["code"] = json!("C\t1"));
    assert!(
        problem.message.contains("contains a tab"),
        "{}",
        problem.message
    );
}

#[test]
fn customer_code_with_surrounding_space() {
    let problem = customer_problem(|c| c["code"] = json!(" C-1001"));
    assert!(
        problem
            .message
            .contains("\" C-1001\" has leading or trailing white space"),
        "{}",
        problem.message
    );
}

#[test]
fn customer_code_not_a_string() {
    let problem = customer_problem(|c| c["code"] = json!(1001));
    assert_eq!(problem.message, "must be a string, found the number 1001");
}

#[test]
fn customer_name_missing() {
    let problem = customer_problem(|c| {
        c.as_object_mut().unwrap().remove("name");
    });
    assert_eq!(problem.field, "customers[0].name");
}

#[test]
fn customer_language_invalid() {
    let problem = customer_problem(|c| c["language"] = json!("de_DE"));
    assert_eq!(problem.field, "customers[0].language");
    assert!(problem.message.contains("\"de_DE\""), "{}", problem.message);
}

#[test]
fn customer_language_optional_and_region_tags_valid() {
    let mut value = customer_json();
    value.as_object_mut().unwrap().remove("language");
    assert_eq!(valid_customer(&value).language, None);
    value["language"] = json!("pt-BR");
    assert_eq!(valid_customer(&value).language.as_deref(), Some("pt-BR"));
}

#[test]
fn customer_address_line_break() {
    let problem = customer_problem(|c| c["address"][1] = json!("10115\nBerlin"));
    assert_eq!(problem.field, "customers[0].address[1]");
    assert!(
        problem
            .message
            .contains("\"10115\\nBerlin\" contains a line break"),
        "{}",
        problem.message
    );
}

#[test]
fn customer_unknown_field() {
    let problem = customer_problem(|c| c["vat"] = json!("DE1"));
    assert_eq!(problem.field, "customers[0].vat");
    assert!(
        problem.message.starts_with("unknown field \"vat\""),
        "{}",
        problem.message
    );
}

#[test]
fn contact_email_invalid() {
    let problem = customer_problem(|c| c["contacts"][0]["email"] = json!("anna.schmidt.example"));
    assert_eq!(problem.field, "customers[0].contacts[0].email");
    assert!(
        problem
            .message
            .contains("invalid email address \"anna.schmidt.example\""),
        "{}",
        problem.message
    );
    assert!(
        problem.message.contains("contact \"Anna Schmidt\""),
        "{}",
        problem.message
    );
    assert!(
        problem.message.ends_with("missing `@`"),
        "{}",
        problem.message
    );
}

#[test]
fn contact_email_missing() {
    let problem = customer_problem(|c| {
        c["contacts"][0].as_object_mut().unwrap().remove("email");
    });
    assert_eq!(problem.field, "customers[0].contacts[0].email");
    assert_eq!(problem.message, "missing required field");
}

#[test]
fn contact_email_with_quoted_display_name() {
    let record = check_second_contact_email("\"Lee, Jordan\" <j@x.example>");
    assert_eq!(record.warnings, Vec::new());
    let customer = record
        .outcome
        .unwrap_or_else(|problems| panic!("{problems:?}"));
    let email = &customer.contacts[1].email;
    assert_eq!(email, "\"Lee, Jordan\" <j@x.example>");
    let mailboxes = parse_address_list(email);
    assert_eq!(mailboxes.len(), 1, "{mailboxes:?}");
    let mailbox = mailboxes[0].as_ref().unwrap();
    assert_eq!(mailbox.name.as_deref(), Some("Lee, Jordan"));
    assert_eq!(mailbox.address, "j@x.example");
}

#[test]
fn contact_email_list_separated_by_semicolon() {
    let record = check_second_contact_email("ap@x.example; archive@x.example");
    assert_eq!(record.warnings, Vec::new());
    let customer = record
        .outcome
        .unwrap_or_else(|problems| panic!("{problems:?}"));
    assert_eq!(
        customer.contacts[1].email,
        "ap@x.example; archive@x.example"
    );
}

#[test]
fn contact_email_list_separated_by_comma() {
    let record = check_second_contact_email("ap@x.example,Archive <archive@x.example>");
    assert_eq!(record.warnings, Vec::new());
    let customer = record
        .outcome
        .unwrap_or_else(|problems| panic!("{problems:?}"));
    assert_eq!(
        customer.contacts[1].email,
        "ap@x.example,Archive <archive@x.example>"
    );
}

#[test]
fn contact_email_list_with_one_invalid_element() {
    let record = check_second_contact_email("a@x.example, broken");
    assert_eq!(record.warnings.len(), 1, "{:?}", record.warnings);
    let warning = &record.warnings[0];
    assert_eq!(warning.field, "customers[0].contacts[1].email");
    assert!(
        warning.message.contains("invalid email address \"broken\""),
        "{}",
        warning.message
    );
    assert!(
        warning.message.contains("contact \"Kreditoren\""),
        "{}",
        warning.message
    );
    assert!(
        warning.message.contains("missing `@`"),
        "{}",
        warning.message
    );
    let customer = record
        .outcome
        .unwrap_or_else(|problems| panic!("{problems:?}"));
    assert_eq!(customer.contacts[1].email, "a@x.example, broken");
}

#[test]
fn contact_email_warning_key_is_customer_code() {
    let record = check_second_contact_email("a@x.example, broken");
    let warnings = record.warnings(RecordType::Customer);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].key, "C-1001");
    assert_eq!(warnings[0].record_type, RecordType::Customer);
    assert_eq!(warnings[0].field, "customers[0].contacts[1].email");
    assert_eq!(record.rejections(RecordType::Customer), Vec::new());
}

#[test]
fn contact_email_unquoted_comma_in_display_name() {
    // Unquoted, the comma separates two elements: the name fragment `Lee` and a valid mailbox.
    let record = check_second_contact_email("Lee, Jordan <j@x.example>");
    assert!(record.outcome.is_ok(), "{:?}", record.outcome);
    assert_eq!(record.warnings.len(), 1, "{:?}", record.warnings);
    let message = &record.warnings[0].message;
    assert!(
        message.contains("invalid email address \"Lee\""),
        "{message}"
    );
    assert!(
        message.contains("put the whole name in quotes"),
        "{message}"
    );
}

#[test]
fn contact_email_no_quoting_hint_without_name() {
    let record = check_second_contact_email("broken, a@x.example");
    assert_eq!(record.warnings.len(), 1, "{:?}", record.warnings);
    let message = &record.warnings[0].message;
    assert!(!message.contains("in quotes"), "{message}");
}

#[test]
fn contact_email_all_invalid() {
    let problem = customer_problem(|c| c["contacts"][1]["email"] = json!("broken; also broken"));
    assert_eq!(problem.field, "customers[0].contacts[1].email");
    assert!(
        problem
            .message
            .contains("no valid email address for contact \"Kreditoren\""),
        "{}",
        problem.message
    );
    assert!(
        problem.message.contains("\"broken; also broken\""),
        "{}",
        problem.message
    );
    assert!(
        problem
            .message
            .contains("\"broken\" is invalid (missing `@`)"),
        "{}",
        problem.message
    );
    assert!(
        problem
            .message
            .contains("\"also broken\" is invalid (missing `@`)"),
        "{}",
        problem.message
    );
}

#[test]
fn contact_email_all_invalid_no_warnings() {
    let record = check_second_contact_email("broken; also broken");
    assert!(record.outcome.is_err(), "{:?}", record.outcome);
    assert_eq!(record.warnings, Vec::new());
}

#[test]
fn contact_email_empty() {
    let problem = customer_problem(|c| c["contacts"][1]["email"] = json!(""));
    assert_eq!(problem.field, "customers[0].contacts[1].email");
    assert!(
        problem
            .message
            .starts_with("no email address for contact \"Kreditoren\" in \"\""),
        "{}",
        problem.message
    );
}

#[test]
fn contact_email_only_separators() {
    let problem = customer_problem(|c| c["contacts"][1]["email"] = json!(" ; , "));
    assert_eq!(problem.field, "customers[0].contacts[1].email");
    assert!(
        problem.message.contains("in \" ; , \""),
        "{}",
        problem.message
    );
}

#[test]
fn contact_email_empty_without_contact_name() {
    let problem = customer_problem(|c| {
        c["contacts"][1].as_object_mut().unwrap().remove("name");
        c["contacts"][1]["email"] = json!("");
    });
    assert!(
        problem
            .message
            .starts_with("no email address for the contact without a name"),
        "{}",
        problem.message
    );
}

#[test]
fn contact_email_control_character() {
    // The valid first element does not turn the control character into a warning.
    let problem =
        customer_problem(|c| c["contacts"][1]["email"] = json!("a@x.example, b\u{7}@x.example"));
    assert_eq!(problem.field, "customers[0].contacts[1].email");
    assert!(
        problem.message.contains("control character U+0007"),
        "{}",
        problem.message
    );
}

#[test]
fn notes_over_8_kib_rejected() {
    let problem = invoice_problem(|i| i["notes"] = json!("n".repeat(8193)));
    assert_eq!(problem.field, "invoices[0].notes");
    assert!(
        problem
            .message
            .contains("is 8193 bytes long, more than the 8192 bytes"),
        "{}",
        problem.message
    );
    assert!(
        problem.message.contains("shorten it in the ERP"),
        "{}",
        problem.message
    );

    let notes = "n".repeat(8192);
    let valid = valid_invoice(&{
        let mut value = invoice_json();
        value["notes"] = json!(notes);
        value
    });
    assert_eq!(valid.invoice.notes.as_deref(), Some(notes.as_str()));
}

#[test]
fn customer_name_over_512_bytes_rejected() {
    // 171 three-byte characters: 513 bytes in 171 characters.
    let problem = customer_problem(|c| c["name"] = json!("€".repeat(171)));
    assert_eq!(problem.field, "customers[0].name");
    assert!(
        problem
            .message
            .contains("is 513 bytes long, more than the 512 bytes"),
        "{}",
        problem.message
    );
}

#[test]
fn contact_email_line_break() {
    let problem =
        customer_problem(|c| c["contacts"][1]["email"] = json!("a@x.example,\nb@x.example"));
    assert_eq!(problem.field, "customers[0].contacts[1].email");
    assert!(
        problem.message.contains("line break (U+000A)"),
        "{}",
        problem.message
    );
}

#[test]
fn contact_role_defaults_to_to() {
    let mut value = customer_json();
    value["contacts"][1]
        .as_object_mut()
        .unwrap()
        .remove("invoice_role");
    assert_eq!(
        valid_customer(&value).contacts[1].invoice_role,
        RecipientRole::To
    );
}

#[test]
fn contact_role_bcc() {
    let mut value = customer_json();
    value["contacts"][1]["invoice_role"] = json!("bcc");
    assert_eq!(
        valid_customer(&value).contacts[1].invoice_role,
        RecipientRole::Bcc
    );
}

#[test]
fn contact_role_invalid() {
    let problem = customer_problem(|c| c["contacts"][2]["invoice_role"] = json!("reply"));
    assert_eq!(problem.field, "customers[0].contacts[2].invoice_role");
    assert!(
        problem.message.contains("invalid value \"reply\""),
        "{}",
        problem.message
    );
}

#[test]
fn contact_not_an_object() {
    let problem = customer_problem(|c| c["contacts"][0] = json!("anna@x.example"));
    assert_eq!(problem.field, "customers[0].contacts[0]");
    assert!(
        problem
            .message
            .contains("must be a JSON object, found the string \"anna@x.example\"")
    );
}

// Invoices.

#[test]
fn invoice_spec_example_is_valid() {
    let valid = valid_invoice(&invoice_json());
    assert_eq!(valid.invoice.number, "INV-2026-0001");
    assert_eq!(valid.invoice.kind, InvoiceKind::Invoice);
    assert_eq!(valid.invoice.status, InvoiceStatus::Posted);
    assert_eq!(valid.invoice.lines[0].unit_price.as_deref(), Some("12.50"));
    assert_eq!(valid.invoice.taxes[0].amount, "4.75");
    assert!(!valid.invoice.notify_opt_out);
}

#[test]
fn invoice_issued_at_keeps_original_and_utc() {
    let valid = valid_invoice(&invoice_json());
    assert_eq!(valid.invoice.issued_at, "2026-12-03T16:20:00-06:00");
    assert_eq!(
        valid.issued_at_utc.to_rfc3339(),
        "2026-12-03T22:20:00+00:00"
    );
}

#[test]
fn invoice_number_missing() {
    let problem = invoice_problem(|i| {
        i.as_object_mut().unwrap().remove("number");
    });
    assert_eq!(problem.field, "invoices[0].number");
    assert_eq!(problem.message, "missing required field");
}

#[test]
fn invoice_number_empty() {
    let problem = invoice_problem(|i| i["number"] = json!(""));
    assert_eq!(problem.field, "invoices[0].number");
}

#[test]
fn invoice_customer_missing() {
    let problem = invoice_problem(|i| {
        i.as_object_mut().unwrap().remove("customer");
    });
    assert_eq!(problem.field, "invoices[0].customer");
}

#[test]
fn invoice_kind_credit_note() {
    let mut value = invoice_json();
    value["kind"] = json!("credit_note");
    assert_eq!(valid_invoice(&value).invoice.kind, InvoiceKind::CreditNote);
}

#[test]
fn invoice_kind_invalid() {
    let problem = invoice_problem(|i| i["kind"] = json!("quote"));
    assert_eq!(problem.field, "invoices[0].kind");
    assert!(
        problem.message.contains("invalid value \"quote\""),
        "{}",
        problem.message
    );
    assert!(
        problem.message.contains("\"credit_note\""),
        "{}",
        problem.message
    );
}

#[test]
fn invoice_kind_missing() {
    let problem = invoice_problem(|i| {
        i.as_object_mut().unwrap().remove("kind");
    });
    assert!(
        problem.message.starts_with("missing required field"),
        "{}",
        problem.message
    );
}

#[test]
fn invoice_status_invalid() {
    let problem = invoice_problem(|i| i["status"] = json!("open"));
    assert_eq!(problem.field, "invoices[0].status");
    assert!(
        problem.message.contains("invalid value \"open\""),
        "{}",
        problem.message
    );
}

#[test]
fn invoice_status_draft_and_void() {
    for (text, status) in [
        ("draft", InvoiceStatus::Draft),
        ("void", InvoiceStatus::Void),
    ] {
        let mut value = invoice_json();
        value["status"] = json!(text);
        assert_eq!(valid_invoice(&value).invoice.status, status);
    }
}

#[test]
fn invoice_issued_at_without_offset() {
    let problem = invoice_problem(|i| i["issued_at"] = json!("2026-12-03T16:20:00"));
    assert_eq!(problem.field, "invoices[0].issued_at");
    assert!(
        problem.message.contains("\"2026-12-03T16:20:00\""),
        "{}",
        problem.message
    );
}

#[test]
fn invoice_issued_at_date_only() {
    let problem = invoice_problem(|i| i["issued_at"] = json!("2026-12-03"));
    assert!(
        problem.message.contains("\"2026-12-03\""),
        "{}",
        problem.message
    );
}

#[test]
fn invoice_due_date_optional() {
    let mut value = invoice_json();
    value.as_object_mut().unwrap().remove("due_date");
    assert_eq!(valid_invoice(&value).invoice.due_date, None);
}

#[test]
fn invoice_due_date_one_digit_month() {
    let problem = invoice_problem(|i| i["due_date"] = json!("2027-1-02"));
    assert_eq!(problem.field, "invoices[0].due_date");
    assert!(
        problem.message.contains("\"2027-1-02\""),
        "{}",
        problem.message
    );
}

#[test]
fn invoice_due_date_impossible_day() {
    let problem = invoice_problem(|i| i["due_date"] = json!("2027-02-30"));
    assert!(
        problem.message.contains("\"2027-02-30\""),
        "{}",
        problem.message
    );
}

#[test]
fn invoice_currency_lowercase() {
    let problem = invoice_problem(|i| i["currency"] = json!("eur"));
    assert_eq!(problem.field, "invoices[0].currency");
    assert!(problem.message.contains("\"eur\""), "{}", problem.message);
}

#[test]
fn invoice_amount_with_too_many_digits() {
    let problem = invoice_problem(|i| i["taxes"][0]["amount"] = json!("4.750"));
    assert_eq!(problem.field, "invoices[0].taxes[0].amount");
    assert!(
        problem
            .message
            .contains("\"4.750\" has 3 decimal places but EUR allows at most 2")
    );
}

#[test]
fn invoice_amounts_in_zero_digit_currency() {
    let problem = invoice_problem(|i| {
        i["currency"] = json!("JPY");
        i["lines"][0]["amount"] = json!("2500");
        i["subtotal"] = json!("2500");
        i["taxes"][0]["amount"] = json!("475");
        i["total"] = json!("2975.0");
    });
    assert_eq!(problem.field, "invoices[0].total");
    assert!(
        problem
            .message
            .contains("\"2975.0\" has 1 decimal places but JPY allows at most 0")
    );
}

#[test]
fn invoice_amounts_in_three_digit_currency() {
    let mut value = invoice_json();
    value["currency"] = json!("KWD");
    value["lines"][0]["amount"] = json!("25.125");
    value["subtotal"] = json!("25.125");
    value["taxes"][0]["amount"] = json!("4.774");
    value["total"] = json!("29.899");
    assert!(check_invoice(&value).outcome.is_ok());
}

#[test]
fn invoice_amount_as_json_number() {
    let problem = invoice_problem(|i| i["subtotal"] = json!(25.0));
    assert_eq!(problem.field, "invoices[0].subtotal");
    assert!(
        problem.message.contains("found the JSON number 25.0"),
        "{}",
        problem.message
    );
}

#[test]
fn invoice_amount_with_decimal_comma() {
    let problem = invoice_problem(|i| i["total"] = json!("29,75"));
    assert_eq!(problem.field, "invoices[0].total");
    assert!(
        problem.message.contains("invalid decimal \"29,75\""),
        "{}",
        problem.message
    );
}

#[test]
fn invoice_line_amount_missing() {
    let problem = invoice_problem(|i| {
        i["lines"][0].as_object_mut().unwrap().remove("amount");
    });
    assert_eq!(problem.field, "invoices[0].lines[0].amount");
}

#[test]
fn invoice_quantity_and_rates_may_have_more_digits() {
    let mut value = invoice_json();
    value["lines"][0]["quantity"] = json!("2.0000");
    value["lines"][0]["unit_price"] = json!("12.5000");
    value["lines"][0]["tax_rate"] = json!("19.000");
    value["taxes"][0]["rate"] = json!("19.0000");
    let valid = valid_invoice(&value);
    assert_eq!(valid.invoice.lines[0].quantity.as_deref(), Some("2.0000"));
}

#[test]
fn invoice_quantity_invalid() {
    let problem = invoice_problem(|i| i["lines"][0]["quantity"] = json!("two"));
    assert_eq!(problem.field, "invoices[0].lines[0].quantity");
    assert!(problem.message.contains("\"two\""), "{}", problem.message);
}

#[test]
fn invoice_lines_do_not_add_up_to_subtotal() {
    let problem = invoice_problem(|i| {
        i["lines"][0]["amount"] = json!("24.00");
    });
    assert_eq!(problem.field, "invoices[0].subtotal");
    assert_eq!(
        problem.message,
        "subtotal is 25.00 but lines[].amount add up to 24.00"
    );
}

#[test]
fn invoice_total_is_not_subtotal_plus_taxes() {
    let problem = invoice_problem(|i| i["total"] = json!("29.70"));
    assert_eq!(problem.field, "invoices[0].total");
    assert_eq!(
        problem.message,
        "total is 29.70 but subtotal 25.00 plus taxes[].amount 4.75 is 29.75"
    );
}

#[test]
fn invoice_sums_compare_numbers_not_strings() {
    let mut value = invoice_json();
    value["subtotal"] = json!("25.0");
    value["total"] = json!("29.750");
    value["currency"] = json!("KWD");
    assert!(check_invoice(&value).outcome.is_ok());
}

#[test]
fn invoice_lines_missing() {
    let problem = invoice_problem(|i| {
        i.as_object_mut().unwrap().remove("lines");
        i["subtotal"] = json!("0.00");
        i["taxes"] = json!([]);
        i["total"] = json!("0.00");
    });
    assert_eq!(problem.field, "invoices[0].lines");
}

#[test]
fn invoice_taxes_optional() {
    let mut value = invoice_json();
    value.as_object_mut().unwrap().remove("taxes");
    value["total"] = json!("25.00");
    assert!(valid_invoice(&value).invoice.taxes.is_empty());
}

#[test]
fn invoice_control_character_in_terms() {
    let problem = invoice_problem(|i| i["terms"] = json!("Net\u{1b}30"));
    assert_eq!(problem.field, "invoices[0].terms");
    assert!(
        problem.message.contains("\"Net\\u{1b}30\""),
        "{}",
        problem.message
    );
    assert!(problem.message.contains("U+001B"), "{}", problem.message);
}

#[test]
fn invoice_tab_allowed_in_text() {
    let mut value = invoice_json();
    value["terms"] = json!("Net\t30");
    assert!(check_invoice(&value).outcome.is_ok());
}

#[test]
fn invoice_line_break_in_terms() {
    let problem = invoice_problem(|i| i["terms"] = json!("Net 30\r\nor cash"));
    assert_eq!(problem.field, "invoices[0].terms");
    assert!(
        problem
            .message
            .contains("line break (U+000D) at character 7"),
        "{}",
        problem.message
    );
}

#[test]
fn invoice_unicode_line_separator_in_po_number() {
    let problem = invoice_problem(|i| i["po_number"] = json!("PO\u{2028}77"));
    assert_eq!(problem.field, "invoices[0].po_number");
    assert!(problem.message.contains("U+2028"), "{}", problem.message);
}

#[test]
fn invoice_line_breaks_allowed_in_notes_and_description() {
    let mut value = invoice_json();
    value["notes"] = json!("Thank you.\r\nSee you again.");
    value["lines"][0]["description"] = json!("Widget\nblue");
    let valid = valid_invoice(&value);
    assert_eq!(
        valid.invoice.notes.as_deref(),
        Some("Thank you.\r\nSee you again.")
    );
}

#[test]
fn invoice_control_character_in_notes() {
    let problem = invoice_problem(|i| i["notes"] = json!("Thanks\u{0}"));
    assert_eq!(problem.field, "invoices[0].notes");
    assert!(problem.message.contains("U+0000"), "{}", problem.message);
}

#[test]
fn invoice_line_break_in_sku() {
    let problem = invoice_problem(|i| i["lines"][0]["sku"] = json!("WID\n1"));
    assert_eq!(problem.field, "invoices[0].lines[0].sku");
}

#[test]
fn invoice_notify_opt_out() {
    let mut value = invoice_json();
    value["notify_opt_out"] = json!(true);
    assert!(valid_invoice(&value).invoice.notify_opt_out);
}

#[test]
fn invoice_notify_opt_out_not_boolean() {
    let problem = invoice_problem(|i| i["notify_opt_out"] = json!("yes"));
    assert_eq!(problem.field, "invoices[0].notify_opt_out");
    assert!(
        problem.message.contains("the string \"yes\""),
        "{}",
        problem.message
    );
}

#[test]
fn invoice_misspelled_field() {
    let problem = invoice_problem(|i| i["notify_optout"] = json!(true));
    assert_eq!(problem.field, "invoices[0].notify_optout");
    assert!(
        problem
            .message
            .starts_with("unknown field \"notify_optout\""),
        "{}",
        problem.message
    );
}

#[test]
fn invoice_unknown_line_field() {
    let problem = invoice_problem(|i| i["lines"][0]["discount"] = json!("1.00"));
    assert_eq!(problem.field, "invoices[0].lines[0].discount");
}

#[test]
fn invoice_type_field_only_in_json_lines() {
    let mut value = invoice_json();
    value["type"] = json!("invoice");
    assert!(check_invoice(&value).outcome.is_err());
    assert!(
        super::invoice::check_invoice(&value, "line[1]", true)
            .outcome
            .is_ok()
    );
}

#[test]
fn invoice_reports_every_problem() {
    let mut value = invoice_json();
    value["kind"] = json!("quote");
    value["currency"] = json!("euro");
    let problems = check_invoice(&value).outcome.unwrap_err();
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["invoices[0].kind", "invoices[0].currency"]);
}

// Documents.

fn document(customers: Value, invoices: Value) -> String {
    json!({ "format": "invoicer.erp-export.v1", "customers": customers, "invoices": invoices })
        .to_string()
}

#[test]
fn document_with_customer_and_invoice() {
    let export = parse(&document(json!([customer_json()]), json!([invoice_json()])));
    assert_eq!(export.customers.len(), 1);
    assert_eq!(export.invoices.len(), 1);
    assert!(export.customers[0].outcome.is_ok());
    assert_eq!(export.invoices[0].path, "invoices[0]");
}

#[test]
fn document_byte_order_mark_accepted() {
    let text = format!("\u{feff}{}", document(json!([]), json!([invoice_json()])));
    assert_eq!(parse(&text).invoices.len(), 1);
}

#[test]
fn document_not_json() {
    let error = parse_error(b"<invoices/>");
    assert!(
        error.starts_with("the document is not valid JSON"),
        "{error}"
    );
}

#[test]
fn document_truncated_json() {
    let text = document(json!([customer_json()]), json!([invoice_json()]));
    let error = parse_error(&text.as_bytes()[..text.len() - 10]);
    assert!(
        error.starts_with("the document is not valid JSON"),
        "{error}"
    );
}

#[test]
fn document_not_utf8() {
    let error = parse_error(b"{\"format\": \"\xff\"}");
    assert!(
        error.contains("not valid UTF-8: invalid byte at offset 12"),
        "{error}"
    );
}

#[test]
fn document_empty() {
    assert_eq!(parse_error(b"  \n"), "the document is empty");
}

#[test]
fn document_wrong_format() {
    let error = parse_error(br#"{"format": "invoicer.erp-export.v2", "invoices": []}"#);
    assert!(
        error.contains("unsupported format \"invoicer.erp-export.v2\""),
        "{error}"
    );
}

#[test]
fn document_format_not_a_string() {
    let error = parse_error(br#"{"format": 1}"#);
    assert!(error.contains("unsupported format 1"), "{error}");
}

#[test]
fn document_missing_format() {
    let error = parse_error(br#"{"invoices": []}"#);
    assert!(error.starts_with("missing field \"format\""), "{error}");
}

#[test]
fn document_unknown_top_level_field() {
    let error = parse_error(br#"{"format": "invoicer.erp-export.v1", "credit_notes": []}"#);
    assert!(
        error.contains("unknown top-level field \"credit_notes\""),
        "{error}"
    );
}

#[test]
fn document_invoices_not_an_array() {
    let error = parse_error(br#"{"format": "invoicer.erp-export.v1", "invoices": {}}"#);
    assert_eq!(error, "\"invoices\" must be an array, found an object");
}

#[test]
fn document_customers_not_an_array() {
    let error = parse_error(br#"{"format": "invoicer.erp-export.v1", "customers": "C-1"}"#);
    assert_eq!(
        error,
        "\"customers\" must be an array, found the string \"C-1\""
    );
}

#[test]
fn document_repeated_top_level_field() {
    let text = format!(
        r#"{{"format": "invoicer.erp-export.v1", "invoices": [{}], "invoices": []}}"#,
        invoice_json()
    );
    let error = parse_error(text.as_bytes());
    assert!(
        error.contains("top-level field \"invoices\" appears more than once"),
        "{error}"
    );
}

#[test]
fn document_format_after_records_accepted() {
    let text = format!(
        r#"{{"invoices": [{}, {}], "customers": [{}], "format": "invoicer.erp-export.v1"}}"#,
        invoice_json(),
        json!({ "number": "INV-2" }),
        customer_json()
    );
    let export = parse(&text);
    assert_eq!(export.customers.len(), 1);
    assert_eq!(export.invoices.len(), 2);
    assert!(export.invoices[0].outcome.is_ok());
    assert_eq!(export.invoices[1].path, "invoices[1]");
    assert!(export.invoices[1].outcome.is_err());
}

#[test]
fn document_trailing_text_rejected() {
    let text = format!("{} ]", document(json!([]), json!([invoice_json()])));
    let error = parse_error(text.as_bytes());
    assert!(
        error.starts_with("the document is not valid JSON"),
        "{error}"
    );
}

#[test]
fn document_array_at_top_level() {
    let error = parse_error(b"[]");
    assert!(error.contains("found an array"), "{error}");
}

#[test]
fn document_duplicate_invoice_numbers_rejects_both() {
    let export = parse(&document(
        json!([]),
        json!([invoice_json(), invoice_json()]),
    ));
    for (index, other) in [(0, "invoices[1]"), (1, "invoices[0]")] {
        let rejections = export.invoices[index].rejections(RecordType::Invoice);
        assert_eq!(rejections.len(), 1, "{rejections:?}");
        assert_eq!(rejections[0].field, format!("invoices[{index}].number"));
        assert!(
            rejections[0]
                .message
                .contains("duplicate invoice number \"INV-2026-0001\"")
        );
        assert!(
            rejections[0]
                .message
                .contains(&format!("also appears at {other}"))
        );
    }
}

#[test]
fn document_duplicate_customer_codes_rejects_both() {
    let export = parse(&document(
        json!([customer_json(), customer_json()]),
        json!([]),
    ));
    let rejections = export.customers[1].rejections(RecordType::Customer);
    assert_eq!(rejections[0].field, "customers[1].code");
    assert!(
        rejections[0]
            .message
            .contains("duplicate customer code \"C-1001\"")
    );
    assert!(export.customers[0].outcome.is_err());
}

#[test]
fn document_failing_invoice_leaves_others_valid() {
    let mut bad = invoice_json();
    bad["number"] = json!("INV-2");
    bad["total"] = json!("1.00");
    let export = parse(&document(json!([]), json!([invoice_json(), bad])));
    assert!(export.invoices[0].outcome.is_ok());
    let rejections = export.invoices[1].rejections(RecordType::Invoice);
    assert_eq!(rejections[0].key, "INV-2");
    assert_eq!(rejections[0].field, "invoices[1].total");
}

// JSON Lines.

fn json_lines(records: &[Value]) -> String {
    records
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

fn typed(mut value: Value, record_type: &str) -> Value {
    value["type"] = json!(record_type);
    value
}

#[test]
fn json_lines_with_customer_and_invoices() {
    let mut second = invoice_json();
    second["number"] = json!("INV-2026-0002");
    let text = json_lines(&[
        typed(invoice_json(), "invoice"),
        typed(customer_json(), "customer"),
        typed(second, "invoice"),
    ]);
    let export = parse(&format!("{text}\n\n"));
    assert_eq!(export.customers.len(), 1);
    assert_eq!(export.customers[0].path, "line[2]");
    assert_eq!(export.invoices.len(), 2);
    assert_eq!(export.invoices[1].path, "line[3]");
    assert!(export.invoices.iter().all(|record| record.outcome.is_ok()));
}

#[test]
fn json_lines_single_record() {
    let export = parse(&typed(invoice_json(), "invoice").to_string());
    assert_eq!(export.invoices.len(), 1);
    assert!(export.invoices[0].outcome.is_ok());
}

#[test]
fn json_lines_paths_name_the_line() {
    let mut bad = typed(invoice_json(), "invoice");
    bad["subtotal"] = json!("20.00");
    let export = parse(&json_lines(&[typed(customer_json(), "customer"), bad]));
    let rejections = export.invoices[0].rejections(RecordType::Invoice);
    assert_eq!(rejections[0].field, "line[2].subtotal");
}

#[test]
fn json_lines_invalid_line_rejects_document() {
    let text = format!(
        "{}\n{{\"type\": \"invoice\",\n",
        typed(customer_json(), "customer")
    );
    let error = parse_error(text.as_bytes());
    assert!(
        error.starts_with("line 2 of the JSON Lines document is not valid JSON"),
        "{error}"
    );
}

#[test]
fn json_lines_unknown_type() {
    let mut record = invoice_json();
    record["type"] = json!("order");
    let export = parse(&json_lines(&[typed(customer_json(), "customer"), record]));
    assert_eq!(export.untyped.len(), 1);
    let untyped = &export.untyped[0];
    assert_eq!(untyped.rejection.field, "line[2].type");
    assert_eq!(untyped.rejection.key, "INV-2026-0001");
    assert!(
        untyped
            .rejection
            .message
            .contains("invalid value \"order\""),
        "{}",
        untyped.rejection.message
    );
    assert_eq!(untyped.counts_as, RecordType::Invoice);
}

#[test]
fn json_lines_missing_type() {
    let export = parse(&json_lines(&[
        typed(invoice_json(), "invoice"),
        customer_json(),
    ]));
    let untyped = &export.untyped[0];
    assert_eq!(untyped.rejection.field, "line[2].type");
    assert!(
        untyped
            .rejection
            .message
            .starts_with("missing required field")
    );
    assert_eq!(untyped.counts_as, RecordType::Customer);
}

#[test]
fn invoice_sums_checked_despite_other_problems() {
    let mut value = invoice_json();
    value["terms"] = json!("Net\u{7}30");
    value["total"] = json!("30.00");
    let problems = check_invoice(&value).outcome.unwrap_err();
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["invoices[0].terms", "invoices[0].total"]);
}

#[test]
fn contact_email_domain_literal() {
    // A domain literal is valid RFC 5322, but the address parser that sending uses accepts only
    // host names.
    let problem = customer_problem(|c| c["contacts"][0]["email"] = json!("root@[192.0.2.1]"));
    assert_eq!(problem.field, "customers[0].contacts[0].email");
    assert!(
        problem
            .message
            .contains("invalid email address \"root@[192.0.2.1]\""),
        "{}",
        problem.message
    );
    assert!(
        problem
            .message
            .contains("character not allowed in the domain"),
        "{}",
        problem.message
    );
}

#[test]
fn invoice_with_too_many_lines_rejected() {
    let mut value = invoice_json();
    let line = value["lines"][0].clone();
    value["lines"] = Value::Array(vec![line; super::invoice::MAX_LINES + 1]);
    let problems = check_invoice(&value)
        .outcome
        .expect_err("invoice should be rejected");
    let lines = problems
        .iter()
        .find(|p| p.field == "invoices[0].lines")
        .unwrap_or_else(|| panic!("{problems:?}"));
    assert!(lines.message.contains("1001 lines"), "{}", lines.message);
}

#[test]
fn customer_with_too_many_contacts_rejected() {
    let problem = customer_problem(|value| {
        let contact = value["contacts"][0].clone();
        value["contacts"] = Value::Array(vec![contact; 51]);
    });
    assert_eq!(problem.field, "customers[0].contacts");
    assert!(
        problem.message.contains("51 contacts"),
        "{}",
        problem.message
    );
}
