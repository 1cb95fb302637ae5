//! Checks of one `customer` record and its contacts.

use invoicer_domain::LanguageTag;
use invoicer_domain::email::{AddressError, Mailbox, parse_address_list};
use serde_json::Value;

use super::CheckedRecord;
use super::fields::{Checker, Lines, Scope, excerpt};
use crate::model::{Contact, Customer, RecipientRole};

/// Maximum length of a customer code, in characters.
pub(crate) const MAX_CODE_CHARS: usize = 64;
/// Contacts of one customer; each may become a recipient of every invoice message.
const MAX_CONTACTS: usize = 50;

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
    let items = checker.array(scope, "contacts", false);
    if items.len() > MAX_CONTACTS {
        checker.report(
            scope.field_path("contacts"),
            format!(
                "has {} contacts; the maximum is {MAX_CONTACTS}",
                items.len()
            ),
        );
        return None;
    }
    let contacts: Vec<Option<Contact>> = items
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
    let email = read_email(checker, &scope, &name);
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

/// Reads a contact's address list and returns it as the ERP sent it. `parse_address_list`,
/// the parser the orchestrator uses when it sends, splits and checks it, so import and sending
/// agree on which addresses are valid. The contact is rejected when no element is valid, and
/// each invalid element beside a valid one becomes a warning.
fn read_email(checker: &mut Checker, scope: &Scope<'_>, contact_name: &str) -> Option<String> {
    let email = checker.required_text(scope, "email", Lines::Single)?;
    let field = scope.field_path("email");
    let contact = contact_label(contact_name);
    let elements = parse_address_list(&email);
    if elements.iter().all(Result::is_err) {
        let errors: Vec<&AddressError> = elements.iter().filter_map(|e| e.as_ref().err()).collect();
        checker.report(field, no_valid_address_message(&email, &contact, &errors));
        return None;
    }
    for (index, element) in elements.iter().enumerate() {
        let Err(error) = element else {
            continue;
        };
        let next_has_name = matches!(
            elements.get(index + 1),
            Some(Ok(Mailbox { name: Some(_), .. }))
        );
        checker.warn(
            field.clone(),
            invalid_element_warning(&contact, error, next_has_name),
        );
    }
    Some(email)
}

/// Builds the warning for one invalid element of a list that has valid ones too.
/// `next_has_name` is true when the element after it is a mailbox with a display name.
fn invalid_element_warning(contact: &str, error: &AddressError, next_has_name: bool) -> String {
    let mut message = format!(
        "invalid email address {:?} for {contact}: {}; this address gets no mail until it is \
         fixed in the ERP, while the other addresses in the field still do",
        error.input, error.reason
    );
    // An unquoted display name with a comma, such as `Lee, Jordan <j@x.example>`, splits into
    // a name fragment without `@` followed by a mailbox with a display name.
    if next_has_name && !error.input.contains('@') {
        message.push_str(&format!(
            "; if {:?} is part of the display name after it, put the whole name in quotes, as \
             in \"Lee, Jordan\" <j@x.example>",
            error.input
        ));
    }
    message
}

/// Names a contact in messages by its display name, which the export does not require.
fn contact_label(name: &str) -> String {
    if name.is_empty() {
        "the contact without a name".to_owned()
    } else {
        format!("contact {name:?}")
    }
}

/// Builds the rejection message for an address field without any valid element. `errors`
/// contains one entry per non-empty element.
fn no_valid_address_message(email: &str, contact: &str, errors: &[&AddressError]) -> String {
    match errors {
        [] => format!(
            "no email address for {contact} in {}: give one address, or several separated by \
             commas or semicolons",
            excerpt(email)
        ),
        [error] => format!(
            "invalid email address {:?} for {contact}: {}",
            error.input, error.reason
        ),
        several => {
            let reasons: Vec<String> = several
                .iter()
                .map(|error| format!("{:?} is invalid ({})", error.input, error.reason))
                .collect();
            format!(
                "no valid email address for {contact} in {}: {}",
                excerpt(email),
                reasons.join(", ")
            )
        }
    }
}
