//! Limits on the InvoiceQueryService requests, with every bad field named in one
//! INVALID_ARGUMENT status. `UpsertInvoices` is checked by the import, record by record.

use invoicer_kit::validate::Violations;
use invoicer_proto::invoice_query::v1 as pb;
use tonic::Status;

use crate::import::{MAX_CODE_CHARS, MAX_NUMBER_CHARS};

const MAX_INSTANT_BYTES: usize = 64;
const MAX_PAGE_TOKEN_BYTES: usize = 256;
const MAX_KINDS: usize = 8;

pub(crate) fn get_invoice(request: &pb::GetInvoiceRequest) -> Result<(), Status> {
    let mut violations = Violations::new();
    // Characters, as the import counts them; four bytes each at most.
    violations.single_line("number", &request.number, MAX_NUMBER_CHARS * 4);
    violations.into_result()
}

pub(crate) fn get_customer(request: &pb::GetCustomerRequest) -> Result<(), Status> {
    let mut violations = Violations::new();
    violations.single_line("code", &request.code, MAX_CODE_CHARS * 4);
    violations.into_result()
}

pub(crate) fn list_invoices_to_notify(
    request: &pb::ListInvoicesToNotifyRequest,
) -> Result<(), Status> {
    let mut violations = Violations::new();
    violations.single_line("issued_before", &request.issued_before, MAX_INSTANT_BYTES);
    violations.single_line("issued_since", &request.issued_since, MAX_INSTANT_BYTES);
    violations.max_count("kinds", request.kinds.len(), MAX_KINDS);
    violations.single_line("page_token", &request.page_token, MAX_PAGE_TOKEN_BYTES);
    violations.into_result()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad_fields(result: Result<(), Status>) -> Vec<String> {
        let status = result.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        invoicer_kit::validate::bad_request_fields(&status)
    }

    #[test]
    fn valid_requests_pass() {
        let invoice = pb::GetInvoiceRequest {
            number: "INV-1".to_owned(),
        };
        assert!(get_invoice(&invoice).is_ok());
        assert!(list_invoices_to_notify(&pb::ListInvoicesToNotifyRequest::default()).is_ok());
    }

    #[test]
    fn control_characters_and_lengths_rejected() {
        let invoice = pb::GetInvoiceRequest {
            number: "INV\r\n1".to_owned(),
        };
        assert_eq!(bad_fields(get_invoice(&invoice)), ["number"]);
        let customer = pb::GetCustomerRequest {
            code: "c".repeat(MAX_CODE_CHARS * 4 + 1),
        };
        assert_eq!(bad_fields(get_customer(&customer)), ["code"]);
        let list = pb::ListInvoicesToNotifyRequest {
            issued_before: "x\0".to_owned(),
            kinds: vec![1; MAX_KINDS + 1],
            page_token: "t".repeat(MAX_PAGE_TOKEN_BYTES + 1),
            ..Default::default()
        };
        assert_eq!(
            bad_fields(list_invoices_to_notify(&list)),
            ["issued_before", "kinds", "page_token"]
        );
    }
}
