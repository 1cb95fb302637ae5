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
    if as_json {
        let rejections: Vec<Value> = response
            .rejections
            .iter()
            .map(|r| json!({"key": r.key, "field": r.field, "message": r.message}))
            .collect();
        return json_line(
            out,
            &json!({"customers": counts(&response.customers), "invoices": counts(&response.invoices), "rejections": rejections}),
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
    for rejection in &response.rejections {
        writeln!(
            out,
            "rejected {} ({}): {}",
            rejection.key, rejection.field, rejection.message
        )?;
    }
    Ok(())
}

fn delivery_json(delivery: &pb::Delivery) -> Value {
    json!({
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
    })
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

pub(crate) fn batch(out: Out<'_>, batch: &pb::Batch, as_json: bool) -> io::Result<()> {
    if as_json {
        for delivery in &batch.deliveries {
            json_line(out, &delivery_json(delivery))?;
        }
        return json_line(out, &counts_json(batch));
    }
    for delivery in &batch.deliveries {
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
    }
    batch_summary(out, batch)
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
        "{} {} to {}",
        delivery.invoice_number,
        delivery_state(delivery.state),
        joined(&delivery.to)
    )?;
    if !delivery.cc.is_empty() {
        writeln!(out, "    cc  {}", joined(&delivery.cc))?;
    }
    writeln!(
        out,
        "    message-id {}  pdf sha256 {}",
        delivery.message_id, delivery.pdf_sha256
    )?;
    if !delivery.reason.is_empty() {
        writeln!(out, "    reason: {}", delivery.reason)?;
    }
    Ok(())
}

pub(crate) fn preview(
    out: Out<'_>,
    preview: &pb::PreviewInvoiceResponse,
    path: &Path,
) -> io::Result<()> {
    writeln!(
        out,
        "wrote {} ({} bytes, {} pages, sha256 {})",
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
        "{:<24}  {:<16}  {:<14}  {:<34}  {:<12}  trigger",
        "at", "invoice", "outcome", "to", "pdf sha256"
    )?;
    for entry in entries {
        let trigger = entry.trigger.clone().unwrap_or_default();
        let sha_prefix: String = entry.attachment_sha256.chars().take(12).collect();
        writeln!(
            out,
            "{:<24}  {:<16}  {:<14}  {:<34}  {:<12}  {}",
            entry.at,
            entry.invoice_number,
            outcome(entry.outcome),
            addresses(&entry.to).join(","),
            sha_prefix,
            trigger_text(&trigger)
        )?;
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
