//! Pacing of outgoing stream messages: at most a given number a second, one slot after another,
//! so the client never exceeds MGS's cap (about 1,000 messages a second).
//!
//! Slots are kept by elapsed time, not one per wake-up: a caller that wakes late (tokio's timers
//! fire on whole milliseconds, later still when the CPUs are busy) sends the slots it missed
//! while messages were waiting, but only those of the last [`CATCH_UP`]; older ones are lost. A
//! message that finds nothing waiting before it (after a quiet spell) starts the schedule
//! afresh, so no credit is banked for a burst. Over any span of time `w`, at most
//! `(w + CATCH_UP) × rate + 1` messages go.

use std::time::{Duration, Instant};

/// How far behind the schedule a late caller may catch up.
pub const CATCH_UP: Duration = Duration::from_millis(10);

/// A schedule of send slots.
#[derive(Clone, Debug)]
pub struct Pacer {
    interval: Option<Duration>,
    /// The next free slot.
    next: Option<Instant>,
    /// Whether messages were left waiting at the last call: only then are missed slots owed.
    behind: bool,
}

impl Pacer {
    /// At most `per_second` messages a second; `None` (or 0) does not pace.
    pub fn new(per_second: Option<u32>) -> Self {
        Self {
            interval: per_second
                .filter(|r| *r > 0)
                .map(|r| Duration::from_secs(1) / r),
            next: None,
            behind: false,
        }
    }

    /// How many of `waiting` messages may go at `now`; takes their slots.
    pub fn release(&mut self, now: Instant, waiting: usize) -> usize {
        let Some(interval) = self.interval else {
            return waiting;
        };
        if waiting == 0 {
            self.behind = false;
            return 0;
        }
        let earliest = now.checked_sub(CATCH_UP).unwrap_or(now);
        let mut slot = match self.next {
            Some(next) if next > now => {
                self.behind = true;
                return 0;
            }
            // Woken late with messages waiting: the missed slots of the last CATCH_UP.
            Some(next) if self.behind => next.max(earliest),
            // Nothing waited before: start afresh.
            _ => now,
        };
        let mut released = 0;
        while released < waiting && slot <= now {
            released += 1;
            slot += interval;
        }
        self.next = Some(slot);
        self.behind = released < waiting;
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

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    /// How many of `times` (sorted) fall in the busiest span of length `window`.
    fn busiest(times: &[Instant], window: Duration) -> usize {
        let mut most = 0;
        let mut first = 0;
        for (last, &at) in times.iter().enumerate() {
            while at.duration_since(times[first]) > window {
                first += 1;
            }
            most = most.max(last + 1 - first);
        }
        most
    }

    /// A small deterministic generator (xorshift) for wake-up times and queue lengths.
    struct Xorshift(u64);

    impl Xorshift {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    #[test]
    fn slots_follow_the_rate_and_late_callers_catch_up() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(Some(1000));
        assert_eq!(pacer.release(t0, 5), 1);
        assert_eq!(pacer.release(t0, 4), 0);
        assert_eq!(pacer.next_slot(), Some(t0 + ms(1)));
        // Woken 3.5 ms late: the three missed slots go now, with this one.
        assert_eq!(pacer.release(t0 + ms(4) + us(500), 10), 4);
        assert_eq!(pacer.next_slot(), Some(t0 + ms(5)));
        // Woken 50 ms late with messages waiting: the slots of the last 10 ms only.
        assert_eq!(pacer.release(t0 + ms(55), 100), 11);
        assert_eq!(pacer.next_slot(), Some(t0 + ms(56)));
        // Unpaced: everything at once.
        assert_eq!(Pacer::new(None).release(t0, 7), 7);
        assert_eq!(Pacer::new(Some(0)).release(t0, 7), 7);
    }

    #[test]
    fn after_a_quiet_spell_no_burst() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(Some(1000));
        assert_eq!(pacer.release(t0, 1), 1);
        // Nothing waited since: the next message starts the schedule afresh.
        assert_eq!(pacer.release(t0 + ms(500), 0), 0);
        assert_eq!(pacer.release(t0 + ms(1000), 10), 1);
        assert_eq!(pacer.release(t0 + ms(1000), 10), 0);
        // Not even a caller that never said it was idle gets credit for a quiet spell.
        let mut pacer = Pacer::new(Some(1000));
        assert_eq!(pacer.release(t0, 1), 1);
        assert_eq!(pacer.release(t0 + ms(1000), 10), 1);
        // A message before its slot still waits for it.
        assert_eq!(pacer.release(t0 + ms(1000) + us(500), 10), 0);
    }

    #[test]
    fn no_span_carries_more_than_the_rate_and_the_catch_up_and_late_callers_lose_nothing() {
        for per_second in [900, 1000] {
            let interval = Duration::from_secs(1) / per_second;
            let bound = |window: Duration| {
                ((window + CATCH_UP).as_nanos() / interval.as_nanos()) as usize + 1
            };
            let t0 = Instant::now();
            let mut rng = Xorshift(0x9e37_79b9_7f4a_7c15 ^ u64::from(per_second));
            let mut pacer = Pacer::new(Some(per_second));
            let mut now = t0;
            let mut waiting = 0usize;
            let mut sent = Vec::new();
            let mut backlogged_time = Duration::ZERO;
            let mut backlogged_sent = 0usize;
            for _ in 0..20_000 {
                // Wake-ups up to 10 ms apart, mostly about a slot (a millisecond timer on a
                // busy machine); now and then new messages, and sometimes a quiet spell.
                let step = match rng.below(100) {
                    0..=79 => us(900 + rng.below(300)),
                    80..=97 => us(rng.below(4_000)),
                    _ => us(rng.below(10_000)),
                };
                now += step;
                let was_waiting = waiting > 0;
                if rng.below(1000) == 0 {
                    // A quiet spell: everything is sent, nothing comes for a while.
                    waiting = 0;
                    assert_eq!(pacer.release(now, 0), 0);
                    now += ms(rng.below(50));
                }
                if waiting < 5 {
                    waiting += rng.below(200) as usize;
                }
                let released = pacer.release(now, waiting);
                waiting -= released;
                sent.extend(std::iter::repeat_n(now, released));
                if was_waiting {
                    backlogged_time += step;
                    backlogged_sent += released;
                }
            }
            for window in [ms(1), ms(10), ms(100), ms(1000)] {
                let most = busiest(&sent, window);
                assert!(
                    most <= bound(window),
                    "{per_second}/s: {most} messages in {window:?}, more than {}",
                    bound(window)
                );
            }
            // While messages waited, no late call lost a slot: the pace is the rate.
            let expected = (backlogged_time.as_secs_f64() * f64::from(per_second)) as usize;
            assert!(
                backlogged_sent + 50 >= expected,
                "{per_second}/s: {backlogged_sent} sent while messages waited, {expected} slots"
            );
        }
    }
}
