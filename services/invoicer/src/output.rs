//! Everything the CLI prints: plain tables for people, and with `--json` one JSON object per
//! line for scripts.

use std::io::{self, Write};
use std::path::Path;

use invoicer_orchestrator::FireInstant;
use invoicer_proto::audit_log::v1 as audit;
use invoicer_proto::invoice_query::v1 as iq;
use invoicer_proto::orchestrator::v1 as pb;
use invoicer_proto::types::v1 as types;
use serde_json::{Value, json};

type Out<'a> = &'a mut (dyn Write + Send);

/// `DELIVERY_STATE_SENT` becomes `sent`.
fn enum_name(full: &str, prefix: &str) -> String {
    full.strip_prefix(prefix)
        .unwrap_or(full)
        .to_ascii_lowercase()
}

fn delivery_state(value: i32) -> String {
    pb::DeliveryState::try_from(value).map_or("unspecified".to_owned(), |s| {
        enum_name(s.as_str_name(), "DELIVERY_STATE_")
    })
}

fn batch_status(value: i32) -> String {
    pb::BatchStatus::try_from(value).map_or("unspecified".to_owned(), |s| {
        enum_name(s.as_str_name(), "BATCH_STATUS_")
    })
}

fn outcome(value: i32) -> String {
    types::DeliveryOutcome::try_from(value).map_or("unspecified".to_owned(), |s| {
        enum_name(s.as_str_name(), "DELIVERY_OUTCOME_")
    })
}

fn mailbox_text(mailbox: &types::Mailbox) -> String {
    if mailbox.name.is_empty() {
        mailbox.address.clone()
    } else {
        format!("{} <{}>", mailbox.name, mailbox.address)
    }
}

fn addresses(list: &[types::Mailbox]) -> Vec<String> {
    list.iter().map(|m| m.address.clone()).collect()
}

fn joined(list: &[types::Mailbox]) -> String {
    list.iter().map(mailbox_text).collect::<Vec<_>>().join(", ")
}

fn json_line(out: Out<'_>, value: &Value) -> io::Result<()> {
    writeln!(out, "{value}")
}

pub(crate) fn import_result(
    out: Out<'_>,
    response: &iq::UpsertInvoicesResponse,
    as_json: bool,
) -> io::Result<()> {
    let counts = |c: &Option<iq::ImportCounts>| {
        let c = (*c).unwrap_or_default();
        json!({"created": c.created, "updated": c.updated, "unchanged": c.unchanged, "rejected": c.rejected})
    };
    let problems = |list: &[iq::Rejection]| -> Vec<Value> {
        list.iter()
            .map(|r| json!({"key": r.key, "field": r.field, "message": r.message}))
            .collect()
    };
    if as_json {
        return json_line(
            out,
            &json!({
                "customers": counts(&response.customers),
                "invoices": counts(&response.invoices),
                "rejections": problems(&response.rejections),
                "warnings": problems(&response.warnings),
            }),
        );
    }
    for (label, c) in [
        ("customers", &response.customers),
        ("invoices", &response.invoices),
    ] {
        let c = (*c).unwrap_or_default();
        writeln!(
            out,
            "{label:<10} created {:>5}  updated {:>5}  unchanged {:>5}  rejected {:>5}",
            c.created, c.updated, c.unchanged, c.rejected
        )?;
    }
    let updated = response.invoices.unwrap_or_default().updated;
    if updated > 0 {
        writeln!(
            out,
            "{} changed: each becomes a new revision, which the next batch emails even where an \
             earlier revision went out, provided it is posted, inside the batch's lookback and \
             not skipped by its notifier",
            invoices(updated)
        )?;
    }
    for rejection in &response.rejections {
        writeln!(
            out,
            "rejected {} ({}): {}",
            rejection.key, rejection.field, rejection.message
        )?;
    }
    for warning in &response.warnings {
        writeln!(
            out,
            "warning {} ({}): {}",
            warning.key, warning.field, warning.message
        )?;
    }
    Ok(())
}

fn delivery_json(delivery: &pb::Delivery) -> Value {
    let mut value = json!({
        "invoice": delivery.invoice_number,
        "revision": delivery.invoice_revision,
        "outcome": delivery_state(delivery.state),
        "to": addresses(&delivery.to),
        "cc": addresses(&delivery.cc),
        "bcc": addresses(&delivery.bcc),
        "attachment": delivery.attachment_name,
        "subject": delivery.subject,
        "reason": delivery.reason,
        "delivery_id": delivery.id,
        "message_id": delivery.message_id,
    });
    if !delivery.next_attempt_at.is_empty() {
        value["next_attempt_at"] = json!(delivery.next_attempt_at);
    }
    value
}

