//! `invoicer config check`: the settings each service stops on at start, found without
//! starting anything.

use anyhow::Result;

/// Runs `invoicer --config FILE config check` on `content` and returns the exit code and the
/// output.
async fn config_check(content: &str) -> Result<(std::process::ExitCode, String)> {
    config_check_with(content, &[]).await
}

/// Runs `config check` as `config_check` does, with the options `extra`.
async fn config_check_with(
    content: &str,
    extra: &[&str],
) -> Result<(std::process::ExitCode, String)> {
    let folder = tempfile::tempdir()?;
    let path = folder.path().join("invoicer.toml");
    let data_dir = folder.path().join("data");
    std::fs::write(
        &path,
        format!("data_dir = {:?}\n{content}", data_dir.display().to_string()),
    )?;
    let mut argv = [
        "invoicer",
        "--config",
        path.to_str().unwrap_or_default(),
        "config",
        "check",
    ]
    .map(str::to_owned)
    .to_vec();
    argv.extend(extra.iter().map(|option| (*option).to_owned()));
    let mut stdout = Vec::new();
    let code = invoicer::run(argv, &mut stdout).await?;
    // The check creates nothing: no data folder, no outbox, no database file.
    assert!(
        !data_dir.exists(),
        "config check created {}",
        data_dir.display()
    );
    Ok((code, String::from_utf8(stdout)?))
}

#[tokio::test]
async fn valid_config_passes_every_service() -> Result<()> {
    let content = "\
[company]
name = \"Seller GmbH\"
email = \"billing@seller.example\"

[mail]
from = \"Seller Billing <billing@seller.example>\"
";
    let (code, output) = config_check(content).await?;
    assert_eq!(code, std::process::ExitCode::SUCCESS, "{output}");
    assert!(!output.contains("note:"), "{output}");
    for service in [
        "invoice-query",
        "pdf-render",
        "mail-delivery",
        "audit-log",
        "orchestrator",
    ] {
        assert!(output.contains(&format!("{service}: ok")), "{output}");
    }
    Ok(())
}

/// Settings that TOML takes but the server or a service rejects at start: each is reported
/// with the check, the key and the value, and one run reports every check's problems: a bad
/// From address fails both services that read it.
#[tokio::test]
async fn service_settings_fail_the_check() -> Result<()> {
    let (code, output) = config_check("[mail]\nfrom = \"billing at company\"\n").await?;
    assert_eq!(code, std::process::ExitCode::from(1), "{output}");
    for expected in [
        "mail-delivery: invalid mail.from \"billing at company\"",
        "orchestrator: mail.from: invalid email address \"billing at company\"",
        "2 of 6 checks failed: `serve` would not start with this configuration",
        "pdf-render: ok",
    ] {
        assert!(output.contains(expected), "{expected:?} not in {output}");
    }

    for (content, expected) in [
        (
            "[mail]\nsmtp_url = \"smtp://127.0.0.1:2525?tls=startls\"\n",
            "mail-delivery: invalid smtp_url smtp://127.0.0.1:2525?tls=startls: invalid tls value \"startls\"",
        ),
        ("[server]\nlisten = \"0.0.0.0:50051\"\n", "server: "),
        (
            "[batch.schedule]\ncron = \"0 25 * * *\"\n",
            "orchestrator: invalid cron expression \"0 25 * * *\"",
        ),
        (
            "[notifier.templates.en]\nsubject = \"Invoice {{ numbr }}\"\n",
            "uses the unknown variable \"numbr\"",
        ),
    ] {
        let (code, output) = config_check(content).await?;
        assert_eq!(code, std::process::ExitCode::from(1), "{output}");
        assert!(output.contains(expected), "{expected:?} not in {output}");
    }

    // Two orchestrator problems in one file: both are named, each on its own line, and the
    // orchestrator counts as one failed check. An unknown timezone does not hide a bad cron
    // expression.
    for (content, expected) in [
        (
            "[batch]\nlease_duration = \"soon\"\n\n[batch.schedule]\ncron = \"0 25 * * *\"\n",
            [
                "batch.lease_duration",
                "invalid cron expression \"0 25 * * *\"",
            ],
        ),
        (
            "[batch.schedule]\ncron = \"0 25 * * *\"\ntimezone = \"Europe/Berlln\"\n",
            [
                "unknown timezone \"Europe/Berlln\"",
                "invalid cron expression \"0 25 * * *\"",
            ],
        ),
    ] {
        let (code, output) = config_check(content).await?;
        assert_eq!(code, std::process::ExitCode::from(1), "{output}");
        let orchestrator: Vec<&str> = output
            .lines()
            .filter(|line| line.starts_with("orchestrator: "))
            .collect();
        assert_eq!(orchestrator.len(), 2, "{output}");
        assert!(orchestrator[0].contains(expected[0]), "{output}");
        assert!(orchestrator[1].contains(expected[1]), "{output}");
        assert!(output.contains("1 of 6 checks failed"), "{output}");
    }
    Ok(())
}

/// A company template that does not compile is found by the check, which names the file.
#[tokio::test]
async fn broken_company_template_fails_the_check() -> Result<()> {
    let folder = tempfile::tempdir()?;
    let template = folder.path().join("invoice.typ");
    std::fs::write(&template, "#let x = (\n")?;
    let content = format!("[pdf]\ntemplate = {:?}\n", template.display().to_string());
    let (code, output) = config_check(&content).await?;
    assert_eq!(code, std::process::ExitCode::from(1), "{output}");
    assert!(output.contains("pdf-render: "), "{output}");
    assert!(output.contains("invoice.typ"), "{output}");
    Ok(())
}

/// A file without its own sender passes, with a note naming the settings that still carry the
/// demo company.
#[tokio::test]
async fn demo_sender_gets_a_note() -> Result<()> {
    let (code, output) = config_check("[company]\nname = \"Seller GmbH\"\n").await?;
    assert_eq!(code, std::process::ExitCode::SUCCESS, "{output}");
    assert!(
        output.contains(
            "note: company.email, mail.from still name the demo company; set them before \
             sending to customers"
        ),
        "{output}"
    );
    Ok(())
}

/// `--skip-server` leaves out the server's check, for a file whose tokens and certificates
/// exist only where it is deployed.
#[tokio::test]
async fn skip_server_leaves_out_access_settings() -> Result<()> {
    let content = "[server]\nlisten = \"0.0.0.0:50051\"\n";
    let (code, output) = config_check_with(content, &["--skip-server"]).await?;
    assert_eq!(code, std::process::ExitCode::SUCCESS, "{output}");
    assert!(!output.contains("server:"), "{output}");
    Ok(())
}
