//! Limits on a `RenderInvoice` request, with every bad field named in one INVALID_ARGUMENT
//! status. The conversion to the renderer's input checks the values' meaning afterwards.

use invoicer_kit::validate::{Violations, indexed};
use invoicer_proto::pdf_render::v1 as proto;
use invoicer_proto::types::v1 as types;
use tonic::Status;

/// Lines of one invoice, as the import accepts them.
pub(crate) const MAX_LINES: usize = 1000;
const MAX_TAXES: usize = 50;
const MAX_ADDRESS_LINES: usize = 10;
const MAX_CONTACTS: usize = 50;
const MAX_KEY_BYTES: usize = 1024;
const MAX_SHORT_BYTES: usize = 64;
const MAX_LINE_BYTES: usize = 512;
const MAX_TEXT_BYTES: usize = 8 << 10;

pub(crate) fn render_invoice(request: &proto::RenderInvoiceRequest) -> Result<(), Status> {
    let mut violations = Violations::new();
    if let Some(invoice) = &request.invoice {
        invoice_fields(&mut violations, invoice);
    }
    if let Some(customer) = &request.customer {
        customer_fields(&mut violations, customer);
    }
    if let Some(seller) = &request.seller {
        violations.single_line("seller.name", &seller.name, MAX_LINE_BYTES);
        address_lines(&mut violations, "seller.address", &seller.address);
        for (field, value) in [
            ("seller.tax_id", &seller.tax_id),
            ("seller.email", &seller.email),
            ("seller.phone", &seller.phone),
            ("seller.website", &seller.website),
        ] {
            violations.single_line(field, value, MAX_LINE_BYTES);
        }
    }
    violations.single_line("template", &request.template, MAX_SHORT_BYTES);
    violations.into_result()
}

fn invoice_fields(violations: &mut Violations, invoice: &types::Invoice) {
    for (field, value, max) in [
        ("invoice.number", &invoice.number, MAX_KEY_BYTES),
        (
            "invoice.customer_code",
            &invoice.customer_code,
            MAX_KEY_BYTES,
        ),
        (
            "invoice.order_number",
            &invoice.order_number,
            MAX_LINE_BYTES,
        ),
        ("invoice.po_number", &invoice.po_number, MAX_LINE_BYTES),
        ("invoice.issued_at", &invoice.issued_at, MAX_SHORT_BYTES),
        ("invoice.due_date", &invoice.due_date, MAX_SHORT_BYTES),
        ("invoice.currency", &invoice.currency, MAX_SHORT_BYTES),
        ("invoice.subtotal", &invoice.subtotal, MAX_SHORT_BYTES),
        ("invoice.total", &invoice.total, MAX_SHORT_BYTES),
        (
            "invoice.content_sha256",
            &invoice.content_sha256,
            MAX_SHORT_BYTES,
        ),
    ] {
        violations.single_line(field, value, max);
    }
    violations.text("invoice.terms", &invoice.terms, MAX_TEXT_BYTES);
    violations.text("invoice.notes", &invoice.notes, MAX_TEXT_BYTES);
    violations.max_count("invoice.lines", invoice.lines.len(), MAX_LINES);
    for (index, line) in invoice.lines.iter().enumerate().take(MAX_LINES + 1) {
        let field = indexed("invoice.lines", index);
        violations.single_line(&format!("{field}.sku"), &line.sku, MAX_LINE_BYTES);
        violations.text(
            &format!("{field}.description"),
            &line.description,
            MAX_TEXT_BYTES,
        );
        for (name, value) in [
            ("quantity", &line.quantity),
            ("unit", &line.unit),
            ("unit_price", &line.unit_price),
            ("amount", &line.amount),
            ("tax_rate", &line.tax_rate),
        ] {
            violations.single_line(&format!("{field}.{name}"), value, MAX_SHORT_BYTES);
        }
    }
    violations.max_count("invoice.taxes", invoice.taxes.len(), MAX_TAXES);
    for (index, tax) in invoice.taxes.iter().enumerate().take(MAX_TAXES + 1) {
        let field = indexed("invoice.taxes", index);
        violations.single_line(&format!("{field}.name"), &tax.name, MAX_LINE_BYTES);
        violations.single_line(&format!("{field}.rate"), &tax.rate, MAX_SHORT_BYTES);
        violations.single_line(&format!("{field}.amount"), &tax.amount, MAX_SHORT_BYTES);
    }
}

fn customer_fields(violations: &mut Violations, customer: &types::Customer) {
    violations.single_line("customer.code", &customer.code, MAX_KEY_BYTES);
    violations.single_line("customer.name", &customer.name, MAX_LINE_BYTES);
    violations.single_line("customer.language", &customer.language, MAX_SHORT_BYTES);
    address_lines(violations, "customer.address", &customer.address);
    violations.single_line("customer.tax_id", &customer.tax_id, MAX_LINE_BYTES);
    violations.max_count("customer.contacts", customer.contacts.len(), MAX_CONTACTS);
    for (index, contact) in customer.contacts.iter().enumerate().take(MAX_CONTACTS + 1) {
        let field = indexed("customer.contacts", index);
        violations.single_line(&format!("{field}.name"), &contact.name, MAX_LINE_BYTES);
        violations.single_line(&format!("{field}.email"), &contact.email, MAX_KEY_BYTES);
    }
}

fn address_lines(violations: &mut Violations, field: &str, lines: &[String]) {
    violations.max_count(field, lines.len(), MAX_ADDRESS_LINES);
    for (index, line) in lines.iter().enumerate().take(MAX_ADDRESS_LINES + 1) {
        violations.single_line(&indexed(field, index), line, MAX_LINE_BYTES);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad_fields(request: &proto::RenderInvoiceRequest) -> Vec<String> {
        let status = render_invoice(request).unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        invoicer_kit::validate::bad_request_fields(&status)
    }

    fn line() -> types::InvoiceLine {
        types::InvoiceLine {
            description: "Widget,\nblue".to_owned(),
            amount: "1.00".to_owned(),
            ..Default::default()
        }
    }

    #[test]
    fn multi_line_description_is_allowed() {
        let request = proto::RenderInvoiceRequest {
            invoice: Some(types::Invoice {
                number: "INV-1".to_owned(),
                lines: vec![line()],
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(render_invoice(&request).is_ok());
    }

    #[test]
    fn too_many_lines() {
        let request = proto::RenderInvoiceRequest {
            invoice: Some(types::Invoice {
                lines: vec![line(); MAX_LINES + 1],
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(bad_fields(&request), ["invoice.lines"]);
    }

    #[test]
    fn bad_fields_are_named() {
        let mut bad_line = line();
        bad_line.unit = "pcs\r".to_owned();
        let request = proto::RenderInvoiceRequest {
            invoice: Some(types::Invoice {
                number: "INV\n1".to_owned(),
                lines: vec![line(), bad_line],
                notes: "x\0".to_owned(),
                ..Default::default()
            }),
            customer: Some(types::Customer {
                address: vec!["a".to_owned(); MAX_ADDRESS_LINES + 1],
                ..Default::default()
            }),
            template: "t".repeat(MAX_SHORT_BYTES + 1),
            ..Default::default()
        };
        assert_eq!(
            bad_fields(&request),
            [
                "invoice.number",
                "invoice.notes",
                "invoice.lines[1].unit",
                "customer.address",
                "template",
            ]
        );
    }
}