fn counts_json(batch: &pb::Batch) -> Value {
    let c = batch.counts.unwrap_or_default();
    json!({
        "batch": batch.id,
        "business_date": batch.business_date,
        "status": batch_status(batch.status),
        "eligible": c.eligible,
        "planned": c.planned,
        "sent": c.sent,
        "skipped": c.skipped,
        "failed": c.failed,
        "deferred": c.deferred,
        "unknown": c.unknown,
    })
}

/// Prints the first lines of `batch run`: a note when the scheduled batch had run already.
/// The deliveries and the totals follow.
pub(crate) fn batch_run_start(
    out: Out<'_>,
    batch: &pb::Batch,
    replayed: bool,
    as_json: bool,
) -> io::Result<()> {
    if replayed && !as_json {
        writeln!(
            out,
            "the scheduled batch of {} ran already; nothing was sent now. As it ended:",
            batch.business_date
        )?;
    }
    Ok(())
}

/// Prints the totals of `batch run`, after its deliveries, which list the invoices that need
/// attention.
pub(crate) fn batch_run_end(
    out: Out<'_>,
    batch: &pb::Batch,
    replayed: bool,
    as_json: bool,
) -> io::Result<()> {
    if as_json {
        let mut counts = counts_json(batch);
        counts["replayed"] = json!(replayed);
        return json_line(out, &counts);
    }
    batch_summary(out, batch)?;
    let counts = batch.counts.unwrap_or_default();
    if batch.status != i32::from(pb::BatchStatus::Planned) && counts.sent > 0 {
        writeln!(
            out,
            "invoices sent without a remark are not listed; `invoicer batch status {}` lists them all",
            batch.id
        )?;
    }
    if replayed {
        // A resend may have sent a listed invoice since, and the hints would invite a second.
        return Ok(());
    }
    attention_hints(out, batch, &counts)
}

/// Prints what to do about the invoices that no retry will send, and what becomes of the
/// deferred ones.
fn attention_hints(out: Out<'_>, batch: &pb::Batch, counts: &pb::BatchCounts) -> io::Result<()> {
    // A dry run counts the deliveries that were deferred before it; it deferred none.
    if counts.deferred > 0 && batch.status != i32::from(pb::BatchStatus::Planned) {
        let (what, verb) = match counts.deferred {
            1 => ("1 invoice was".to_owned(), "is"),
            n => (format!("{n} invoices were"), "are"),
        };
        // The hint names the email log, not `batch status`, because a batch that found a
        // delivery deferred by an earlier batch keeps its item as it found it.
        writeln!(
            out,
            "{what} deferred after a temporary failure and {verb} tried again by the \
             orchestrator until sent or until `batch.retry_lifetime` since the first deferral \
             (or `batch.max_attempts`) runs out; `invoicer log --invoice NUMBER` shows each try"
        )?;
    }
    if counts.failed > 0 {
        writeln!(
            out,
            "{} failed and will not be tried again: remove the cause given above, \
             then send each with `invoicer resend NUMBER`",
            invoices(counts.failed)
        )?;
    }
    if counts.unknown > 0 {
        writeln!(
            out,
            "{} may have reached the mail server before the connection broke and will not be \
             sent again by itself: look for its Message-ID (`invoicer log --invoice NUMBER`) \
             in the mail server's log before `invoicer resend NUMBER`",
            invoices(counts.unknown)
        )?;
    }
    Ok(())
}

fn invoices(count: u32) -> String {
    if count == 1 {
        "1 invoice".to_owned()
    } else {
        format!("{count} invoices")
    }
}

/// Prints a whole batch: its deliveries, then its totals.
pub(crate) fn batch(out: Out<'_>, batch: &pb::Batch, as_json: bool) -> io::Result<()> {
    deliveries(out, &batch.deliveries, as_json)?;
    batch_totals(out, batch, as_json)
}

/// Prints the totals of a batch, after its deliveries.
pub(crate) fn batch_totals(out: Out<'_>, batch: &pb::Batch, as_json: bool) -> io::Result<()> {
    if as_json {
        return json_line(out, &counts_json(batch));
    }
    batch_summary(out, batch)
}

