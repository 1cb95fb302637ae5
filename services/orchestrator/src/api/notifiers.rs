//! The notifier RPCs, and the conversions between proto notifiers and the orchestrator's.

use invoicer_domain::email::Mailbox;
use invoicer_kit::status::invalid_argument;
use invoicer_proto::orchestrator::v1 as pb;
use invoicer_proto::types::v1 as types;
use tonic::Status;

use super::convert::instant;
use super::server::{parse_offset_token, to_status};
use crate::engine::Engine;
use crate::notifier::{
    EffectiveNotifier, MessageTemplate, Notifier, NotifierChange, NotifierUpdate,
    NotifierUpdateRequest, Split, Templates, writable_notifier_code,
};
use crate::upstream::InvoiceKind;

const MAX_CHANGE_PAGE: u32 = 100;
const DEFAULT_CHANGE_PAGE: u32 = 20;

pub(super) async fn get(
    engine: &Engine,
    request: pb::GetNotifierRequest,
) -> Result<pb::GetNotifierResponse, Status> {
    let (own, effective) = engine
        .get_notifier(&request.customer_code)
        .await
        .map_err(to_status)?;
    Ok(pb::GetNotifierResponse {
        own: own.as_ref().map(own_to_proto),
        effective: Some(effective_to_proto(&effective)),
    })
}

pub(super) async fn update(
    engine: &Engine,
    caller: &invoicer_kit::Caller,
    request: pb::UpdateNotifierRequest,
) -> Result<pb::UpdateNotifierResponse, Status> {
    // The default notifier is rejected before its fields are looked at.
    writable_notifier_code(&request.customer_code).map_err(to_status)?;
    let notifier = update_from_proto(request.notifier.unwrap_or_default())?;
    let update = NotifierUpdateRequest {
        customer_code: request.customer_code,
        notifier,
        actor: caller.actor(&request.actor),
        reason: request.reason,
    };
    let updated = engine.update_notifier(update).await.map_err(to_status)?;
    Ok(pb::UpdateNotifierResponse {
        own: Some(own_to_proto(&updated.own)),
        effective: Some(effective_to_proto(&updated.effective)),
        change: updated.change.as_ref().map(change_to_proto),
    })
}

pub(super) async fn list(engine: &Engine) -> Result<pb::ListNotifiersResponse, Status> {
    let notifiers = engine.list_notifiers().await.map_err(to_status)?;
    Ok(pb::ListNotifiersResponse {
        default_notifier: Some(effective_to_proto(&engine.default_notifier)),
        notifiers: notifiers.iter().map(own_to_proto).collect(),
    })
}

pub(super) async fn changes(
    engine: &Engine,
    request: pb::ListNotifierChangesRequest,
) -> Result<pb::ListNotifierChangesResponse, Status> {
    let page_size = match request.page_size {
        0 => DEFAULT_CHANGE_PAGE,
        n => n.min(MAX_CHANGE_PAGE),
    };
    let offset = parse_offset_token(&request.page_token)?;
    let mut changes = engine
        .notifier_changes(&request.customer_code, offset, u64::from(page_size) + 1)
        .await
        .map_err(to_status)?;
    let has_more = changes.len() > page_size as usize;
    changes.truncate(page_size as usize);
    let next_page_token = if has_more {
        (offset + u64::from(page_size)).to_string()
    } else {
        String::new()
    };
    Ok(pb::ListNotifierChangesResponse {
        changes: changes.iter().map(change_to_proto).collect(),
        next_page_token,
    })
}

fn kind_to_proto(kind: InvoiceKind) -> types::InvoiceKind {
    match kind {
        InvoiceKind::Invoice => types::InvoiceKind::Invoice,
        InvoiceKind::CreditNote => types::InvoiceKind::CreditNote,
    }
}

fn kind_from_proto(value: i32) -> Result<InvoiceKind, Status> {
    match types::InvoiceKind::try_from(value) {
        Ok(types::InvoiceKind::Invoice) => Ok(InvoiceKind::Invoice),
        Ok(types::InvoiceKind::CreditNote) => Ok(InvoiceKind::CreditNote),
        _ => Err(invalid_argument(
            "notifier.kinds",
            format!(
                "invalid invoice kind {value}; use INVOICE_KIND_INVOICE or INVOICE_KIND_CREDIT_NOTE"
            ),
        )),
    }
}

