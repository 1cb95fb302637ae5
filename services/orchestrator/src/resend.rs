//! Manual resends and previews. Neither changes the automatic setup: a resend is a delivery of
//! its own, keyed by the client's request id, and a preview writes nothing. Both use the
//! customer's notifier templates and, when sending to the contacts, its extra addresses. A
//! resend ignores whether the notifier is switched off and which kinds it sends.

use invoicer_domain::email::Mailbox;
use invoicer_kit::Role;

use crate::engine::Engine;
use crate::error::OrchestratorError;
use crate::model::{Delivery, Document, Purpose, RequestedResend};
use crate::recipients::{self, Recipients};
use crate::upstream::Invoice;

pub(crate) struct ResendRequest {
    pub invoice_number: String,
    /// 0 means the latest revision.
    pub revision: u32,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    pub reason: String,
    pub request_id: String,
    /// The requester: the authenticated caller, with the name the client claimed beside it.
    pub actor: String,
    /// The authenticated caller's role; an override outside the customer's domains needs
    /// operator or admin.
    pub caller_role: Role,
}

pub(crate) struct ResendResult {
    pub delivery: Delivery,
    /// The request id was seen before; nothing was sent this time.
    pub replayed: bool,
}

pub(crate) struct Preview {
    pub document: Document,
    pub subject: String,
    pub recipients: Recipients,
}

/// Returns the revision a resend or preview requests: `requested`, or the latest when it is 0.
/// A revision after the latest is invalid.
fn requested_revision(invoice: &Invoice, requested: u32) -> Result<u32, OrchestratorError> {
    if requested > invoice.revision {
        return Err(OrchestratorError::invalid(
            "revision",
            format!(
                "invoice {} has no revision {requested}; the latest is {}",
                invoice.number, invoice.revision
            ),
        ));
    }
    Ok(if requested == 0 {
        invoice.revision
    } else {
        requested
    })
}

/// `<invoice number>.pdf` with characters that file systems reject replaced by `_`; the same
/// rule pdf-render applies.
pub(crate) fn attachment_name(number: &str) -> String {
    let safe: String = number
        .chars()
        .map(|c| {
            if c.is_control() || "/\\:*?\"<>|".contains(c) {
                '_'
            } else {
                c
            }
        })
        .collect();
    format!("{safe}.pdf")
}

fn parse_overrides(
    field: &'static str,
    values: &[String],
) -> Result<Vec<Mailbox>, OrchestratorError> {
    let mut mailboxes = Vec::new();
    for value in values {
        for parsed in invoicer_domain::email::parse_address_list(value) {
            let mailbox = parsed
                .map_err(|e| OrchestratorError::invalid(field, format!("{e}; nothing was sent")))?;
            mailboxes.push(mailbox);
        }
    }
    Ok(mailboxes)
}

/// Returns the override addresses whose domain is not the domain of any of the customer's
/// contacts' addresses, in request order.
fn outside_customer_domains(
    contacts: &[crate::upstream::Contact],
    overrides: [&Vec<Mailbox>; 3],
) -> Vec<String> {
    let domains: Vec<String> = contacts
        .iter()
        .flat_map(|contact| invoicer_domain::email::parse_address_list(&contact.email))
        .filter_map(Result::ok)
        .filter_map(|mailbox| domain_of(&mailbox.address))
        .collect();
    overrides
        .into_iter()
        .flatten()
        .filter(|mailbox| {
            domain_of(&mailbox.address).is_none_or(|domain| !domains.contains(&domain))
        })
        .map(|mailbox| mailbox.address.clone())
        .collect()
}

fn domain_of(address: &str) -> Option<String> {
    address
        .rsplit_once('@')
        .map(|(_, domain)| domain.to_ascii_lowercase())
}

/// Checks that a resend to addresses outside the customer's domains comes from an operator or
/// an admin and has a reason. A viewer may never send there.
fn check_outside_override(
    request: &ResendRequest,
    invoice_number: &str,
    outside: &[String],
) -> Result<(), OrchestratorError> {
    if outside.is_empty() {
        return Ok(());
    }
    if !request.caller_role.is_at_least(Role::Operator) {
        tracing::warn!(invoice = %invoice_number, actor = %request.actor, role = %request.caller_role, addresses = outside.len(), "resend outside the customer's domains denied");
        return Err(OrchestratorError::PermissionDenied(format!(
            "{} is outside the domains of the customer's contacts; sending there needs role operator or admin, and the caller has role {}",
            outside.join(", "),
            request.caller_role
        )));
    }
    if request.reason.trim().is_empty() {
        return Err(OrchestratorError::invalid(
            "reason",
            format!(
                "{} is outside the domains of the customer's contacts; give a reason",
                outside.join(", ")
            ),
        ));
    }
    tracing::info!(invoice = %invoice_number, actor = %request.actor, addresses = outside.len(), "resend to addresses outside the customer's domains");
    Ok(())
}