/// Prints deliveries of a batch: one JSON line each, or a few lines of text each.
pub(crate) fn deliveries(
    out: Out<'_>,
    deliveries: &[pb::Delivery],
    as_json: bool,
) -> io::Result<()> {
    for delivery in deliveries {
        if as_json {
            json_line(out, &delivery_json(delivery))?;
            continue;
        }
        writeln!(
            out,
            "{:<16} {:<9} {}",
            delivery.invoice_number,
            delivery_state(delivery.state),
            delivery.attachment_name
        )?;
        for (role, list) in [
            ("to", &delivery.to),
            ("cc", &delivery.cc),
            ("bcc", &delivery.bcc),
        ] {
            if !list.is_empty() {
                writeln!(out, "    {role:<4} {}", joined(list))?;
            }
        }
        if !delivery.reason.is_empty() {
            writeln!(out, "    reason: {}", delivery.reason)?;
        }
        if delivery.state == i32::from(pb::DeliveryState::Deferred)
            && !delivery.next_attempt_at.is_empty()
        {
            writeln!(out, "    next try: {}", delivery.next_attempt_at)?;
        }
    }
    Ok(())
}

fn batch_summary(out: Out<'_>, batch: &pb::Batch) -> io::Result<()> {
    let c = batch.counts.unwrap_or_default();
    let id = if batch.id.is_empty() {
        "(dry run)".to_owned()
    } else {
        batch.id.clone()
    };
    writeln!(
        out,
        "batch {id} for {} {}: window {} .. {}",
        batch.business_date,
        batch_status(batch.status),
        batch.window_start,
        batch.cutoff
    )?;
    if batch.status == i32::from(pb::BatchStatus::Planned) {
        writeln!(
            out,
            "eligible {}  planned {}  skipped {}  deferred {}",
            c.eligible, c.planned, c.skipped, c.deferred
        )?;
    } else {
        writeln!(
            out,
            "eligible {}  sent {}  skipped {}  failed {}  deferred {}  unknown {}",
            c.eligible, c.sent, c.skipped, c.failed, c.deferred, c.unknown
        )?;
    }
    if !batch.error.is_empty() {
        writeln!(out, "error: {}", batch.error)?;
    }
    Ok(())
}

pub(crate) fn batch_list(out: Out<'_>, batches: &[pb::Batch], as_json: bool) -> io::Result<()> {
    for batch in batches {
        if as_json {
            let mut value = counts_json(batch);
            value["started_at"] = json!(batch.started_at);
            value["finished_at"] = json!(batch.finished_at);
            json_line(out, &value)?;
        } else {
            let c = batch.counts.unwrap_or_default();
            writeln!(
                out,
                "{}  {}  {:<9}  started {}  eligible {} sent {} skipped {} failed {} deferred {} unknown {}",
                batch.id,
                batch.business_date,
                batch_status(batch.status),
                batch.started_at,
                c.eligible,
                c.sent,
                c.skipped,
                c.failed,
                c.deferred,
                c.unknown
            )?;
        }
    }
    Ok(())
}

pub(crate) fn resend(
    out: Out<'_>,
    delivery: &pb::Delivery,
    replayed: bool,
    as_json: bool,
) -> io::Result<()> {
    if as_json {
        let mut value = delivery_json(delivery);
        value["replayed"] = json!(replayed);
        value["request_id"] = json!(delivery.request_id);
        value["actor"] = json!(delivery.actor);
        value["resend_reason"] = json!(delivery.resend_reason);
        return json_line(out, &value);
    }
    if replayed {
        writeln!(
            out,
            "request id seen before; nothing was sent now. The first result:"
        )?;
    }
    writeln!(
        out,
        "{} revision {} {} to {}",
        delivery.invoice_number,
        delivery.invoice_revision,
        delivery_state(delivery.state),
        joined(&delivery.to)
    )?;
    if !delivery.cc.is_empty() {
        writeln!(out, "    cc  {}", joined(&delivery.cc))?;
    }
    if !delivery.bcc.is_empty() {
        writeln!(out, "    bcc {}", joined(&delivery.bcc))?;
    }
    writeln!(
        out,
        "    message-id {}  pdf sha256 {}",
        delivery.message_id, delivery.pdf_sha256
    )?;
    if !delivery.reason.is_empty() {
        writeln!(out, "    reason: {}", delivery.reason)?;
    }
    if !delivery.next_attempt_at.is_empty() {
        writeln!(
            out,
            "    the orchestrator tries again at {}; repeat this command with --request-id {} to see the result",
            delivery.next_attempt_at, delivery.request_id
        )?;
    }
    writeln!(
        out,
        "    requested by {} with request id {}: {}",
        delivery.actor, delivery.request_id, delivery.resend_reason
    )?;
    Ok(())
}

