//! Turns a customer's contacts into To, Cc and Bcc recipients by their invoice roles.

use invoicer_domain::email::{Mailbox, parse_address_list};

use crate::upstream::{Contact, ContactRole};

#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Recipients {
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub bcc: Vec<Mailbox>,
    /// One line per address that could not be used, naming the contact and the address.
    pub problems: Vec<String>,
}

impl Recipients {
    /// Why nothing can be sent, when nothing can: the reason a skipped delivery carries.
    pub(crate) fn unusable_reason(&self) -> Option<String> {
        if !self.to.is_empty() || !self.cc.is_empty() {
            return None;
        }
        let mut reason = if self.bcc.is_empty() {
            "no recipient: the customer has no contact with a usable email address and role to, cc or bcc".to_owned()
        } else {
            "no recipient: the customer has only bcc contacts; add a contact with role to or cc"
                .to_owned()
        };
        if !self.problems.is_empty() {
            reason.push_str("; ");
            reason.push_str(&self.problems.join("; "));
        }
        Some(reason)
    }
}

/// Resolves contacts to recipients. A contact's email field may hold several addresses
/// (comma or semicolon separated); each invalid one is reported on its own and the others are
/// kept. An address that appears twice is kept in its first, most visible role only.
pub(crate) fn from_contacts(contacts: &[Contact]) -> Recipients {
    let mut recipients = Recipients::default();
    let mut ordered: Vec<&Contact> = contacts.iter().collect();
    ordered.sort_by_key(|c| role_rank(c.role));
    for contact in ordered {
        if contact.role == ContactRole::None {
            continue;
        }
        let parsed = parse_address_list(&contact.email);
        if parsed.is_empty() {
            recipients
                .problems
                .push(format!("contact {:?} has no email address", contact.name));
            continue;
        }
        let single = parsed.len() == 1;
        for result in parsed {
            match result {
                Ok(mut mailbox) => {
                    if mailbox.name.is_none() && single && !contact.name.trim().is_empty() {
                        mailbox.name = Some(contact.name.trim().to_owned());
                    }
                    recipients.push(contact.role, mailbox);
                }
                Err(error) => recipients
                    .problems
                    .push(format!("contact {:?}: {error}", contact.name)),
            }
        }
    }
    recipients
}

fn role_rank(role: ContactRole) -> u8 {
    match role {
        ContactRole::To => 0,
        ContactRole::Cc => 1,
        ContactRole::Bcc => 2,
        ContactRole::None => 3,
    }
}

impl Recipients {
    fn contains(&self, address: &str) -> bool {
        let same = |m: &Mailbox| m.address.eq_ignore_ascii_case(address);
        self.to.iter().any(same) || self.cc.iter().any(same) || self.bcc.iter().any(same)
    }

    /// Adds `mailbox` in `role` unless its address is already a recipient in any role.
    pub(crate) fn push(&mut self, role: ContactRole, mailbox: Mailbox) {
        if self.contains(&mailbox.address) {
            return;
        }
        match role {
            ContactRole::To => self.to.push(mailbox),
            ContactRole::Cc => self.cc.push(mailbox),
            ContactRole::Bcc => self.bcc.push(mailbox),
            ContactRole::None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(name: &str, email: &str, role: ContactRole) -> Contact {
        Contact {
            name: name.to_owned(),
            email: email.to_owned(),
            role,
        }
    }

    fn addresses(list: &[Mailbox]) -> Vec<&str> {
        list.iter().map(|m| m.address.as_str()).collect()
    }

    #[test]
    fn roles_map_to_headers() {
        let recipients = from_contacts(&[
            contact("Anna", "anna@x.example", ContactRole::To),
            contact("AP", "ap@x.example", ContactRole::Cc),
            contact("Audit", "audit@x.example", ContactRole::Bcc),
            contact("Max", "max@x.example", ContactRole::None),
        ]);
        assert_eq!(addresses(&recipients.to), ["anna@x.example"]);
        assert_eq!(addresses(&recipients.cc), ["ap@x.example"]);
        assert_eq!(addresses(&recipients.bcc), ["audit@x.example"]);
        assert!(recipients.problems.is_empty());
    }

    #[test]
    fn contact_name_becomes_display_name() {
        let recipients =
            from_contacts(&[contact("Anna Schmidt", "anna@x.example", ContactRole::To)]);
        assert_eq!(recipients.to[0].name.as_deref(), Some("Anna Schmidt"));
    }

    #[test]
    fn list_field_gives_several_recipients() {
        let recipients =
            from_contacts(&[contact("AP", "a@x.example; b@x.example", ContactRole::To)]);
        assert_eq!(addresses(&recipients.to), ["a@x.example", "b@x.example"]);
    }

    #[test]
    fn invalid_element_reported_others_kept() {
        let recipients = from_contacts(&[contact(
            "AP",
            "a@x.example, broken, b@x.example",
            ContactRole::To,
        )]);
        assert_eq!(addresses(&recipients.to), ["a@x.example", "b@x.example"]);
        assert_eq!(recipients.problems.len(), 1);
        assert!(
            recipients.problems[0].contains("\"broken\""),
            "{:?}",
            recipients.problems
        );
    }

    #[test]
    fn no_contact_gives_reason() {
        let recipients = from_contacts(&[]);
        assert!(recipients.to.is_empty());
        assert!(recipients.cc.is_empty());
        assert!(recipients.bcc.is_empty());
        assert!(
            recipients
                .unusable_reason()
                .unwrap()
                .starts_with("no recipient")
        );
    }

    #[test]
    fn only_bcc_is_unusable() {
        let recipients = from_contacts(&[contact("Audit", "audit@x.example", ContactRole::Bcc)]);
        assert!(recipients.unusable_reason().unwrap().contains("only bcc"));
    }

    #[test]
    fn duplicate_address_kept_in_first_role() {
        let recipients = from_contacts(&[
            contact("AP", "ap@x.example", ContactRole::Cc),
            contact("AP", "AP@x.example", ContactRole::To),
        ]);
        assert_eq!(addresses(&recipients.to), ["AP@x.example"]);
        assert!(recipients.cc.is_empty());
    }
}
