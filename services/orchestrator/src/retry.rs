//! The retry schedule of deferred deliveries: exponential backoff with jitter, bounded by a
//! lifetime counted from the first deferral, as Postfix bounds a message by
//! `maximal_queue_lifetime`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use invoicer_kit::config::BatchConfig;

use crate::error::OrchestratorError;

/// Jitter adds up to this fraction of the backoff, so deliveries deferred together do not
/// all retry at the same instant. A retry never comes before its backoff.
const MAX_JITTER: f64 = 0.25;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RetryPolicy {
    pub first_delay: Duration,
    pub max_delay: Duration,
    pub lifetime: Duration,
    /// 0 means that only the lifetime ends the retries.
    pub max_attempts: u32,
}

/// The next step for a delivery whose attempt was deferred.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RetryDecision {
    RetryAt(DateTime<Utc>),
    /// The delivery fails; the text says why, for its reason.
    GiveUp(String),
}

impl RetryPolicy {
    pub(crate) fn from_config(batch: &BatchConfig) -> Result<RetryPolicy, OrchestratorError> {
        let policy = RetryPolicy {
            first_delay: positive_duration("batch.retry_first_delay", &batch.retry_first_delay)?,
            max_delay: positive_duration("batch.retry_max_delay", &batch.retry_max_delay)?,
            lifetime: positive_duration("batch.retry_lifetime", &batch.retry_lifetime)?,
            max_attempts: batch.max_attempts,
        };
        if policy.max_delay < policy.first_delay {
            return Err(OrchestratorError::invalid(
                "batch.retry_max_delay",
                format!(
                    "{:?} is shorter than batch.retry_first_delay {:?}; raise it or lower the first delay",
                    batch.retry_max_delay, batch.retry_first_delay
                ),
            ));
        }
        Ok(policy)
    }

    /// Returns the delay after the attempt numbered `attempts` (from 1), before jitter: the
    /// first delay, doubled per earlier attempt, at most the maximum delay.
    pub(crate) fn backoff(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(30);
        self.first_delay
            .saturating_mul(1u32 << doublings)
            .min(self.max_delay)
    }

    /// Decides what follows a deferred attempt numbered `attempts` that ended at `now`, for a
    /// delivery whose retries began at `since`. `jitter` is a number in `[0, 1)`. The last
    /// retry falls at the end of the lifetime, so a delivery fails once the lifetime has
    /// passed and one more attempt was deferred.
    pub(crate) fn after_deferral(
        &self,
        attempts: u32,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
        jitter: f64,
    ) -> RetryDecision {
        let lifetime = chrono_duration(self.lifetime);
        // Checked, because a date past chrono's range would panic. The configured durations
        // are capped at 3650 days, but a stored `since` is not.
        let deadline = since
            .checked_add_signed(lifetime)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        if now >= deadline {
            return RetryDecision::GiveUp(format!(
                "gave up after {attempts} attempts in {}",
                humantime::format_duration(self.lifetime)
            ));
        }
        if self.max_attempts > 0 && attempts >= self.max_attempts {
            return RetryDecision::GiveUp(format!(
                "gave up after {attempts} attempts (batch.max_attempts)"
            ));
        }
        let backoff = self.backoff(attempts);
        let delay = backoff.mul_f64(1.0 + MAX_JITTER * jitter.clamp(0.0, 1.0));
        let retry_at = now
            .checked_add_signed(chrono_duration(delay))
            .unwrap_or(deadline);
        RetryDecision::RetryAt(retry_at.min(deadline))
    }
}

/// Returns a random number in `[0, 1)` for the jitter, from the random bits of a UUIDv4.
pub(crate) fn random_jitter() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u128() >> 75; // 53 bits, a double's mantissa
    bits as f64 / (1u64 << 53) as f64
}

fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

/// The maximum retry delay or lifetime of the configuration, 3650 days: far beyond a mail
/// server's usual queue lifetime, and short enough that no retry time leaves chrono's range.
const MAX_RETRY_DURATION: Duration = Duration::from_secs(3650 * 86400);