pub(crate) fn preview(
    out: Out<'_>,
    preview: &pb::PreviewInvoiceResponse,
    path: &Path,
) -> io::Result<()> {
    writeln!(
        out,
        "wrote {} ({} bytes, {} page(s), sha256 {})",
        path.display(),
        preview.pdf.len(),
        preview.page_count,
        preview.sha256
    )?;
    writeln!(out, "subject: {}", preview.subject)?;
    writeln!(out, "to: {}", joined(&preview.to))?;
    if !preview.cc.is_empty() {
        writeln!(out, "cc: {}", joined(&preview.cc))?;
    }
    if !preview.bcc.is_empty() {
        writeln!(out, "bcc: {}", joined(&preview.bcc))?;
    }
    Ok(())
}

fn trigger_text(trigger: &audit::Trigger) -> String {
    match audit::TriggerKind::try_from(trigger.kind) {
        Ok(audit::TriggerKind::Batch) => format!("batch:{}", trigger.batch_id),
        Ok(audit::TriggerKind::Resend) => {
            format!("resend by {}: {}", trigger.actor, trigger.reason)
        }
        _ => "unspecified".to_owned(),
    }
}

fn entry_json(entry: &audit::Entry) -> Value {
    let trigger = entry.trigger.clone().unwrap_or_default();
    let trigger_kind = audit::TriggerKind::try_from(trigger.kind)
        .map_or("unspecified".to_owned(), |k| {
            enum_name(k.as_str_name(), "TRIGGER_KIND_")
        });
    let recipients: Vec<Value> = entry
        .recipients
        .iter()
        .map(|r| json!({"address": r.address, "accepted": r.accepted, "reply_code": r.reply_code, "reply_text": r.reply_text}))
        .collect();
    json!({
        "sequence": entry.sequence,
        "id": entry.id,
        "invoice": entry.invoice_number,
        "revision": entry.invoice_revision,
        "customer": entry.customer_code,
        "trigger": trigger_kind,
        "batch_id": trigger.batch_id,
        "actor": trigger.actor,
        "reason": trigger.reason,
        "request_id": trigger.request_id,
        "outcome": outcome(entry.outcome),
        "at": entry.at,
        "from": entry.from.as_ref().map(|m| m.address.clone()).unwrap_or_default(),
        "to": addresses(&entry.to),
        "cc": addresses(&entry.cc),
        "bcc": addresses(&entry.bcc),
        "subject": entry.subject,
        "message_id": entry.message_id,
        "attachment": entry.attachment_name,
        "pdf_size": entry.attachment_size,
        "pdf_sha256": entry.attachment_sha256,
        "server_reply": entry.server_reply,
        "recipients": recipients,
        "destination": entry.destination,
        "detail": entry.detail,
        "trace_id": entry.trace_id,
    })
}

pub(crate) fn log_entries(out: Out<'_>, entries: &[audit::Entry], as_json: bool) -> io::Result<()> {
    if as_json {
        for entry in entries {
            json_line(out, &entry_json(entry))?;
        }
        return Ok(());
    }
    if entries.is_empty() {
        return writeln!(out, "no log entries match");
    }
    writeln!(
        out,
        "{:<24}  {:<16}  {:>3}  {:<14}  {:<34}  {:<12}  {:<32}  trigger",
        "at", "invoice", "rev", "outcome", "to", "pdf sha256", "trace id"
    )?;
    for entry in entries {
        let trigger = entry.trigger.clone().unwrap_or_default();
        let sha_prefix: String = entry.attachment_sha256.chars().take(12).collect();
        let trace_id = if entry.trace_id.is_empty() {
            "-"
        } else {
            entry.trace_id.as_str()
        };
        writeln!(
            out,
            "{:<24}  {:<16}  {:>3}  {:<14}  {:<34}  {:<12}  {:<32}  {}",
            entry.at,
            entry.invoice_number,
            entry.invoice_revision,
            outcome(entry.outcome),
            addresses(&entry.to).join(","),
            sha_prefix,
            trace_id,
            trigger_text(&trigger)
        )?;
        entry_details(out, entry)?;
    }
    Ok(())
}

