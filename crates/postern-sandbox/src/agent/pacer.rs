//! The real agent's output pacing (spec §7.5): about one 1 KiB message per millisecond, the
//! reason a Session Manager tunnel crawls at under 1 MB/s. The sandbox imitates it with a token
//! bucket refilled at 1,000 tokens a second, holding at most one, checked on a 1 ms tick.
//!
//! [`Pacer::ceiling`] runs the same bucket on the same tick with nothing else: what a paced
//! session could carry at best on this machine, the baseline the tunnel benchmark compares with.

use std::time::{Duration, Instant};

/// Messages a second the real agent sends at most.
pub const RATE: f64 = 1000.0;
/// How often the agent's loop checks the bucket.
pub const TICK: Duration = Duration::from_millis(1);
/// Bytes of payload per message.
pub const MESSAGE: usize = 1024;

/// A token bucket: [`RATE`] tokens a second, at most one banked.
#[derive(Clone, Debug)]
pub struct Pacer {
    tokens: f64,
    last: Instant,
}

impl Pacer {
    /// A full bucket at `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            tokens: 1.0,
            last: now,
        }
    }

    /// Add the tokens earned since the last refill.
    pub fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * RATE).min(1.0);
        self.last = now;
    }

    /// Take a token if there is one.
    pub fn try_take(&mut self) -> bool {
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Run the bucket alone on the agent's tick for `duration`, always with a message waiting:
    /// the messages a second it releases.
    pub async fn ceiling(duration: Duration) -> f64 {
        let start = Instant::now();
        let mut pacer = Pacer::new(start);
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut sent = 0u64;
        while start.elapsed() < duration {
            tick.tick().await;
            pacer.refill(Instant::now());
            while pacer.try_take() {
                sent += 1;
            }
        }
        sent as f64 / start.elapsed().as_secs_f64()
    }
}
