//! Pacing of outgoing stream messages: at most a given number a second, one slot after another,
//! so the client never exceeds MGS's cap (about 1,000 messages a second) and never bursts.
//!
//! A caller that wakes late (timers are coarse) may send the slots it missed, up to
//! [`CATCH_UP`] worth; after a longer quiet spell the schedule starts afresh, so no credit is
//! banked for a burst.

use std::time::{Duration, Instant};

/// How far behind the schedule a late caller may catch up.
pub const CATCH_UP: Duration = Duration::from_millis(10);

/// A schedule of send slots.
#[derive(Clone, Debug)]
pub struct Pacer {
    interval: Option<Duration>,
    next: Option<Instant>,
}

impl Pacer {
    /// At most `per_second` messages a second; `None` (or 0) does not pace.
    pub fn new(per_second: Option<u32>) -> Self {
        Self {
            interval: per_second
                .filter(|r| *r > 0)
                .map(|r| Duration::from_secs(1) / r),
            next: None,
        }
    }

    /// How many of `waiting` messages may go at `now`; takes their slots.
    pub fn release(&mut self, now: Instant, waiting: usize) -> usize {
        let Some(interval) = self.interval else {
            return waiting;
        };
        if waiting == 0 {
            return 0;
        }
        let mut slot = match self.next {
            Some(next) if next > now => return 0,
            Some(next) if now.saturating_duration_since(next) <= CATCH_UP => next,
            _ => now,
        };
        let mut released = 0;
        while released < waiting && slot <= now {
            released += 1;
            slot += interval;
        }
        self.next = Some(slot);
        released
    }

    /// When the next slot opens (`None`: unpaced, or nothing sent yet).
    pub fn next_slot(&self) -> Option<Instant> {
        self.interval.and(self.next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_rate_and_late_callers_catch_up_a_little() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut pacer = Pacer::new(Some(1000));
        assert_eq!(pacer.release(t0, 5), 1);
        assert_eq!(pacer.release(t0, 4), 0);
        assert_eq!(pacer.next_slot(), Some(t0 + ms(1)));
        // Woken 3.5 ms late: the three missed slots go now.
        assert_eq!(pacer.release(t0 + ms(4) + ms(1) / 2, 10), 4);
        // After a quiet second, no burst: one message, then the schedule again.
        assert_eq!(pacer.release(t0 + ms(1000), 10), 1);
        assert_eq!(pacer.release(t0 + ms(1000), 10), 0);
        // Unpaced: everything at once.
        assert_eq!(Pacer::new(None).release(t0, 7), 7);
    }
}