fn split_to_proto(split: Split) -> pb::Split {
    match split {
        Split::PerInvoice => pb::Split::PerInvoice,
        Split::PerToContact => pb::Split::PerToContact,
    }
}

fn split_from_proto(value: i32) -> Result<Option<Split>, Status> {
    match pb::Split::try_from(value) {
        Ok(pb::Split::Unspecified) => Ok(None),
        Ok(pb::Split::PerInvoice) => Ok(Some(Split::PerInvoice)),
        Ok(pb::Split::PerToContact) => Ok(Some(Split::PerToContact)),
        Err(_) => Err(invalid_argument(
            "notifier.split",
            format!("invalid split {value}; use SPLIT_PER_INVOICE or SPLIT_PER_TO_CONTACT"),
        )),
    }
}

fn kind_list(kinds: &[InvoiceKind]) -> pb::InvoiceKindList {
    pb::InvoiceKindList {
        kinds: kinds.iter().map(|k| kind_to_proto(*k).into()).collect(),
    }
}

fn address_list(list: &[Mailbox]) -> pb::AddressList {
    pb::AddressList {
        addresses: list.iter().map(Mailbox::to_string).collect(),
    }
}

fn templates_to_proto(
    templates: &Templates,
) -> std::collections::HashMap<String, pb::MessageTemplate> {
    templates
        .iter()
        .map(|(language, t)| {
            let template = pb::MessageTemplate {
                subject: t.subject.clone().unwrap_or_default(),
                text: t.text.clone().unwrap_or_default(),
                html: t.html.clone().unwrap_or_default(),
            };
            (language.clone(), template)
        })
        .collect()
}

fn own_to_proto(notifier: &Notifier) -> pb::Notifier {
    pb::Notifier {
        customer_code: notifier.customer_code.clone(),
        enabled: notifier.enabled,
        kinds: notifier.kinds.as_deref().map(kind_list),
        to: notifier.to.as_deref().map(address_list),
        cc: notifier.cc.as_deref().map(address_list),
        bcc: notifier.bcc.as_deref().map(address_list),
        split: notifier
            .split
            .map_or(pb::Split::Unspecified, split_to_proto)
            .into(),
        templates: templates_to_proto(&notifier.templates),
        updated_at: instant(notifier.updated_at),
        updated_by: notifier.updated_by.clone(),
    }
}

fn effective_to_proto(notifier: &EffectiveNotifier) -> pb::Notifier {
    pb::Notifier {
        customer_code: notifier.customer_code.clone(),
        enabled: Some(notifier.enabled),
        kinds: Some(kind_list(&notifier.kinds)),
        to: Some(address_list(&notifier.to)),
        cc: Some(address_list(&notifier.cc)),
        bcc: Some(address_list(&notifier.bcc)),
        split: split_to_proto(notifier.split).into(),
        templates: templates_to_proto(&notifier.templates),
        updated_at: String::new(),
        updated_by: String::new(),
    }
}

fn change_to_proto(change: &NotifierChange) -> pb::NotifierChange {
    pb::NotifierChange {
        id: change.id,
        customer_code: change.customer_code.clone(),
        actor: change.actor.clone(),
        at: instant(change.at),
        old: change.old.as_ref().map(own_to_proto),
        new: Some(own_to_proto(&change.new)),
        reason: change.reason.clone(),
    }
}

fn update_from_proto(notifier: pb::Notifier) -> Result<NotifierUpdate, Status> {
    let kinds = match notifier.kinds {
        Some(list) => Some(
            list.kinds
                .into_iter()
                .map(kind_from_proto)
                .collect::<Result<Vec<_>, _>>()?,
        ),
        None => None,
    };
    let templates = notifier
        .templates
        .into_iter()
        .map(|(language, t)| {
            let non_empty = |text: String| Some(text).filter(|t| !t.is_empty());
            let template = MessageTemplate {
                subject: non_empty(t.subject),
                text: non_empty(t.text),
                html: non_empty(t.html),
            };
            (language, template)
        })
        .collect();
    Ok(NotifierUpdate {
        enabled: notifier.enabled,
        kinds,
        to: notifier.to.map(|list| list.addresses),
        cc: notifier.cc.map(|list| list.addresses),
        bcc: notifier.bcc.map(|list| list.addresses),
        split: split_from_proto(notifier.split)?,
        templates,
    })
}