/// Names the parts of a repeated request that differ from the first one with its request
/// id: the revision and the to, cc and bcc addresses as requested, and the reason.
///
/// A resend stored before the request itself was kept has only what was sent. Then the
/// recipients are compared only when the repeat names some, because the first request may
/// have used the contacts' addresses of that time. A repeat that names no revision (0) then
/// matches the revision that was sent, whichever it was.
fn differs_from(
    request: &ResendRequest,
    previous: &Delivery,
) -> Result<Vec<&'static str>, OrchestratorError> {
    let repeat = RequestedResend::new(
        request.revision,
        &parse_overrides("to", &request.to)?,
        &parse_overrides("cc", &request.cc)?,
        &parse_overrides("bcc", &request.bcc)?,
    );
    let first = match &previous.requested {
        Some(first) => first.clone(),
        None => {
            let mut sent = RequestedResend::new(
                previous.invoice_revision,
                &previous.to,
                &previous.cc,
                &previous.bcc,
            );
            if repeat.revision == 0 {
                sent.revision = 0;
            }
            if repeat.to.is_empty() && repeat.cc.is_empty() && repeat.bcc.is_empty() {
                sent.to.clear();
                sent.cc.clear();
                sent.bcc.clear();
            }
            sent
        }
    };
    let mut differences = Vec::new();
    if repeat.revision != first.revision {
        differences.push("revision");
    }
    if request.reason.trim() != previous.resend_reason.trim() {
        differences.push("reason");
    }
    for (field, repeated, first) in [
        ("to", &repeat.to, &first.to),
        ("cc", &repeat.cc, &first.cc),
        ("bcc", &repeat.bcc, &first.bcc),
    ] {
        if repeated != first {
            differences.push(field);
        }
    }
    Ok(differences)
}

