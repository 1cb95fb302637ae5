//! The waits between catch-up appends of an outcome that audit-log rejected.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The wait after the first rejection, twice the retry loop's poll of 15 s.
const FIRST_WAIT: Duration = Duration::from_secs(30);
/// The maximum wait, so an outcome that audit-log keeps rejecting costs one warning an hour.
const MAX_WAIT: Duration = Duration::from_secs(60 * 60);

/// Outcomes whose catch-up append audit-log rejected, by delivery id, each with the attempt
/// whose outcome it is and when to try it again. The wait doubles with each rejection, from
/// `FIRST_WAIT` up to `MAX_WAIT`. The outcome of a later attempt does not wait. They are kept
/// in memory only, so a restart tries each of them again at once.
#[derive(Default)]
pub(crate) struct LogBackoff {
    rejected: Mutex<HashMap<String, Rejection>>,
}

struct Rejection {
    attempt: u32,
    count: u32,
    retry_at: Instant,
}

impl LogBackoff {
    /// Returns whether the outcome of attempt `attempt` of delivery `id` waits for its next
    /// append at `now`.
    pub(crate) fn is_waiting(&self, id: &str, attempt: u32, now: Instant) -> bool {
        self.lock()
            .get(id)
            .is_some_and(|rejection| rejection.attempt == attempt && now < rejection.retry_at)
    }

    /// Records one more rejection of the outcome of attempt `attempt` of delivery `id` and
    /// returns the wait before its next append.
    pub(crate) fn rejected(&self, id: &str, attempt: u32, now: Instant) -> Duration {
        let mut rejected = self.lock();
        let rejection = rejected.entry(id.to_owned()).or_insert(Rejection {
            attempt,
            count: 0,
            retry_at: now,
        });
        if rejection.attempt != attempt {
            rejection.attempt = attempt;
            rejection.count = 0;
        }
        rejection.count = rejection.count.saturating_add(1);
        let wait = wait_after(rejection.count);
        rejection.retry_at = now + wait;
        wait
    }

    /// Forgets the rejections of delivery `id`, whose outcome is in the email log now or gone.
    pub(crate) fn appended(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Rejection>> {
        self.rejected.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Returns the wait after `count` rejections: `FIRST_WAIT`, doubled for each further one, at
/// most `MAX_WAIT`.
fn wait_after(count: u32) -> Duration {
    let doublings = count.saturating_sub(1).min(16);
    FIRST_WAIT.saturating_mul(1 << doublings).min(MAX_WAIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_doubles_up_to_an_hour() {
        assert_eq!(wait_after(1), Duration::from_secs(30));
        assert_eq!(wait_after(2), Duration::from_secs(60));
        assert_eq!(wait_after(3), Duration::from_secs(120));
        assert_eq!(wait_after(8), Duration::from_secs(3600));
        assert_eq!(wait_after(u32::MAX), Duration::from_secs(3600));
    }

    #[test]
    fn rejected_outcome_waits_until_due() {
        let backoff = LogBackoff::default();
        let now = Instant::now();
        assert!(!backoff.is_waiting("d-1", 1, now));

        assert_eq!(backoff.rejected("d-1", 1, now), Duration::from_secs(30));
        assert!(backoff.is_waiting("d-1", 1, now + Duration::from_secs(29)));
        assert!(!backoff.is_waiting("d-1", 1, now + Duration::from_secs(30)));
        assert!(!backoff.is_waiting("d-2", 1, now));

        let later = now + Duration::from_secs(30);
        assert_eq!(backoff.rejected("d-1", 1, later), Duration::from_secs(60));
        assert!(backoff.is_waiting("d-1", 1, later + Duration::from_secs(59)));
    }

    #[test]
    fn later_attempt_does_not_wait() {
        let backoff = LogBackoff::default();
        let now = Instant::now();
        backoff.rejected("d-1", 1, now);
        backoff.rejected("d-1", 1, now);

        assert!(!backoff.is_waiting("d-1", 2, now));
        assert_eq!(backoff.rejected("d-1", 2, now), Duration::from_secs(30));
    }

    #[test]
    fn appended_outcome_starts_over() {
        let backoff = LogBackoff::default();
        let now = Instant::now();
        backoff.rejected("d-1", 1, now);
        backoff.rejected("d-1", 1, now);
        backoff.appended("d-1");

        assert!(!backoff.is_waiting("d-1", 1, now));
        assert_eq!(backoff.rejected("d-1", 1, now), Duration::from_secs(30));
    }
}