/// Writes the lines under an entry's row: the Cc and Bcc addresses, each recipient the server
/// did not accept with its reply, the server's reply and why the attempt did not succeed.
fn entry_details(out: Out<'_>, entry: &audit::Entry) -> io::Result<()> {
    for (label, list) in [("cc", &entry.cc), ("bcc", &entry.bcc)] {
        if !list.is_empty() {
            writeln!(out, "    {label}: {}", addresses(list).join(", "))?;
        }
    }
    let not_accepted: Vec<String> = entry
        .recipients
        .iter()
        .filter(|r| !r.accepted)
        .map(|r| match (r.reply_code, r.reply_text.is_empty()) {
            (0, true) => r.address.clone(),
            (0, false) => format!("{} ({})", r.address, r.reply_text),
            (code, _) => format!("{} ({code} {})", r.address, r.reply_text),
        })
        .collect();
    if !not_accepted.is_empty() {
        writeln!(out, "    not accepted: {}", not_accepted.join(", "))?;
    }
    if !entry.server_reply.is_empty() {
        writeln!(out, "    server reply: {}", entry.server_reply)?;
    }
    if !entry.detail.is_empty() {
        writeln!(out, "    detail: {}", entry.detail)?;
    }
    Ok(())
}

pub(crate) fn verify(out: Out<'_>, result: &audit::VerifyLogResponse) -> io::Result<()> {
    if result.ok {
        writeln!(
            out,
            "email log intact: {} entries checked",
            result.entries_checked
        )
    } else {
        writeln!(
            out,
            "email log broken at sequence {}: {}",
            result.first_bad_sequence, result.message
        )
    }
}

pub(crate) fn schedule(
    out: Out<'_>,
    cron: &str,
    timezone: &str,
    instants: &[FireInstant],
    as_json: bool,
) -> io::Result<()> {
    if !as_json {
        writeln!(out, "schedule {cron:?} in {timezone}")?;
    }
    for instant in instants {
        if as_json {
            json_line(
                out,
                &json!({
                    "at": instant.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "local": instant.local.to_rfc3339(),
                    "business_date": instant.business_date.to_string(),
                }),
            )?;
        } else {
            writeln!(
                out,
                "{}  local {}  business date {}",
                instant
                    .at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                instant.local.format("%Y-%m-%d %H:%M %Z"),
                instant.business_date
            )?;
        }
    }
    Ok(())
}

fn split_name(value: i32) -> Option<String> {
    match pb::Split::try_from(value) {
        Ok(pb::Split::Unspecified) => None,
        Ok(split) => Some(enum_name(split.as_str_name(), "SPLIT_")),
        Err(_) => Some("unspecified".to_owned()),
    }
}

fn kind_names(list: &pb::InvoiceKindList) -> Vec<String> {
    list.kinds
        .iter()
        .map(|kind| {
            types::InvoiceKind::try_from(*kind).map_or("unspecified".to_owned(), |k| {
                enum_name(k.as_str_name(), "INVOICE_KIND_")
            })
        })
        .collect()
}

/// Lists the set templates as (`language.field`, source), by language.
fn notifier_templates(notifier: &pb::Notifier) -> Vec<(String, &str)> {
    let mut languages: Vec<&String> = notifier.templates.keys().collect();
    languages.sort();
    let mut templates = Vec::new();
    for language in languages {
        let template = &notifier.templates[language];
        for (field, source) in [
            ("subject", &template.subject),
            ("text", &template.text),
            ("html", &template.html),
        ] {
            if !source.is_empty() {
                templates.push((format!("{language}.{field}"), source.as_str()));
            }
        }
    }
    templates
}

fn notifier_json(notifier: &pb::Notifier) -> Value {
    let addresses = |list: &Option<pb::AddressList>| list.as_ref().map(|l| l.addresses.clone());
    let templates: serde_json::Map<String, Value> = notifier_templates(notifier)
        .into_iter()
        .map(|(name, source)| (name, json!(source)))
        .collect();
    json!({
        "customer": notifier.customer_code,
        "enabled": notifier.enabled,
        "kinds": notifier.kinds.as_ref().map(kind_names),
        "to": addresses(&notifier.to),
        "cc": addresses(&notifier.cc),
        "bcc": addresses(&notifier.bcc),
        "split": split_name(notifier.split),
        "templates": templates,
        "updated_at": notifier.updated_at,
        "updated_by": notifier.updated_by,
    })
}

