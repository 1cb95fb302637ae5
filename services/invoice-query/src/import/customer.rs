//! Checks of one `customer` record and its contacts.

use invoicer_domain::LanguageTag;
use invoicer_domain::email::Mailbox;
use serde_json::Value;

use super::CheckedRecord;
use super::fields::{Checker, Lines, Scope};
use super::mailbox::parse_mailbox;
use crate::model::{Contact, Customer, RecipientRole};

/// Maximum length of a customer code, in characters.
pub(crate) const MAX_CODE_CHARS: usize = 64;

const CUSTOMER_FIELDS: &[&str] = &["code", "name", "language", "address", "tax_id", "contacts"];
const CONTACT_FIELDS: &[&str] = &["name", "email", "invoice_role"];
const ROLES: &[&str] = &["to", "cc", "bcc", "none"];

/// Checks the customer record at `path`. `type_field` allows the JSON Lines `type` field.
pub(crate) fn check_customer(
    value: &Value,
    path: &str,
    type_field: bool,
) -> CheckedRecord<Customer> {
    let key = value
        .get("code")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut checker = Checker::default();
    let customer = checker.object(value, path).and_then(|scope| {
        let mut known = CUSTOMER_FIELDS.to_vec();
        if type_field {
            known.push("type");
        }
        checker.reject_unknown_fields(&scope, &known);
        read_customer(&mut checker, &scope)
    });
    CheckedRecord::new(path, key, customer, checker)
}

fn read_customer(checker: &mut Checker, scope: &Scope<'_>) -> Option<Customer> {
    let code = checker.key(scope, "code", MAX_CODE_CHARS);
    let name = checker.required_text(scope, "name", Lines::Single);
    let language = read_language(checker, scope);
    let address = checker.text_list(scope, "address");
    let tax_id = checker.optional_text(scope, "tax_id", Lines::Single);
    let contacts: Vec<Option<Contact>> = checker
        .array(scope, "contacts", false)
        .into_iter()
        .map(|(path, item)| read_contact(checker, item, &path))
        .collect();
    if !checker.problems.is_empty() {
        return None;
    }
    Some(Customer {
        code: code?,
        name: name?,
        language,
        address,
        tax_id,
        contacts: contacts.into_iter().collect::<Option<Vec<_>>>()?,
    })
}

fn read_language(checker: &mut Checker, scope: &Scope<'_>) -> Option<String> {
    let tag = checker.optional_text(scope, "language", Lines::Single)?;
    match LanguageTag::parse(&tag) {
        Ok(_) => Some(tag),
        Err(error) => {
            checker.report(scope.field_path("language"), error.to_string());
            None
        }
    }
}

fn read_contact(checker: &mut Checker, value: &Value, path: &str) -> Option<Contact> {
    let scope = checker.object(value, path)?;
    checker.reject_unknown_fields(&scope, CONTACT_FIELDS);
    let name = checker
        .optional_text(&scope, "name", Lines::Single)
        .unwrap_or_default();
    let email = read_email(checker, &scope);
    let role = if scope
        .object
        .get("invoice_role")
        .is_some_and(|v| !v.is_null())
    {
        checker.choice(&scope, "invoice_role", RecipientRole::parse, ROLES)
    } else {
        Some(RecipientRole::To)
    };
    Some(Contact {
        name,
        email: email?,
        invoice_role: role?,
    })
}

/// Reads a contact's address. It must be one RFC 5322 mailbox, and the parser that the mail
/// path uses must accept it too, so that an address imported here can also be sent to.
fn read_email(checker: &mut Checker, scope: &Scope<'_>) -> Option<String> {
    let email = checker.required_text(scope, "email", Lines::Single)?;
    if let Err(reason) = parse_mailbox(&email) {
        checker.report(
            scope.field_path("email"),
            format!("invalid email address {email:?}: {reason}"),
        );
        return None;
    }
    if let Err(error) = Mailbox::parse(&email) {
        let message =
            format!("{error}; the address is valid RFC 5322, but invoicer cannot send to it");
        checker.report(scope.field_path("email"), message);
        return None;
    }
    Some(email)
}