fn positive_duration(field: &'static str, value: &str) -> Result<Duration, OrchestratorError> {
    let duration = humantime::parse_duration(value.trim()).map_err(|e| {
        OrchestratorError::invalid(
            field,
            format!("invalid duration {value:?} ({e}); use a form such as `2s`, `30m` or `5d`"),
        )
    })?;
    if duration > MAX_RETRY_DURATION {
        return Err(OrchestratorError::invalid(
            field,
            format!(
                "duration {value:?} is longer than the maximum of {} days; use a shorter one",
                MAX_RETRY_DURATION.as_secs() / 86400
            ),
        ));
    }
    if duration.is_zero() {
        return Err(OrchestratorError::invalid(
            field,
            format!("duration {value:?} must be longer than zero"),
        ));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            first_delay: Duration::from_secs(300),
            max_delay: Duration::from_secs(4 * 3600),
            lifetime: Duration::from_secs(5 * 86400),
            max_attempts: 0,
        }
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn backoff_doubles_up_to_max() {
        let policy = policy();
        let delays: Vec<u64> = (1..=8).map(|n| policy.backoff(n).as_secs()).collect();
        assert_eq!(delays, [300, 600, 1200, 2400, 4800, 9600, 14400, 14400]);
        assert_eq!(policy.backoff(u32::MAX).as_secs(), 14400);
    }

    #[test]
    fn jitter_only_lengthens_delay() {
        let policy = policy();
        assert_eq!(
            policy.after_deferral(1, at(0), at(0), 0.0),
            RetryDecision::RetryAt(at(300))
        );
        let RetryDecision::RetryAt(latest) = policy.after_deferral(1, at(0), at(0), 0.999_999)
        else {
            panic!("gave up on the first deferral");
        };
        assert!(latest > at(374) && latest <= at(375), "{latest}");
        for _ in 0..1000 {
            let jitter = random_jitter();
            assert!((0.0..1.0).contains(&jitter), "{jitter}");
        }
    }

    #[test]
    fn last_retry_falls_at_lifetime_end() {
        let policy = policy();
        let since = at(0);
        let near_end = at(5 * 86400 - 60);
        assert_eq!(
            policy.after_deferral(30, since, near_end, 0.5),
            RetryDecision::RetryAt(at(5 * 86400))
        );
    }

    #[test]
    fn gives_up_after_lifetime() {
        let policy = policy();
        let RetryDecision::GiveUp(reason) = policy.after_deferral(31, at(0), at(5 * 86400), 0.0)
        else {
            panic!("still retried after the lifetime");
        };
        assert_eq!(reason, "gave up after 31 attempts in 5days");
    }

    #[test]
    fn max_attempts_caps_retries() {
        let policy = RetryPolicy {
            max_attempts: 3,
            ..policy()
        };
        assert!(matches!(
            policy.after_deferral(2, at(0), at(60), 0.0),
            RetryDecision::RetryAt(_)
        ));
        assert!(matches!(
            policy.after_deferral(3, at(0), at(60), 0.0),
            RetryDecision::GiveUp(reason) if reason.contains("3 attempts")
        ));
    }

    #[test]
    fn lifetime_over_3650_days_rejected() {
        let batch = BatchConfig {
            retry_lifetime: "300000y".to_owned(),
            ..BatchConfig::default()
        };
        let error = RetryPolicy::from_config(&batch).unwrap_err().to_string();
        assert!(error.contains("batch.retry_lifetime"), "{error}");
        assert!(error.contains("\"300000y\""), "{error}");
        assert!(
            error.contains("longer than the maximum of 3650 days"),
            "{error}"
        );
    }

    #[test]
    fn retry_near_date_limit_does_not_panic() {
        let long = RetryPolicy {
            lifetime: MAX_RETRY_DURATION,
            max_delay: MAX_RETRY_DURATION,
            first_delay: MAX_RETRY_DURATION,
            max_attempts: 0,
        };
        let since = DateTime::<Utc>::MAX_UTC - chrono::Duration::days(1);

        let decision = long.after_deferral(1, since, since, 0.5);

        assert_eq!(decision, RetryDecision::RetryAt(DateTime::<Utc>::MAX_UTC));
    }

    #[test]
    fn invalid_config_names_key_and_value() {
        let mut batch = BatchConfig {
            retry_lifetime: "forever".to_owned(),
            ..BatchConfig::default()
        };
        let error = RetryPolicy::from_config(&batch).unwrap_err().to_string();
        assert!(error.contains("batch.retry_lifetime"), "{error}");
        assert!(error.contains("\"forever\""), "{error}");

        batch.retry_lifetime = "5d".to_owned();
        batch.retry_max_delay = "1s".to_owned();
        let error = RetryPolicy::from_config(&batch).unwrap_err().to_string();
        assert!(error.contains("batch.retry_max_delay"), "{error}");
    }

    #[test]
    fn defaults_follow_postfix_lifetime() {
        let policy = RetryPolicy::from_config(&BatchConfig::default()).unwrap();
        assert_eq!(policy.lifetime, Duration::from_secs(5 * 86400));
        assert_eq!(policy.first_delay, Duration::from_secs(300));
        assert_eq!(policy.max_attempts, 0);
    }
}
