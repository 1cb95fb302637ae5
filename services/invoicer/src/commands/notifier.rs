//! `invoicer notifier show|set|history|list`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};
use invoicer_kit::Config;
use invoicer_proto::orchestrator::v1 as pb;
use invoicer_proto::types::v1 as types;

use crate::cli::{
    InheritArg, KindArg, NotifierCommand, NotifierHistoryArgs, NotifierListArgs, NotifierSetArgs,
    NotifierShowArgs, SplitArg,
};
use crate::client::{Clients, describe};
use crate::output;

const CHANGES_PAGE_SIZE: u32 = 100;

pub(crate) async fn run(
    config: &Config,
    endpoint: &str,
    command: NotifierCommand,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let clients = Clients::new(config, endpoint)?;
    match command {
        NotifierCommand::Show(args) => show(clients, args, out).await,
        NotifierCommand::Set(args) => set(clients, *args, out).await,
        NotifierCommand::History(args) => history(clients, args, out).await,
        NotifierCommand::List(args) => list(clients, args, out).await,
    }
}

async fn show(
    mut clients: Clients,
    args: NotifierShowArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let request = pb::GetNotifierRequest {
        customer_code: args.customer.unwrap_or_default(),
    };
    let response = clients
        .orchestrator
        .get_notifier(request)
        .await
        .map_err(|s| describe(&clients.endpoint, s))?
        .into_inner();
    output::notifier_show(out, &response, args.json)?;
    Ok(ExitCode::SUCCESS)
}

/// Reads the customer's own notifier, applies the flags to it and stores the result.
async fn set(
    mut clients: Clients,
    args: NotifierSetArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    if !sets_anything(&args) {
        bail!(
            "nothing to change for customer {}: give a setting such as `--enabled false` or `--cc ADDR` (`invoicer notifier set --help` lists them)",
            args.customer
        );
    }
    let current = clients
        .orchestrator
        .get_notifier(pb::GetNotifierRequest {
            customer_code: args.customer.clone(),
        })
        .await
        .map_err(|s| describe(&clients.endpoint, s))?
        .into_inner();
    let notifier = apply_flags(current.own.unwrap_or_default(), &args)?;
    let actor = super::actor(args.actor.clone());
    let request = pb::UpdateNotifierRequest {
        customer_code: args.customer.clone(),
        notifier: Some(notifier),
        actor,
        reason: args.reason.clone(),
    };
    let response = clients
        .orchestrator
        .update_notifier(request)
        .await
        .map_err(|s| describe(&clients.endpoint, s))?
        .into_inner();
    output::notifier_updated(out, &response, args.json)?;
    Ok(ExitCode::SUCCESS)
}

fn apply_flags(mut notifier: pb::Notifier, args: &NotifierSetArgs) -> anyhow::Result<pb::Notifier> {
    for field in &args.inherit {
        check_not_also_set(*field, args)?;
        match field {
            InheritArg::Enabled => notifier.enabled = None,
            InheritArg::Kinds => notifier.kinds = None,
            InheritArg::To => notifier.to = None,
            InheritArg::Cc => notifier.cc = None,
            InheritArg::Bcc => notifier.bcc = None,
            InheritArg::Split => notifier.split = pb::Split::Unspecified.into(),
            InheritArg::Templates => notifier.templates.clear(),
        }
    }
    if let Some(enabled) = args.enabled {
        notifier.enabled = Some(enabled);
    }
    if let Some(kinds) = &args.kinds {
        notifier.kinds = Some(kind_list(kinds));
    }
    for (list, values) in [
        (&mut notifier.to, &args.to),
        (&mut notifier.cc, &args.cc),
        (&mut notifier.bcc, &args.bcc),
    ] {
        if !values.is_empty() {
            let addresses = values.iter().filter(|v| !v.trim().is_empty()).cloned();
            *list = Some(pb::AddressList {
                addresses: addresses.collect(),
            });
        }
    }
    if let Some(split) = args.split {
        notifier.split = match split {
            SplitArg::PerInvoice => pb::Split::PerInvoice,
            SplitArg::PerToContact => pb::Split::PerToContact,
        }
        .into();
    }
    apply_templates(&mut notifier, args)?;
    Ok(notifier)
}