/// Formats each field as text, with `inherit` for a field the notifier leaves unset.
fn notifier_fields(notifier: &pb::Notifier) -> Vec<(&'static str, String)> {
    let inherit = || "inherit".to_owned();
    let addresses = |list: &Option<pb::AddressList>| match list {
        None => inherit(),
        Some(list) if list.addresses.is_empty() => "none".to_owned(),
        Some(list) => list.addresses.join(", "),
    };
    let kinds = match &notifier.kinds {
        None => inherit(),
        Some(list) if list.kinds.is_empty() => "all".to_owned(),
        Some(list) => kind_names(list).join(", "),
    };
    vec![
        (
            "enabled",
            notifier.enabled.map_or_else(inherit, |e| e.to_string()),
        ),
        ("kinds", kinds),
        ("to", addresses(&notifier.to)),
        ("cc", addresses(&notifier.cc)),
        ("bcc", addresses(&notifier.bcc)),
        ("split", split_name(notifier.split).unwrap_or_else(inherit)),
    ]
}

/// Formats a notifier on one line: `enabled=false kinds=inherit ... templates=en.subject`.
fn notifier_summary(notifier: &pb::Notifier) -> String {
    let mut parts: Vec<String> = notifier_fields(notifier)
        .into_iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    let templates: Vec<String> = notifier_templates(notifier)
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let templates = if templates.is_empty() {
        "none".to_owned()
    } else {
        templates.join(",")
    };
    parts.push(format!("templates={templates}"));
    parts.join(" ")
}

fn notifier_block(out: Out<'_>, notifier: &pb::Notifier) -> io::Result<()> {
    for (name, value) in notifier_fields(notifier) {
        writeln!(out, "    {name:<9} {value}")?;
    }
    for (name, source) in notifier_templates(notifier) {
        writeln!(out, "    template  {name} {source:?}")?;
    }
    Ok(())
}

pub(crate) fn notifier_show(
    out: Out<'_>,
    response: &pb::GetNotifierResponse,
    as_json: bool,
) -> io::Result<()> {
    let effective = response.effective.clone().unwrap_or_default();
    if as_json {
        return json_line(
            out,
            &json!({
                "customer": effective.customer_code,
                "own": response.own.as_ref().map(notifier_json),
                "effective": notifier_json(&effective),
            }),
        );
    }
    let code = &effective.customer_code;
    if code.is_empty() {
        writeln!(out, "default notifier (from the config file)")?;
        return notifier_block(out, &effective);
    }
    match &response.own {
        Some(own) => {
            writeln!(
                out,
                "customer {code}: own notifier, changed {} by {}",
                own.updated_at, own.updated_by
            )?;
            notifier_block(out, own)?;
        }
        None => writeln!(
            out,
            "customer {code}: no notifier of its own; the default applies"
        )?,
    }
    writeln!(out, "effective notifier of customer {code}")?;
    notifier_block(out, &effective)
}

pub(crate) fn notifier_updated(
    out: Out<'_>,
    response: &pb::UpdateNotifierResponse,
    as_json: bool,
) -> io::Result<()> {
    let own = response.own.clone().unwrap_or_default();
    let effective = response.effective.clone().unwrap_or_default();
    if as_json {
        return json_line(
            out,
            &json!({
                "customer": own.customer_code,
                "change_id": response.change.as_ref().map(|c| c.id),
                "unchanged": response.change.is_none(),
                "own": notifier_json(&own),
                "effective": notifier_json(&effective),
            }),
        );
    }
    if response.change.is_some() {
        writeln!(
            out,
            "notifier of customer {} changed by {}",
            own.customer_code, own.updated_by
        )?;
    } else {
        writeln!(
            out,
            "notifier of customer {} has these settings already; no change was recorded",
            own.customer_code
        )?;
    }
    notifier_block(out, &own)?;
    writeln!(out, "effective notifier of customer {}", own.customer_code)?;
    notifier_block(out, &effective)
}

