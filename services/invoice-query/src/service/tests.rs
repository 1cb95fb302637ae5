//! Tests of imports, re-imports and listings against a real SQLite file.

use serde_json::{Value, json};
use tempfile::TempDir;

use super::*;
use crate::model::{InvoiceKind, RecipientRole, RecordType};
use crate::paging::ListFilter;

const CHINOOK: &str = include_str!("../../../invoicer/sample/chinook-export.json");

async fn open_service() -> (TempDir, InvoiceQuery) {
    let folder = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}/db/invoice_query.db?mode=rwc",
        folder.path().display()
    );
    let store = Store::connect(&url).await.unwrap();
    (folder, InvoiceQuery::new(store))
}

fn customer(code: &str) -> Value {
    json!({
        "code": code,
        "name": format!("Customer {code}"),
        "contacts": [ { "name": "Billing", "email": format!("billing@{}.example", code.to_lowercase()) } ]
    })
}

fn invoice(number: &str, customer: &str, issued_at: &str) -> Value {
    json!({
        "number": number,
        "customer": customer,
        "kind": "invoice",
        "status": "posted",
        "issued_at": issued_at,
        "currency": "EUR",
        "lines": [ { "description": "Consulting", "amount": "100.00" } ],
        "subtotal": "100.00",
        "taxes": [ { "name": "VAT 19%", "rate": "19", "amount": "19.00" } ],
        "total": "119.00"
    })
}

fn export(customers: &[Value], invoices: &[Value]) -> Vec<u8> {
    json!({ "format": "invoicer.erp-export.v1", "customers": customers, "invoices": invoices })
        .to_string()
        .into_bytes()
}

fn counts(created: u32, updated: u32, unchanged: u32, rejected: u32) -> ImportCounts {
    ImportCounts {
        created,
        updated,
        unchanged,
        rejected,
    }
}

#[tokio::test]
async fn chinook_imports_everything_then_nothing_changes() {
    let (_folder, service) = open_service().await;
    let report = service.import(CHINOOK.as_bytes().to_vec()).await.unwrap();
    assert_eq!(report.rejections, Vec::new());
    assert_eq!(report.customers, counts(59, 0, 0, 0));
    assert_eq!(report.invoices, counts(412, 0, 0, 0));

    let again = service.import(CHINOOK.as_bytes().to_vec()).await.unwrap();
    assert_eq!(again.customers, counts(0, 0, 59, 0));
    assert_eq!(again.invoices, counts(0, 0, 412, 0));

    let (stored, customer) = service.get_invoice("CH-2021-0001").await.unwrap();
    assert_eq!(stored.revision, 1);
    assert_eq!(stored.invoice.customer, "CH-002");
    assert_eq!(stored.invoice.lines.len(), 2);
    assert_eq!(stored.invoice.total, "1.98");
    assert_eq!(customer.code, "CH-002");
    assert!(!customer.contacts.is_empty());
}

