//! The real agent's output pacing (spec §5.4, §7.5): it reads at most 1 KiB, sends it as one
//! message, then sleeps 1 ms before reading again, which is why a Session Manager tunnel crawls
//! at under 1 MB/s. The sandbox keeps that pace as a schedule of send slots 1 ms apart.
//!
//! Each of the real agent's sleeps is timed from the send before it, so a late wake-up delays it
//! by the lateness only. The sandbox runs on tokio's timer, which fires on whole milliseconds, in
//! a process shared with the client under test, so its wake-ups come up to a millisecond late,
//! later when the CPUs are busy; checked once per tick, as a bucket holding one message, it lost
//! a whole slot at every early or late tick (0.85–0.90 of the pace on the project's machine, less
//! under load). So slots are kept by elapsed time: a late wake-up sends the slots it missed while
//! output was waiting, those of the last [`CATCH_UP`] only. Output that finds nothing waiting
//! before it goes at once and starts the schedule afresh (the real agent is blocked in its read
//! then, not asleep), so no credit is banked for a burst. Over any span `w`, at most
//! `(w + CATCH_UP) × RATE + 1` messages go.
//!
//! [`Pacer::ceiling`] runs the same schedule on the same tick with nothing else: what a paced
//! session could carry at best on this machine, the baseline the tunnel benchmark compares with.

use std::time::{Duration, Instant};

/// Messages a second the real agent sends at most.
pub const RATE: f64 = 1000.0;
/// The time between two messages: the real agent's sleep.
pub const INTERVAL: Duration = Duration::from_millis(1);
/// How often the agent's loop wakes to send while output waits.
pub const TICK: Duration = INTERVAL;
/// How far behind the schedule a late wake-up may catch up.
pub const CATCH_UP: Duration = Duration::from_millis(10);
/// Bytes of payload per message.
pub const MESSAGE: usize = 1024;

/// A schedule of send slots, [`INTERVAL`] apart.
#[derive(Clone, Debug)]
pub struct Pacer {
    /// The next free slot.
    next: Instant,
    /// Whether output has been waiting since the last slot was taken: only then are missed
    /// slots owed.
    behind: bool,
}

impl Pacer {
    /// A schedule whose first slot is open at `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            next: now,
            behind: false,
        }
    }

    /// Take a slot for one message at `now`, if one is open.
    pub fn try_take(&mut self, now: Instant) -> bool {
        if self.next > now {
            self.behind = true;
            return false;
        }
        let slot = if self.behind {
            self.next.max(now.checked_sub(CATCH_UP).unwrap_or(now))
        } else {
            now
        };
        self.next = slot + INTERVAL;
        self.behind = true;
        true
    }

    /// Nothing is waiting to be sent: the slots from now on are not owed to later output.
    pub fn idle(&mut self) {
        self.behind = false;
    }

    /// When the next slot opens.
    pub fn next_slot(&self) -> Instant {
        self.next
    }

    /// Run the schedule alone on the agent's tick for `duration`, always with a message
    /// waiting: the messages a second it releases.
    pub async fn ceiling(duration: Duration) -> f64 {
        let start = Instant::now();
        let mut pacer = Pacer::new(start);
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut sent = 0u64;
        while start.elapsed() < duration {
            tick.tick().await;
            while pacer.try_take(Instant::now()) {
                sent += 1;
            }
        }
        sent as f64 / start.elapsed().as_secs_f64()
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

    /// At most `(w + CATCH_UP) / INTERVAL + 1` messages in any span `w`.
    fn bound(window: Duration) -> usize {
        ((window + CATCH_UP).as_nanos() / INTERVAL.as_nanos()) as usize + 1
    }

    /// A small deterministic generator (xorshift) for wake-up times.
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
    fn one_slot_a_millisecond_and_late_wake_ups_catch_up() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(t0);
        assert!(pacer.try_take(t0));
        assert!(!pacer.try_take(t0 + us(999)));
        assert_eq!(pacer.next_slot(), t0 + ms(1));
        // Woken 2.5 ms after the slot (a busy CPU, tokio's millisecond timer): the slots at
        // 1, 2 and 3 ms go now; the next one is at 4 ms.
        let late = t0 + ms(3) + us(500);
        let mut sent = 0;
        while pacer.try_take(late) {
            sent += 1;
        }
        assert_eq!(sent, 3);
        assert_eq!(pacer.next_slot(), t0 + ms(4));
    }

    #[test]
    fn a_long_stall_catches_up_only_the_last_catch_up_worth() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(t0);
        assert!(pacer.try_take(t0));
        let late = t0 + ms(50);
        let mut sent = 0;
        while pacer.try_take(late) {
            sent += 1;
        }
        // The slots from 40 ms to 50 ms.
        assert_eq!(sent, 11);
        assert_eq!(pacer.next_slot(), late + INTERVAL);
    }

    #[test]
    fn output_after_a_quiet_spell_goes_at_once_without_a_burst() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(t0);
        assert!(pacer.try_take(t0));
        pacer.idle();
        let later = t0 + ms(1000);
        assert!(pacer.try_take(later));
        assert!(!pacer.try_take(later));
        assert_eq!(pacer.next_slot(), later + INTERVAL);
        // A message that comes before its slot still waits for it, quiet or not.
        pacer.idle();
        assert!(!pacer.try_take(later + us(500)));
    }

    #[test]
    fn no_span_carries_more_than_the_rate_and_the_catch_up_and_late_wake_ups_lose_nothing() {
        let t0 = Instant::now();
        let mut rng = Xorshift(0x9e37_79b9_7f4a_7c15);
        let mut pacer = Pacer::new(t0);
        let mut now = t0;
        let mut sent = Vec::new();
        let mut busy_time = Duration::ZERO;
        let mut busy_sent = 0usize;
        for round in 0..20_000u64 {
            // Wake-ups up to 10 ms apart, mostly about 1 ms (a millisecond timer on a busy
            // machine); every 1,000th round a quiet spell with nothing to send.
            let step = match rng.below(100) {
                0..=79 => us(900 + rng.below(300)),
                80..=97 => us(rng.below(4_000)),
                _ => us(rng.below(10_000)),
            };
            now += step;
            if round % 1000 == 999 {
                pacer.idle();
                now += ms(rng.below(50));
                continue;
            }
            let before = sent.len();
            while pacer.try_take(now) {
                sent.push(now);
            }
            if round % 1000 != 0 {
                busy_time += step;
                busy_sent += sent.len() - before;
            }
        }
        for window in [ms(1), ms(10), ms(100), ms(1000)] {
            let most = busiest(&sent, window);
            assert!(
                most <= bound(window),
                "{most} messages in {window:?}, more than {}",
                bound(window)
            );
        }
        // While output waits, no wake-up lost a slot: the pace is the rate.
        let expected = (busy_time.as_secs_f64() * RATE) as usize;
        assert!(
            busy_sent + 20 >= expected,
            "{busy_sent} sent while busy, {expected} slots"
        );
    }
}
