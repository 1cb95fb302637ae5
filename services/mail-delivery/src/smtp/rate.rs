//! The message rate limit of one relay (`mail.max_messages_per_second`). Messages start at
//! least `1 / rate` seconds apart, as from a token bucket of one token.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

pub(crate) struct RateLimit {
    interval: Duration,
    next_start: Mutex<Option<Instant>>,
}

impl RateLimit {
    /// Returns `None` for a rate of 0, which means no limit.
    pub(crate) fn new(messages_per_second: f64) -> Option<RateLimit> {
        if messages_per_second <= 0.0 {
            return None;
        }
        Some(RateLimit {
            interval: Duration::from_secs_f64(1.0 / messages_per_second),
            next_start: Mutex::new(None),
        })
    }

    /// Waits for this message's turn.
    pub(crate) async fn wait_turn(&self) {
        let start = {
            let mut next_start = self
                .next_start
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let now = Instant::now();
            let start = next_start.map_or(now, |next| next.max(now));
            *next_start = Some(start + self.interval);
            start
        };
        tokio::time::sleep_until(start).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_rate_sets_no_limit() {
        assert!(RateLimit::new(0.0).is_none());
    }

    #[tokio::test]
    async fn turns_are_one_interval_apart() {
        let limit = RateLimit::new(50.0).unwrap();
        let begin = Instant::now();
        for _ in 0..5 {
            limit.wait_turn().await;
        }
        // The first turn starts at once, the next four 20 ms apart.
        let elapsed = begin.elapsed();
        assert!(elapsed >= Duration::from_millis(80), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(500), "{elapsed:?}");
    }
}
