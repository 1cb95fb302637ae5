//! `invoicer schedule next`: fire instants an operator can check before configuring them.

use anyhow::Result;

async fn schedule_next(args: &[&str]) -> Result<Vec<serde_json::Value>> {
    let mut argv = vec![
        "invoicer".to_owned(),
        "schedule".to_owned(),
        "next".to_owned(),
        "--json".to_owned(),
    ];
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    let mut stdout = Vec::new();
    invoicer::run(argv, &mut stdout).await?;
    String::from_utf8(stdout)?
        .lines()
        .map(|line| Ok(serde_json::from_str(line)?))
        .collect()
}

#[tokio::test]
async fn schedule_next_berlin_spring_gap() -> Result<()> {
    let args = [
        "--cron",
        "30 2 * * *",
        "--timezone",
        "Europe/Berlin",
        "--after",
        "2025-03-29T12:00:00Z",
        "--count",
        "2",
    ];
    let instants = schedule_next(&args).await?;
    assert_eq!(instants.len(), 2);
    assert_eq!(instants[0]["at"], "2025-03-30T01:00:00Z");
    assert_eq!(instants[0]["local"], "2025-03-30T03:00:00+02:00");
    assert_eq!(instants[0]["business_date"], "2025-03-30");
    assert_eq!(instants[1]["at"], "2025-03-31T00:30:00Z");
    Ok(())
}

#[tokio::test]
async fn schedule_next_berlin_fall_back_once() -> Result<()> {
    let args = [
        "--cron",
        "30 2 * * *",
        "--timezone",
        "Europe/Berlin",
        "--after",
        "2025-10-25T12:00:00Z",
        "--count",
        "2",
    ];
    let instants = schedule_next(&args).await?;
    assert_eq!(instants[0]["at"], "2025-10-26T00:30:00Z");
    assert_eq!(instants[1]["at"], "2025-10-27T01:30:00Z");
    Ok(())
}

#[tokio::test]
async fn schedule_next_rejects_unknown_timezone() -> Result<()> {
    let error = schedule_next(&["--timezone", "Mars/Olympus"])
        .await
        .unwrap_err();
    assert!(error.to_string().contains("Mars/Olympus"), "{error}");

    // A bad expression beside it is named too, not only after the timezone is fixed.
    let error = schedule_next(&["--timezone", "Mars/Olympus", "--cron", "0 25 * * *"])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("unknown timezone \"Mars/Olympus\""),
        "{error}"
    );
    assert!(
        error.contains("invalid cron expression \"0 25 * * *\""),
        "{error}"
    );
    Ok(())
}

/// `--count 0` would print nothing, as if the schedule never fired; clap rejects it with the
/// usage error's exit code.
#[tokio::test]
async fn schedule_next_rejects_count_zero() -> Result<()> {
    for count in ["0", "1001"] {
        let argv = ["invoicer", "schedule", "next", "--count", count]
            .map(str::to_owned)
            .to_vec();
        let mut stdout = Vec::new();
        let code = invoicer::run(argv, &mut stdout).await?;
        assert_eq!(code, std::process::ExitCode::from(2), "--count {count}");
        assert!(stdout.is_empty());
    }
    Ok(())
}

#[tokio::test]
async fn schedule_next_rejects_six_fields() -> Result<()> {
    let error = schedule_next(&["--cron", "0 2 * * * *", "--timezone", "UTC"])
        .await
        .unwrap_err();
    assert!(error.to_string().contains("Use five fields"), "{error}");
    Ok(())
}
