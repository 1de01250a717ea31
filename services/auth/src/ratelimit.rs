//! In-process rate limits for sign-in-type endpoints, per key (an e-mail, an IP) in a
//! fixed window. nginx limits per IP in front of every instance; these add the per-e-mail
//! brake, which a per-IP limit cannot give against a distributed guesser.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct RateLimiter {
    window: Duration,
    hits: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimiter {
    pub fn new(window: Duration) -> Self {
        Self { window, hits: Mutex::new(HashMap::new()) }
    }

    /// Counts a hit on `key`; `Err(retry_after_secs)` once `limit` hits fall in the window.
    pub fn hit(&self, key: &str, limit: u32) -> Result<(), u64> {
        let now = Instant::now();
        let Ok(mut hits) = self.hits.lock() else { return Ok(()) };
        if hits.len() > 100_000 {
            // Bounded memory: drop expired windows.
            hits.retain(|_, (start, _)| now.duration_since(*start) < self.window);
        }
        let entry = hits.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        if entry.1 >= limit {
            let left = self.window.saturating_sub(now.duration_since(entry.0));
            return Err(left.as_secs().max(1));
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_limit_with_retry_after() {
        let l = RateLimiter::new(Duration::from_secs(60));
        for _ in 0..3 {
            assert!(l.hit("a", 3).is_ok());
        }
        let retry = l.hit("a", 3).unwrap_err();
        assert!((1..=60).contains(&retry));
        assert!(l.hit("b", 3).is_ok(), "keys are independent");
    }
}