/// Returns whether the command line sets anything.
fn sets_anything(args: &NotifierSetArgs) -> bool {
    args.enabled.is_some()
        || args.kinds.is_some()
        || !args.to.is_empty()
        || !args.cc.is_empty()
        || !args.bcc.is_empty()
        || args.split.is_some()
        || !args.subject_template.is_empty()
        || !args.text_template.is_empty()
        || !args.html_template.is_empty()
        || !args.inherit.is_empty()
}

/// `--inherit FIELD` together with a flag that sets FIELD is a contradiction.
fn check_not_also_set(field: InheritArg, args: &NotifierSetArgs) -> anyhow::Result<()> {
    let (name, set) = match field {
        InheritArg::Enabled => ("enabled", args.enabled.is_some()),
        InheritArg::Kinds => ("kinds", args.kinds.is_some()),
        InheritArg::To => ("to", !args.to.is_empty()),
        InheritArg::Cc => ("cc", !args.cc.is_empty()),
        InheritArg::Bcc => ("bcc", !args.bcc.is_empty()),
        InheritArg::Split => ("split", args.split.is_some()),
        InheritArg::Templates => (
            "templates",
            !(args.subject_template.is_empty()
                && args.text_template.is_empty()
                && args.html_template.is_empty()),
        ),
    };
    if set {
        bail!("--inherit {name} contradicts the flag that sets {name}; pass one of them");
    }
    Ok(())
}

fn kind_list(kinds: &[KindArg]) -> pb::InvoiceKindList {
    if kinds.contains(&KindArg::All) {
        return pb::InvoiceKindList { kinds: Vec::new() };
    }
    let kinds = kinds
        .iter()
        .map(|kind| match kind {
            KindArg::CreditNote => types::InvoiceKind::CreditNote,
            KindArg::Invoice | KindArg::All => types::InvoiceKind::Invoice,
        })
        .map(i32::from)
        .collect();
    pb::InvoiceKindList { kinds }
}

fn apply_templates(notifier: &mut pb::Notifier, args: &NotifierSetArgs) -> anyhow::Result<()> {
    for spec in &args.subject_template {
        let (language, text) = split_spec("--subject-template", spec)?;
        template_entry(notifier, &language).subject = text.to_owned();
    }
    for spec in &args.text_template {
        let (language, path) = split_spec("--text-template", spec)?;
        template_entry(notifier, &language).text = read_template(path)?;
    }
    for spec in &args.html_template {
        let (language, path) = split_spec("--html-template", spec)?;
        template_entry(notifier, &language).html = read_template(path)?;
    }
    Ok(())
}

fn template_entry<'a>(
    notifier: &'a mut pb::Notifier,
    language: &str,
) -> &'a mut pb::MessageTemplate {
    notifier.templates.entry(language.to_owned()).or_default()
}

/// Splits `LANG=VALUE`; the language is lowercased, as the orchestrator keys templates.
fn split_spec<'a>(flag: &str, spec: &'a str) -> anyhow::Result<(String, &'a str)> {
    let Some((language, value)) = spec.split_once('=') else {
        bail!("{flag} {spec:?} has no `=`; write it as LANG=VALUE, such as en=...");
    };
    if language.trim().is_empty() {
        bail!("{flag} {spec:?} names no language; write it as LANG=VALUE, such as en=...");
    }
    Ok((language.trim().to_ascii_lowercase(), value))
}

fn read_template(path: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read template file {path}"))
}

async fn history(
    mut clients: Clients,
    args: NotifierHistoryArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let mut request = pb::ListNotifierChangesRequest {
        customer_code: args.customer.clone().unwrap_or_default(),
        page_size: CHANGES_PAGE_SIZE,
        page_token: String::new(),
    };
    let mut changes = Vec::new();
    loop {
        let page = clients
            .orchestrator
            .list_notifier_changes(request.clone())
            .await
            .map_err(|s| describe(&clients.endpoint, s))?
            .into_inner();
        changes.extend(page.changes);
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
    }
    let customer = args
        .customer
        .as_deref()
        .filter(|code| !code.trim().is_empty());
    output::notifier_history(out, customer, &changes, args.json)?;
    Ok(ExitCode::SUCCESS)
}

async fn list(
    mut clients: Clients,
    args: NotifierListArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let response = clients
        .orchestrator
        .list_notifiers(pb::ListNotifiersRequest {})
        .await
        .map_err(|s| describe(&clients.endpoint, s))?
        .into_inner();
    output::notifier_list(out, &response, args.json)?;
    Ok(ExitCode::SUCCESS)
}