#[tokio::test]
async fn invoice_read_with_contacts_in_order() {
    let (_folder, service) = open_service().await;
    let mut with_contacts = customer("C-1");
    with_contacts["contacts"] = json!([
        { "name": "Anna", "email": "anna@c-1.example", "invoice_role": "to" },
        { "name": "Ledger", "email": "ledger@c-1.example", "invoice_role": "cc" },
        { "name": "Max", "email": "max@c-1.example", "invoice_role": "none" },
        { "name": "Audit", "email": "audit@c-1.example", "invoice_role": "bcc" }
    ]);
    let mut without_contacts = customer("C-2");
    without_contacts["contacts"] = json!([]);
    let report = service
        .import(export(
            &[with_contacts, without_contacts],
            &[
                invoice("INV-1", "C-1", "2026-12-03T16:20:00-06:00"),
                invoice("INV-2", "C-2", "2026-12-03T16:21:00-06:00"),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(report.invoices, counts(2, 0, 0, 0), "{report:?}");

    let (stored, customer) = service.get_invoice("INV-1").await.unwrap();
    assert_eq!(stored.invoice.number, "INV-1");
    assert_eq!(stored.invoice.lines.len(), 1);
    assert_eq!(customer.code, "C-1");
    let contacts: Vec<(&str, RecipientRole)> = customer
        .contacts
        .iter()
        .map(|contact| (contact.email.as_str(), contact.invoice_role))
        .collect();
    assert_eq!(
        contacts,
        [
            ("anna@c-1.example", RecipientRole::To),
            ("ledger@c-1.example", RecipientRole::Cc),
            ("max@c-1.example", RecipientRole::None),
            ("audit@c-1.example", RecipientRole::Bcc),
        ]
    );

    let (stored, customer) = service.get_invoice("INV-2").await.unwrap();
    assert_eq!(stored.invoice.customer, "C-2");
    assert_eq!(customer.code, "C-2");
    assert!(customer.contacts.is_empty());

    let missing = service.get_invoice("INV-3").await;
    assert!(
        matches!(&missing, Err(QueryError::InvoiceNotFound { number }) if number == "INV-3"),
        "{missing:?}"
    );
}

#[tokio::test]
async fn reimport_with_changes_adds_revision() {
    let (_folder, service) = open_service().await;
    let original = invoice("INV-1", "C-1", "2026-12-03T16:20:00-06:00");
    service
        .import(export(&[customer("C-1")], std::slice::from_ref(&original)))
        .await
        .unwrap();
    let (first, _) = service.get_invoice("INV-1").await.unwrap();
    assert_eq!(first.revision, 1);

    let mut changed = original.clone();
    changed["notes"] = json!("Corrected address.");
    let report = service.import(export(&[], &[changed])).await.unwrap();
    assert_eq!(report.invoices, counts(0, 1, 0, 0));
    let (second, _) = service.get_invoice("INV-1").await.unwrap();
    assert_eq!(second.revision, 2);
    assert_ne!(second.content_sha256, first.content_sha256);
    assert_eq!(second.invoice.notes.as_deref(), Some("Corrected address."));

    let older = service
        .store
        .get_invoice_revision("INV-1", 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(older.invoice, first.invoice);
    assert_eq!(older.content_sha256, first.content_sha256);
    assert_eq!(
        service
            .store
            .get_invoice_revision("INV-1", 2)
            .await
            .unwrap()
            .unwrap()
            .invoice,
        second.invoice
    );
    assert_eq!(
        service
            .store
            .get_invoice_revision("INV-1", 3)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn reimport_identical_keeps_revision() {
    let (_folder, service) = open_service().await;
    let original = invoice("INV-1", "C-1", "2026-12-03T16:20:00-06:00");
    service
        .import(export(&[customer("C-1")], std::slice::from_ref(&original)))
        .await
        .unwrap();
    let mut changed = original.clone();
    changed["total"] = json!("119.0");
    changed["taxes"][0]["amount"] = json!("19.0");
    service
        .import(export(&[], &[changed.clone()]))
        .await
        .unwrap();

    // Same content again, with the keys in another order and explicit defaults.
    let mut same = changed.clone();
    same["notify_opt_out"] = json!(false);
    same["notes"] = Value::Null;
    let report = service.import(export(&[], &[same])).await.unwrap();
    assert_eq!(report.invoices, counts(0, 0, 1, 0));
    let (stored, _) = service.get_invoice("INV-1").await.unwrap();
    assert_eq!(stored.revision, 2);
}

#[tokio::test]
async fn customer_created_updated_unchanged() {
    let (_folder, service) = open_service().await;
    let report = service
        .import(export(&[customer("C-1")], &[]))
        .await
        .unwrap();
    assert_eq!(report.customers, counts(1, 0, 0, 0));

    let mut changed = customer("C-1");
    changed["contacts"] = json!([
        { "name": "Lee", "email": "\"Lee, Jordan\" <j@c-1.example>", "invoice_role": "to" },
        { "name": "Archive", "email": "archive@c-1.example", "invoice_role": "bcc" }
    ]);
    let report = service
        .import(export(&[changed.clone()], &[]))
        .await
        .unwrap();
    assert_eq!(report.customers, counts(0, 1, 0, 0));
    let report = service.import(export(&[changed], &[])).await.unwrap();
    assert_eq!(report.customers, counts(0, 0, 1, 0));

    let stored = service.get_customer("C-1").await.unwrap();
    assert_eq!(stored.contacts.len(), 2);
    assert_eq!(stored.contacts[0].email, "\"Lee, Jordan\" <j@c-1.example>");
    assert_eq!(
        stored.contacts[1].invoice_role,
        crate::model::RecipientRole::Bcc
    );
}

#[tokio::test]
async fn address_list_warning_keeps_customer() {
    let (_folder, service) = open_service().await;
    let mut listed = customer("C-1");
    listed["contacts"][0]["email"] = json!("ap@c-1.example; broken");
    let report = service
        .import(export(
            &[listed],
            &[invoice("INV-1", "C-1", "2026-12-03T10:00:00Z")],
        ))
        .await
        .unwrap();
    assert_eq!(report.customers, counts(1, 0, 0, 0));
    assert_eq!(report.invoices, counts(1, 0, 0, 0));
    assert_eq!(report.rejections, Vec::new());
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    let warning = &report.warnings[0];
    assert_eq!(warning.record_type, RecordType::Customer);
    assert_eq!(warning.key, "C-1");
    assert_eq!(warning.field, "customers[0].contacts[0].email");
    assert!(
        warning.message.contains("invalid email address \"broken\""),
        "{}",
        warning.message
    );

    let stored = service.get_customer("C-1").await.unwrap();
    assert_eq!(stored.contacts[0].email, "ap@c-1.example; broken");
}

#[tokio::test]
async fn address_list_warning_repeated_on_reimport() {
    let (_folder, service) = open_service().await;
    let mut listed = customer("C-1");
    listed["contacts"][0]["email"] = json!("ap@c-1.example; broken");
    let document = export(&[listed], &[]);
    service.import(document.clone()).await.unwrap();
    let report = service.import(document).await.unwrap();
    assert_eq!(report.customers, counts(0, 0, 1, 0));
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
}

#[tokio::test]
async fn rejected_customer_keeps_its_warnings() {
    let (_folder, service) = open_service().await;
    let mut bad = customer("C-1");
    bad["language"] = json!("en_US");
    bad["contacts"][0]["email"] = json!("ap@c-1.example; broken");
    let report = service.import(export(&[bad], &[])).await.unwrap();
    assert_eq!(report.customers, counts(0, 0, 0, 1));
    assert_eq!(report.rejections.len(), 1, "{:?}", report.rejections);
    assert_eq!(report.rejections[0].field, "customers[0].language");
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert_eq!(report.warnings[0].field, "customers[0].contacts[0].email");
}

#[tokio::test]
async fn address_list_without_valid_element_rejects_customer() {
    let (_folder, service) = open_service().await;
    let mut bad = customer("C-1");
    bad["contacts"][0]["email"] = json!("broken; also broken");
    let report = service.import(export(&[bad], &[])).await.unwrap();
    assert_eq!(report.customers, counts(0, 0, 0, 1));
    assert_eq!(report.warnings, Vec::new());
    assert_eq!(report.rejections.len(), 1, "{:?}", report.rejections);
    assert_eq!(report.rejections[0].key, "C-1");
    assert_eq!(report.rejections[0].field, "customers[0].contacts[0].email");
    let missing = service.get_customer("C-1").await.unwrap_err();
    assert!(
        matches!(missing, QueryError::CustomerNotFound { .. }),
        "{missing:?}"
    );
}

#[tokio::test]
async fn invoice_for_unknown_customer_rejected() {
    let (_folder, service) = open_service().await;
    let report = service
        .import(export(
            &[],
            &[invoice("INV-1", "C-404", "2026-12-03T10:00:00Z")],
        ))
        .await
        .unwrap();
    assert_eq!(report.invoices, counts(0, 0, 0, 1));
    let rejection = &report.rejections[0];
    assert_eq!(rejection.record_type, RecordType::Invoice);
    assert_eq!(rejection.key, "INV-1");
    assert_eq!(rejection.field, "invoices[0].customer");
    assert!(
        rejection.message.contains("unknown customer \"C-404\""),
        "{}",
        rejection.message
    );
}

#[tokio::test]
async fn invoice_for_customer_in_database_accepted() {
    let (_folder, service) = open_service().await;
    service
        .import(export(&[customer("C-1")], &[]))
        .await
        .unwrap();
    let report = service
        .import(export(
            &[],
            &[invoice("INV-1", "C-1", "2026-12-03T10:00:00Z")],
        ))
        .await
        .unwrap();
    assert_eq!(report.invoices, counts(1, 0, 0, 0));
}

#[tokio::test]
async fn invoice_for_rejected_customer_rejected() {
    let (_folder, service) = open_service().await;
    let mut bad = customer("C-1");
    bad["language"] = json!("en_US");
    let report = service
        .import(export(
            &[bad],
            &[invoice("INV-1", "C-1", "2026-12-03T10:00:00Z")],
        ))
        .await
        .unwrap();
    assert_eq!(report.customers, counts(0, 0, 0, 1));
    assert_eq!(report.invoices, counts(0, 0, 0, 1));
    let messages: Vec<&str> = report
        .rejections
        .iter()
        .map(|r| r.message.as_str())
        .collect();
    assert!(
        messages[1].contains("customer \"C-1\" was rejected in this export"),
        "{messages:?}"
    );
}

#[tokio::test]
async fn failing_invoice_rejected_others_imported() {
    let (_folder, service) = open_service().await;
    let mut bad = invoice("INV-2", "C-1", "2026-12-03T10:00:00Z");
    bad["total"] = json!("120.00");
    let invoices = [
        invoice("INV-1", "C-1", "2026-12-03T10:00:00Z"),
        bad,
        invoice("INV-3", "C-1", "2026-12-03T11:00:00Z"),
    ];
    let report = service
        .import(export(&[customer("C-1")], &invoices))
        .await
        .unwrap();
    assert_eq!(report.invoices, counts(2, 0, 0, 1));
    let rejection = &report.rejections[0];
    assert_eq!(
        (rejection.key.as_str(), rejection.field.as_str()),
        ("INV-2", "invoices[1].total")
    );
    assert!(
        rejection.message.contains("120.00") && rejection.message.contains("119.00"),
        "{}",
        rejection.message
    );
    assert!(matches!(
        service.get_invoice("INV-2").await,
        Err(QueryError::InvoiceNotFound { .. })
    ));
}

#[tokio::test]
async fn json_lines_import() {
    let (_folder, service) = open_service().await;
    let mut record_invoice = invoice("INV-1", "C-1", "2026-12-03T10:00:00Z");
    record_invoice["type"] = json!("invoice");
    let mut record_customer = customer("C-1");
    record_customer["type"] = json!("customer");
    let mut untyped = customer("C-2");
    untyped["type"] = json!("supplier");
    let text = format!("{record_invoice}\n{record_customer}\n{untyped}\n");
    let report = service.import(text.into_bytes()).await.unwrap();
    assert_eq!(report.customers, counts(1, 0, 0, 1));
    assert_eq!(report.invoices, counts(1, 0, 0, 0));
    assert_eq!(report.rejections[0].field, "line[3].type");
    assert_eq!(
        service
            .get_invoice("INV-1")
            .await
            .unwrap()
            .0
            .invoice
            .customer,
        "C-1"
    );
}

#[tokio::test]
async fn malformed_document_imports_nothing() {
    let (_folder, service) = open_service().await;
    let mut text = String::from_utf8(export(&[customer("C-1")], &[])).unwrap();
    text = text.replace("invoicer.erp-export.v1", "acme.export");
    let error = service.import(text.into_bytes()).await.unwrap_err();
    assert!(
        matches!(error, QueryError::MalformedDocument { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("\"acme.export\""), "{error}");
    assert!(matches!(
        service.get_customer("C-1").await,
        Err(QueryError::CustomerNotFound { .. })
    ));
}

#[tokio::test]
async fn oversized_document_rejected() {
    let (_folder, service) = open_service().await;
    let error = service
        .import(vec![b' '; MAX_DOCUMENT_BYTES + 1])
        .await
        .unwrap_err();
    assert!(
        matches!(error, QueryError::DocumentTooLarge { .. }),
        "{error}"
    );
}

fn list_request(
    since: &str,
    before: &str,
    kinds: Vec<InvoiceKind>,
    page_size: u32,
    token: &str,
) -> ListRequest {
    let instant = |text: &str| {
        (!text.is_empty()).then(|| chrono::DateTime::parse_from_rfc3339(text).unwrap().to_utc())
    };
    ListRequest {
        filter: ListFilter {
            issued_since: instant(since),
            issued_before: instant(before),
            kinds,
        },
        page_size,
        page_token: token.to_owned(),
    }
}

async fn service_with_listing_data() -> (TempDir, InvoiceQuery) {
    let (folder, service) = open_service().await;
    let mut draft = invoice("D-1", "C-1", "2026-12-02T12:00:00Z");
    draft["status"] = json!("draft");
    let mut void = invoice("V-1", "C-1", "2026-12-02T12:00:00Z");
    void["status"] = json!("void");
    let mut credit = invoice("CN-1", "C-1", "2026-12-02T09:00:00-05:00");
    credit["kind"] = json!("credit_note");
    credit["notify_opt_out"] = json!(true);
    let invoices = [
        invoice("B-2", "C-1", "2026-12-02T12:00:00Z"),
        invoice("B-1", "C-1", "2026-12-02T13:00:00+01:00"),
        invoice("A-1", "C-1", "2026-12-01T08:00:00Z"),
        invoice("Z-9", "C-1", "2026-12-03T00:00:00Z"),
        draft,
        void,
        credit,
    ];
    let report = service
        .import(export(&[customer("C-1")], &invoices))
        .await
        .unwrap();
    assert_eq!(report.invoices, counts(7, 0, 0, 0));
    (folder, service)
}

fn numbers(page: &InvoicePage) -> Vec<&str> {
    page.invoices
        .iter()
        .map(|summary| summary.number.as_str())
        .collect()
}

#[tokio::test]
async fn list_posted_oldest_first_in_window() {
    let (_folder, service) = service_with_listing_data().await;
    let request = list_request(
        "2026-12-01T00:00:00Z",
        "2026-12-03T00:00:00Z",
        vec![],
        0,
        "",
    );
    let page = service.list_to_notify(request).await.unwrap();
    // B-1 and B-2 share an instant (12:00 UTC) and sort by number; Z-9 is at the exclusive end.
    assert_eq!(numbers(&page), ["A-1", "B-1", "B-2", "CN-1"]);
    assert_eq!(page.next_page_token, "");
    let credit = &page.invoices[3];
    assert_eq!(credit.issued_at, "2026-12-02T09:00:00-05:00");
    assert!(credit.notify_opt_out);
    assert_eq!(credit.kind, InvoiceKind::CreditNote);
}

#[tokio::test]
async fn list_filters_kinds() {
    let (_folder, service) = service_with_listing_data().await;
    let page = service
        .list_to_notify(list_request("", "", vec![InvoiceKind::CreditNote], 0, ""))
        .await
        .unwrap();
    assert_eq!(numbers(&page), ["CN-1"]);
    let page = service
        .list_to_notify(list_request("", "", vec![InvoiceKind::Invoice], 0, ""))
        .await
        .unwrap();
    assert_eq!(numbers(&page), ["A-1", "B-1", "B-2", "Z-9"]);
}

#[tokio::test]
async fn list_pages_with_token() {
    let (_folder, service) = service_with_listing_data().await;
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = service
            .list_to_notify(list_request("", "", vec![], 2, &token))
            .await
            .unwrap();
        assert!(page.invoices.len() <= 2);
        seen.extend(numbers(&page).into_iter().map(str::to_owned));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, ["A-1", "B-1", "B-2", "CN-1", "Z-9"]);
}

#[tokio::test]
async fn list_rejects_token_of_other_filters() {
    let (_folder, service) = service_with_listing_data().await;
    let page = service
        .list_to_notify(list_request("", "", vec![], 1, ""))
        .await
        .unwrap();
    let request = list_request("2026-12-01T00:00:00Z", "", vec![], 1, &page.next_page_token);
    let error = service.list_to_notify(request).await.unwrap_err();
    assert!(
        matches!(
            error,
            QueryError::InvalidArgument {
                field: "page_token",
                ..
            }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn list_rejects_inverted_window() {
    let (_folder, service) = service_with_listing_data().await;
    let request = list_request(
        "2026-12-03T00:00:00Z",
        "2026-12-01T00:00:00Z",
        vec![],
        0,
        "",
    );
    let error = service.list_to_notify(request).await.unwrap_err();
    assert!(
        matches!(
            error,
            QueryError::InvalidArgument {
                field: "issued_since",
                ..
            }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn list_caps_page_size() {
    let (_folder, service) = open_service().await;
    service.import(CHINOOK.as_bytes().to_vec()).await.unwrap();
    let page = service
        .list_to_notify(list_request("", "", vec![], 5000, ""))
        .await
        .unwrap();
    assert_eq!(page.invoices.len(), MAX_PAGE_SIZE.min(412) as usize);
    let page = service
        .list_to_notify(list_request("", "", vec![], 0, ""))
        .await
        .unwrap();
    assert_eq!(page.invoices.len(), DEFAULT_PAGE_SIZE.min(412) as usize);
    assert_eq!(page.next_page_token, "");
}
