//! Per-client request rates: a token bucket per client (its tenant when tokens are configured,
//! its address otherwise). A request finding the bucket empty gets `429` with the seconds until
//! the next token in `Retry-After`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Buckets past this many are pruned of the full ones (clients that have gone quiet).
const PRUNE_AT: usize = 10_000;

/// Token buckets of every client seen recently.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// `per_second` sustained requests per client with bursts of `burst`; a rate of 0 (or less)
    /// admits everything.
    pub fn new(per_second: f64, burst: u32) -> Self {
        Self {
            per_second,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token from `client`'s bucket, or says in how many whole seconds one will be
    /// there.
    pub fn admit(&self, client: &str) -> Result<(), u32> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= PRUNE_AT {
            let (rate, burst) = (self.per_second, self.burst);
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = buckets
            .entry(client.to_string())
            .or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.per_second).ceil().max(1.0) as u32)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_the_sustained_rate_per_client() {
        let limiter = RateLimiter::new(1.0, 3);
        for _ in 0..3 {
            assert!(limiter.admit("a").is_ok());
        }
        assert_eq!(limiter.admit("a"), Err(1));
        // another client has its own bucket
        assert!(limiter.admit("b").is_ok());
        let fast = RateLimiter::new(200.0, 1);
        assert!(fast.admit("a").is_ok());
        assert!(fast.admit("a").is_err());
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(fast.admit("a").is_ok(), "refilled at 200 per second");
        let off = RateLimiter::new(0.0, 1);
        assert!((0..1000).all(|_| off.admit("a").is_ok()));
    }
}