/// Joins names as a list in a sentence: `reason`, `reason and cc`, `revision, reason and cc`.
fn join_names(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [only] => (*only).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

impl Engine {
    pub(crate) async fn resend(
        &self,
        request: ResendRequest,
    ) -> Result<ResendResult, OrchestratorError> {
        if request.invoice_number.trim().is_empty() {
            return Err(OrchestratorError::invalid(
                "invoice_number",
                "the invoice number is missing",
            ));
        }
        if request.reason.trim().is_empty() {
            return Err(OrchestratorError::invalid(
                "reason",
                "a reason is required; it is kept in the email log",
            ));
        }
        for (field, value) in [
            ("reason", &request.reason),
            ("actor", &request.actor),
            ("request_id", &request.request_id),
        ] {
            if value.chars().any(char::is_control) {
                return Err(OrchestratorError::invalid(
                    field,
                    format!("{value:?} contains a control character; use one line of plain text"),
                ));
            }
        }
        if let Some(previous) = self.replay(&request).await? {
            return Ok(ResendResult {
                delivery: previous,
                replayed: true,
            });
        }
        let to = parse_overrides("to", &request.to)?;
        let cc = parse_overrides("cc", &request.cc)?;
        let bcc = parse_overrides("bcc", &request.bcc)?;
        let requested = RequestedResend::new(request.revision, &to, &cc, &bcc);

        let invoice = match self.upstream.get_invoice(&request.invoice_number).await {
            Err(error) if error.is_not_found() => {
                return Err(OrchestratorError::NotFound(format!(
                    "invoice {} not found; import it first",
                    request.invoice_number
                )));
            }
            other => other?,
        };
        let revision = requested_revision(&invoice, request.revision)?;
        if revision != invoice.revision
            && self
                .store
                .document(&invoice.number, revision)
                .await?
                .is_none()
        {
            return Err(OrchestratorError::FailedPrecondition(format!(
                "invoice {} revision {revision} was never sent, so no PDF of it was kept; resend the latest revision {}",
                invoice.number, invoice.revision
            )));
        }

        let outside = outside_customer_domains(&invoice.customer.contacts, [&to, &cc, &bcc]);
        check_outside_override(&request, &invoice.number, &outside)?;

        let recipients = if to.is_empty() && cc.is_empty() && bcc.is_empty() {
            // To the contacts as a batch would send it: with the notifier's extra addresses.
            let notifier = self.effective_notifier(&invoice.customer.code).await?;
            let mut recipients = recipients::from_contacts(&invoice.customer.contacts);
            notifier.add_extra_recipients(&mut recipients);
            recipients
        } else {
            Recipients {
                to,
                cc,
                bcc,
                problems: Vec::new(),
            }
        };
        if let Some(reason) = recipients.unusable_reason() {
            return Err(OrchestratorError::FailedPrecondition(format!(
                "{reason}; pass --to to send to another address"
            )));
        }

        let request_id = if request.request_id.is_empty() {
            uuid::Uuid::now_v7().to_string()
        } else {
            request.request_id.clone()
        };
        let key = Delivery::resend_key(&invoice.number, revision, &request_id);
        let mut delivery = Delivery::new(
            key,
            &invoice.number,
            revision,
            &invoice.customer.code,
            Purpose::Resend,
        );
        delivery.request_id = Some(request_id);
        delivery.requested = Some(requested);
        delivery.to = recipients.to;
        delivery.cc = recipients.cc;
        delivery.bcc = recipients.bcc;
        delivery.actor = request.actor.clone();
        delivery.resend_reason = request.reason.clone();
        // In flight from before the insert, which leases it to this replica: the retry loop
        // settles a leased delivery that is not in flight as one whose worker went away.
        let _in_flight = self.track(&delivery.id);
        // The same request id can arrive twice at once. Then the first insert sends, and the
        // other gets its result, or an error naming what differs. A repeat for another
        // revision has another key and conflicts only on the unique request id.
        let inserted = match self.store.insert_delivery(&delivery).await {
            Ok(inserted) => inserted,
            Err(error) => match self.replay(&request).await? {
                Some(previous) => {
                    return Ok(ResendResult {
                        delivery: previous,
                        replayed: true,
                    });
                }
                None => return Err(error.into()),
            },
        };
        if !inserted {
            if let Some(previous) = self.replay(&request).await? {
                return Ok(ResendResult {
                    delivery: previous,
                    replayed: true,
                });
            }
            tracing::warn!(invoice = %invoice.number, delivery_id = %delivery.id, key = %delivery.key, "resend not stored: its key exists, but no delivery has its request id");
            return Err(OrchestratorError::FailedPrecondition(format!(
                "a delivery with key {} exists, but none with request id {:?}; nothing was sent, so repeat the request with a new request id",
                delivery.key,
                delivery.request_id.as_deref().unwrap_or_default()
            )));
        }
        // The mail server may have accepted the `unknown` delivery, so the resend carries its
        // Message-ID: a recipient who got both receives one message twice, not two messages.
        if let Some(message_id) = self
            .store
            .unknown_message_id(&invoice.number, revision)
            .await?
        {
            tracing::info!(invoice = %invoice.number, delivery_id = %delivery.id, message_id = %message_id, "resending an unknown delivery with its Message-ID");
            delivery.message_id = message_id;
            self.store.save_delivery(&delivery).await?;
        }
        tracing::info!(invoice = %invoice.number, revision, delivery_id = %delivery.id, actor = %request.actor, "resend requested");
        let delivery = self.deliver(delivery).await?;
        Ok(ResendResult {
            delivery,
            replayed: false,
        })
    }

    /// Returns the earlier result of the same request id, if there is one.
    async fn replay(&self, request: &ResendRequest) -> Result<Option<Delivery>, OrchestratorError> {
        if request.request_id.is_empty() {
            return Ok(None);
        }
        let Some(previous) = self
            .store
            .delivery_by_request_id(&request.request_id)
            .await?
        else {
            return Ok(None);
        };
        if previous.invoice_number != request.invoice_number {
            return Err(OrchestratorError::invalid(
                "request_id",
                format!(
                    "request id {:?} was already used for invoice {}; choose a new request id",
                    request.request_id, previous.invoice_number
                ),
            ));
        }
        let differences = differs_from(request, &previous)?;
        if !differences.is_empty() {
            let no_addresses =
                request.to.is_empty() && request.cc.is_empty() && request.bcc.is_empty();
            let mut hint = String::new();
            // Two revision numbers differ plainly, so the hint is only for a request that named
            // none.
            let first_revision = previous.requested.as_ref().map(|first| first.revision);
            if differences.contains(&"revision")
                && (request.revision == 0 || first_revision == Some(0))
            {
                hint.push_str(
                    "revision 0 (or none) means the latest, which differs from naming its number; ",
                );
            }
            if no_addresses
                && differences
                    .iter()
                    .any(|field| ["to", "cc", "bcc"].contains(field))
            {
                hint.push_str(
                    "this request names no addresses, so it would go to the customer's contacts; ",
                );
            }
            return Err(OrchestratorError::invalid(
                "request_id",
                format!(
                    "request id {:?} was already used with a different {}; {hint}repeat the first request exactly, or choose a new request id",
                    request.request_id,
                    join_names(&differences)
                ),
            ));
        }
        tracing::info!(invoice = %previous.invoice_number, request_id = %request.request_id, delivery_id = %previous.id, "resend request repeated; returning the first result");
        Ok(Some(previous))
    }

    pub(crate) async fn preview(
        &self,
        invoice_number: &str,
        revision: u32,
    ) -> Result<Preview, OrchestratorError> {
        let invoice = match self.upstream.get_invoice(invoice_number).await {
            Err(error) if error.is_not_found() => {
                return Err(OrchestratorError::NotFound(format!(
                    "invoice {invoice_number} not found; import it first"
                )));
            }
            other => other?,
        };
        let revision = requested_revision(&invoice, revision)?;
        let document = match self.store.document(&invoice.number, revision).await? {
            Some(frozen) => frozen,
            None if revision == invoice.revision => {
                self.upstream.render(&invoice, &self.config.company).await?
            }
            None => {
                return Err(OrchestratorError::FailedPrecondition(format!(
                    "invoice {invoice_number} revision {revision} was never sent, so no PDF of it was kept; the latest is {}",
                    invoice.revision
                )));
            }
        };
        let notifier = self.effective_notifier(&invoice.customer.code).await?;
        let corrected = self
            .store
            .sent_before_revision(&invoice.number, revision)
            .await?;
        let stated = self.invoice_as_sent(&invoice, revision).await?;
        let message = self.templates.compose(
            &stated,
            &self.config.company.name,
            &self.config.company.email,
            &notifier.templates,
            corrected,
        )?;
        let mut recipients = recipients::from_contacts(&invoice.customer.contacts);
        notifier.add_extra_recipients(&mut recipients);
        Ok(Preview {
            document,
            subject: message.subject,
            recipients,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_names_reads_as_a_list() {
        assert_eq!(join_names(&["reason"]), "reason");
        assert_eq!(join_names(&["reason", "cc"]), "reason and cc");
        assert_eq!(
            join_names(&["revision", "reason", "cc"]),
            "revision, reason and cc"
        );
    }

    #[test]
    fn attachment_name_replaces_unsafe_characters() {
        assert_eq!(attachment_name("INV/2026:01"), "INV_2026_01.pdf");
        assert_eq!(attachment_name("INV-1"), "INV-1.pdf");
    }

    fn contact(email: &str) -> crate::upstream::Contact {
        crate::upstream::Contact {
            name: "AP".to_owned(),
            email: email.to_owned(),
            role: crate::upstream::ContactRole::To,
        }
    }

    fn mailboxes(addresses: &[&str]) -> Vec<Mailbox> {
        addresses
            .iter()
            .map(|address| Mailbox {
                name: None,
                address: (*address).to_owned(),
            })
            .collect()
    }

    fn request(role: Role, reason: &str) -> ResendRequest {
        ResendRequest {
            invoice_number: "INV-1".to_owned(),
            revision: 0,
            to: Vec::new(),
            cc: Vec::new(),
            bcc: Vec::new(),
            reason: reason.to_owned(),
            request_id: String::new(),
            actor: "t".to_owned(),
            caller_role: role,
        }
    }

    #[test]
    fn outside_domains_are_listed() {
        let contacts = [contact("ap@customer.example; boss@Sub.Customer.example")];
        let to = mailboxes(&["x@customer.example", "y@other.example"]);
        let cc = mailboxes(&["z@sub.customer.example"]);
        let bcc = mailboxes(&["w@customer.example.evil"]);
        let outside = outside_customer_domains(&contacts, [&to, &cc, &bcc]);
        assert_eq!(outside, ["y@other.example", "w@customer.example.evil"]);
    }

    #[test]
    fn outside_override_needs_operator_and_reason() {
        let outside = ["y@other.example".to_owned()];
        assert!(
            check_outside_override(&request(Role::Operator, "copy"), "INV-1", &outside).is_ok()
        );
        assert!(check_outside_override(&request(Role::Admin, "copy"), "INV-1", &outside).is_ok());
        let viewer = check_outside_override(&request(Role::Viewer, "copy"), "INV-1", &outside);
        assert!(matches!(
            viewer,
            Err(OrchestratorError::PermissionDenied(_))
        ));
        let service = check_outside_override(&request(Role::Service, "copy"), "INV-1", &outside);
        assert!(matches!(
            service,
            Err(OrchestratorError::PermissionDenied(_))
        ));
        let no_reason = check_outside_override(&request(Role::Operator, " "), "INV-1", &outside);
        assert!(matches!(
            no_reason,
            Err(OrchestratorError::InvalidArgument {
                field: "reason",
                ..
            })
        ));
    }

    #[test]
    fn inside_domains_need_no_check() {
        assert!(check_outside_override(&request(Role::Viewer, ""), "INV-1", &[]).is_ok());
    }

    /// Returns the stored resend of INV-1 revision 1 that `first` requested, sent to `sent_to`.
    fn stored_resend(first: Option<&ResendRequest>, sent_to: &[&str]) -> Delivery {
        let mut delivery = Delivery::new(
            Delivery::resend_key("INV-1", 1, "ticket-1"),
            "INV-1",
            1,
            "C-1",
            Purpose::Resend,
        );
        delivery.to = mailboxes(sent_to);
        delivery.resend_reason = "copy".to_owned();
        delivery.requested = first.map(|first| {
            RequestedResend::new(
                first.revision,
                &parse_overrides("to", &first.to).unwrap(),
                &parse_overrides("cc", &first.cc).unwrap(),
                &parse_overrides("bcc", &first.bcc).unwrap(),
            )
        });
        delivery
    }

    #[test]
    fn repeat_compared_with_request() {
        let mut first = request(Role::Operator, "copy");
        first.to = vec!["Copy@Elsewhere.example, ap@customer.example".to_owned()];
        let previous = stored_resend(
            Some(&first),
            &["copy@elsewhere.example", "ap@customer.example"],
        );

        let mut same = request(Role::Operator, "copy");
        same.to = vec![
            "ap@customer.example".to_owned(),
            "copy@elsewhere.example".to_owned(),
        ];
        assert!(differs_from(&same, &previous).unwrap().is_empty());

        // Without --to it would go to the contacts, so it is another request.
        let to_contacts = request(Role::Operator, "copy");
        assert_eq!(differs_from(&to_contacts, &previous).unwrap(), ["to"]);

        // The first request named no revision, so it meant the latest, which was 1. A repeat
        // that names revision 1 is still a different request.
        let mut named_revision = same;
        named_revision.revision = 1;
        assert_eq!(
            differs_from(&named_revision, &previous).unwrap(),
            ["revision"]
        );
    }

    #[test]
    fn repeat_without_named_revision_differs() {
        let mut first = request(Role::Operator, "copy");
        first.revision = 1;
        let previous = stored_resend(Some(&first), &["ap@customer.example"]);
        assert_eq!(
            differs_from(&request(Role::Operator, "copy"), &previous).unwrap(),
            ["revision"]
        );
        let mut extra_cc = first;
        extra_cc.cc = vec!["boss@customer.example".to_owned()];
        assert_eq!(differs_from(&extra_cc, &previous).unwrap(), ["cc"]);
    }

    #[test]
    fn older_resend_compared_with_sent() {
        // Stored before the request was kept, so only the revision and recipients sent are known.
        let previous = stored_resend(None, &["copy@elsewhere.example"]);
        assert!(
            differs_from(&request(Role::Operator, "copy"), &previous)
                .unwrap()
                .is_empty()
        );
        let mut same = request(Role::Operator, "copy");
        same.revision = 1;
        same.to = vec!["COPY@elsewhere.example".to_owned()];
        assert!(differs_from(&same, &previous).unwrap().is_empty());
        let mut other = request(Role::Operator, "other reason");
        other.revision = 2;
        other.bcc = vec!["audit@elsewhere.example".to_owned()];
        assert_eq!(
            differs_from(&other, &previous).unwrap(),
            ["revision", "reason", "to", "bcc"]
        );
    }
}