pub(crate) fn notifier_history(
    out: Out<'_>,
    customer: Option<&str>,
    changes: &[pb::NotifierChange],
    as_json: bool,
) -> io::Result<()> {
    if as_json {
        for change in changes {
            json_line(
                out,
                &json!({
                    "id": change.id,
                    "customer": change.customer_code,
                    "actor": change.actor,
                    "at": change.at,
                    "reason": change.reason,
                    "old": change.old.as_ref().map(notifier_json),
                    "new": change.new.as_ref().map(notifier_json),
                }),
            )?;
        }
        return Ok(());
    }
    if changes.is_empty() {
        return match customer {
            Some(code) => writeln!(out, "no notifier changes recorded for customer {code}"),
            None => writeln!(out, "no notifier changes recorded"),
        };
    }
    for change in changes {
        writeln!(
            out,
            "{}  {}  by {}: {}",
            change.at, change.customer_code, change.actor, change.reason
        )?;
        let old = change
            .old
            .as_ref()
            .map_or_else(|| "no notifier of its own".to_owned(), notifier_summary);
        writeln!(out, "    old: {old}")?;
        let new = change.new.clone().unwrap_or_default();
        writeln!(out, "    new: {}", notifier_summary(&new))?;
        template_changes(out, change.old.as_ref(), &new)?;
    }
    Ok(())
}

/// Returns a template's text quoted, or its first 100 characters and its length when it is
/// longer, so that an HTML body stays on one readable line. `--json` has the whole text.
fn template_excerpt(source: &str) -> String {
    const SHOWN: usize = 100;
    let length = source.chars().count();
    if length <= SHOWN {
        return format!("{source:?}");
    }
    let start: String = source.chars().take(SHOWN).collect();
    format!("{start:?}... ({length} characters)")
}

/// Writes a line for each template that a change added, rewrote or removed, because the
/// summaries name the templates but not their text.
fn template_changes(
    out: Out<'_>,
    old: Option<&pb::Notifier>,
    new: &pb::Notifier,
) -> io::Result<()> {
    let old = old.map(notifier_templates).unwrap_or_default();
    let new = notifier_templates(new);
    for (name, source) in &new {
        let before = old.iter().find(|(old_name, _)| old_name == name);
        if before.is_none_or(|(_, old_source)| old_source != source) {
            writeln!(out, "    template {name}: {}", template_excerpt(source))?;
        }
    }
    for (name, _) in &old {
        if !new.iter().any(|(new_name, _)| new_name == name) {
            writeln!(out, "    template {name}: removed")?;
        }
    }
    Ok(())
}

pub(crate) fn notifier_list(
    out: Out<'_>,
    response: &pb::ListNotifiersResponse,
    as_json: bool,
) -> io::Result<()> {
    let default = response.default_notifier.clone().unwrap_or_default();
    if as_json {
        json_line(out, &notifier_json(&default))?;
        for notifier in &response.notifiers {
            json_line(out, &notifier_json(notifier))?;
        }
        return Ok(());
    }
    writeln!(out, "{:<16} {}", "(default)", notifier_summary(&default))?;
    for notifier in &response.notifiers {
        writeln!(
            out,
            "{:<16} {}  (changed {} by {})",
            notifier.customer_code,
            notifier_summary(notifier),
            notifier.updated_at,
            notifier.updated_by
        )?;
    }
    Ok(())
}

