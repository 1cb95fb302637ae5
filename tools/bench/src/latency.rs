//! Per-delivery latency percentiles, read from the orchestrator's
//! `invoicer_delivery_duration_seconds` histogram on its Prometheus endpoint.

use std::net::SocketAddr;

use anyhow::{Context, ensure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HISTOGRAM: &str = "invoicer_delivery_duration_seconds_bucket";

/// Fetches `/metrics` from `address`.
pub(crate) async fn scrape(address: SocketAddr) -> anyhow::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .with_context(|| format!("cannot connect to the metrics endpoint {address}"))?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("metrics response has no end of head")?;
    ensure!(
        head.starts_with("HTTP/1.1 200"),
        "metrics request failed: {head}"
    );
    Ok(body.to_owned())
}

/// Cumulative buckets `(upper bound, count)` of the sent deliveries, in bound order.
pub(crate) fn sent_buckets(metrics: &str) -> Vec<(f64, u64)> {
    let mut buckets: Vec<(f64, u64)> = metrics
        .lines()
        .filter_map(|line| line.strip_prefix(HISTOGRAM))
        .filter(|rest| rest.contains("state=\"sent\""))
        .filter_map(|rest| {
            let le = rest.split("le=\"").nth(1)?.split('"').next()?;
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            let count = rest.rsplit(' ').next()?.parse().ok()?;
            Some((bound, count))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    buckets
}

/// Estimates the `quantile` (0 to 1) by linear interpolation inside its bucket, as
/// Prometheus's `histogram_quantile` does. `None` without observations.
pub(crate) fn quantile(buckets: &[(f64, u64)], quantile: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total == 0 {
        return None;
    }
    let rank = quantile * total as f64;
    let mut lower_bound = 0.0;
    let mut lower_count = 0u64;
    for &(bound, count) in buckets {
        if count as f64 >= rank {
            if bound.is_infinite() {
                return Some(lower_bound);
            }
            let in_bucket = (count - lower_count) as f64;
            if in_bucket == 0.0 {
                return Some(bound);
            }
            let fraction = (rank - lower_count as f64) / in_bucket;
            return Some(lower_bound + (bound - lower_bound) * fraction);
        }
        lower_bound = bound;
        lower_count = count;
    }
    Some(lower_bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
invoicer_delivery_duration_seconds_bucket{state=\"sent\",le=\"0.01\"} 0
invoicer_delivery_duration_seconds_bucket{state=\"sent\",le=\"0.02\"} 50
invoicer_delivery_duration_seconds_bucket{state=\"sent\",le=\"0.04\"} 100
invoicer_delivery_duration_seconds_bucket{state=\"sent\",le=\"+Inf\"} 100
invoicer_delivery_duration_seconds_bucket{state=\"skipped\",le=\"+Inf\"} 7
";

    #[test]
    fn buckets_of_sent_deliveries() {
        let buckets = sent_buckets(TEXT);
        assert_eq!(buckets.len(), 4);
        assert_eq!(buckets[1], (0.02, 50));
        assert_eq!(buckets[3], (f64::INFINITY, 100));
    }

    #[test]
    fn quantiles_interpolate_inside_the_bucket() {
        let buckets = sent_buckets(TEXT);
        let median = quantile(&buckets, 0.5).unwrap();
        assert!((median - 0.02).abs() < 1e-9, "{median}");
        let p75 = quantile(&buckets, 0.75).unwrap();
        assert!((p75 - 0.03).abs() < 1e-9, "{p75}");
    }

    #[test]
    fn no_observations_no_quantile() {
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[(f64::INFINITY, 0)], 0.5), None);
    }
}