/// Prints a new token on one line and its `ROLE:SHA256_HEX` entry on the next.
pub(crate) fn new_token(
    out: Out<'_>,
    token: &str,
    role: invoicer_kit::Role,
    sha256: &str,
) -> io::Result<()> {
    writeln!(out, "{token}")?;
    writeln!(out, "{role}:{sha256}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox(address: &str) -> types::Mailbox {
        types::Mailbox {
            address: address.to_owned(),
            ..types::Mailbox::default()
        }
    }

    fn recipient(address: &str, accepted: bool, code: u32, text: &str) -> types::RecipientResult {
        types::RecipientResult {
            address: address.to_owned(),
            accepted,
            reply_code: code,
            reply_text: text.to_owned(),
            ..types::RecipientResult::default()
        }
    }

    fn printed(entries: &[audit::Entry]) -> String {
        let mut out = Vec::new();
        log_entries(&mut out, entries, false).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// A partly delivered attempt names who did not get it and what the server replied, under the
    /// row that shows only the To addresses.
    #[test]
    fn log_entry_lists_recipients_not_accepted_and_replies() {
        let entry = audit::Entry {
            at: "2026-12-06T11:08:51.000Z".to_owned(),
            invoice_number: "INV-1".to_owned(),
            outcome: types::DeliveryOutcome::PartiallySent.into(),
            to: vec![mailbox("lee@buyer.example")],
            cc: vec![mailbox("kim@buyer.example")],
            recipients: vec![
                recipient("lee@buyer.example", true, 250, "OK"),
                recipient("kim@buyer.example", false, 451, "4.2.0 mailbox busy"),
            ],
            server_reply: "250 2.0.0 queued as Q1".to_owned(),
            detail: "gave up after 5 attempts in 2m".to_owned(),
            ..audit::Entry::default()
        };
        let text = printed(&[entry]);
        let lines: Vec<&str> = text.lines().skip(2).collect();
        assert_eq!(
            lines,
            [
                "    cc: kim@buyer.example",
                "    not accepted: kim@buyer.example (451 4.2.0 mailbox busy)",
                "    server reply: 250 2.0.0 queued as Q1",
                "    detail: gave up after 5 attempts in 2m",
            ],
            "{text}"
        );
        assert!(
            text.lines().nth(1).unwrap().contains("partially_sent"),
            "{text}"
        );
    }

    fn subject_only(subject: &str) -> pb::Notifier {
        let template = pb::MessageTemplate {
            subject: subject.to_owned(),
            ..pb::MessageTemplate::default()
        };
        pb::Notifier {
            templates: [("en".to_owned(), template)].into(),
            ..pb::Notifier::default()
        }
    }

    /// A change of a template's text alone shows the new text, since both summaries read
    /// `templates=en.subject`, and a removed template is named.
    #[test]
    fn history_shows_changed_template_text() {
        let change = pb::NotifierChange {
            customer_code: "C-1".to_owned(),
            old: Some(subject_only("Invoice {{ number }}")),
            new: Some(subject_only("Invoice {{ number }} (new text)")),
            ..pb::NotifierChange::default()
        };
        let removed = pb::NotifierChange {
            customer_code: "C-1".to_owned(),
            old: Some(subject_only("Invoice {{ number }}")),
            new: Some(pb::Notifier::default()),
            ..pb::NotifierChange::default()
        };
        let mut out = Vec::new();
        notifier_history(&mut out, Some("C-1"), &[change, removed], false).unwrap();
        let text = String::from_utf8(out).unwrap();
        let templates: Vec<&str> = text
            .lines()
            .filter(|line| line.starts_with("    template "))
            .collect();
        assert_eq!(
            templates,
            [
                "    template en.subject: \"Invoice {{ number }} (new text)\"",
                "    template en.subject: removed",
            ],
            "{text}"
        );
    }

    #[test]
    fn long_template_text_is_shortened() {
        let html = format!("<p>{}</p>", "x".repeat(200));
        let excerpt = template_excerpt(&html);
        assert_eq!(
            excerpt,
            format!("\"<p>{}\"... (207 characters)", "x".repeat(97))
        );
    }

    /// A sent entry without Cc, Bcc or refusals keeps to its row, which names the revision, and
    /// the server's reply.
    #[test]
    fn sent_log_entry_adds_only_the_reply() {
        let entry = audit::Entry {
            invoice_number: "INV-2".to_owned(),
            invoice_revision: 2,
            outcome: types::DeliveryOutcome::Sent.into(),
            to: vec![mailbox("lee@buyer.example")],
            recipients: vec![recipient("lee@buyer.example", true, 250, "OK")],
            server_reply: "250 2.0.0 queued as Q2".to_owned(),
            ..audit::Entry::default()
        };
        let text = printed(&[entry]);
        assert_eq!(text.lines().count(), 3, "{text}");
        let row: Vec<&str> = text.lines().nth(1).unwrap().split_whitespace().collect();
        assert_eq!(row[..3], ["INV-2", "2", "sent"], "{text}");
        assert!(
            text.ends_with("    server reply: 250 2.0.0 queued as Q2\n"),
            "{text}"
        );
    }

    #[test]
    fn resend_lists_every_recipient_role() {
        let delivery = pb::Delivery {
            invoice_number: "INV-1".to_owned(),
            invoice_revision: 1,
            state: pb::DeliveryState::Sent.into(),
            to: vec![mailbox("ap@customer.example")],
            cc: vec![mailbox("boss@customer.example")],
            bcc: vec![mailbox("audit@seller.example")],
            request_id: "ticket-1".to_owned(),
            actor: "jane".to_owned(),
            resend_reason: "copy".to_owned(),
            ..pb::Delivery::default()
        };
        let mut out = Vec::new();
        resend(&mut out, &delivery, false, false).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("INV-1 revision 1 sent to ap@customer.example\n"),
            "{text}"
        );
        assert!(text.contains("    cc  boss@customer.example\n"), "{text}");
        assert!(text.contains("    bcc audit@seller.example\n"), "{text}");
        assert!(
            text.contains("    requested by jane with request id ticket-1: copy\n"),
            "{text}"
        );
    }
}
