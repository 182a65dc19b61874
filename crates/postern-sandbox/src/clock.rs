//! The sandbox's notion of now, which tests and the admin API can move.
//!
//! Every decision that depends on time (credential expiry, TOTP windows, signature freshness,
//! throttling, CloudTrail event times) reads this clock, never the system clock directly, so tests
//! cover an hour of expiry in microseconds.

use std::sync::{Arc, Mutex, PoisonError};

use time::{Duration, OffsetDateTime};

/// A shared, cloneable clock: the system time plus an offset, or a fixed time that only moves
/// when told to.
#[derive(Clone, Debug)]
pub struct Clock {
    state: Arc<Mutex<State>>,
}

#[derive(Clone, Copy, Debug)]
enum State {
    /// The system time shifted by an offset (what `serve` uses; the admin API moves the offset).
    System { offset: Duration },
    /// A time that stands still until advanced (what in-process tests usually want).
    Frozen { at: OffsetDateTime },
}

impl Clock {
    /// A clock that follows the system time.
    pub fn system() -> Self {
        Self::with(State::System {
            offset: Duration::ZERO,
        })
    }

    /// A clock stopped at `at`; it moves only through [`Clock::advance`] and [`Clock::set`].
    pub fn frozen(at: OffsetDateTime) -> Self {
        Self::with(State::Frozen { at })
    }

    fn with(state: State) -> Self {
        Self {
            state: Arc::new(Mutex::new(state)),
        }
    }

    /// The current time, in UTC, truncated to whole milliseconds (AWS's precision).
    pub fn now(&self) -> OffsetDateTime {
        let now = match *self.lock() {
            State::System { offset } => OffsetDateTime::now_utc() + offset,
            State::Frozen { at } => at,
        };
        let millis = now.millisecond();
        now.replace_millisecond(millis).unwrap_or(now)
    }

    /// Move the clock forward (or backward, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut state = self.lock();
        *state = match *state {
            State::System { offset } => State::System {
                offset: offset + by,
            },
            State::Frozen { at } => State::Frozen { at: at + by },
        };
    }

    /// Jump to `to`. A system clock keeps ticking from there.
    pub fn set(&self, to: OffsetDateTime) {
        let mut state = self.lock();
        *state = match *state {
            State::System { .. } => State::System {
                offset: to - OffsetDateTime::now_utc(),
            },
            State::Frozen { .. } => State::Frozen { at: to },
        };
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a plain value: a panic elsewhere cannot leave it half-written.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn frozen_clock_moves_only_when_told() {
        let clock = Clock::frozen(datetime!(2026-01-01 00:00 UTC));
        assert_eq!(clock.now(), datetime!(2026-01-01 00:00 UTC));
        clock.advance(Duration::hours(2));
        assert_eq!(clock.now(), datetime!(2026-01-01 02:00 UTC));
        clock.set(datetime!(2030-05-05 05:05 UTC));
        assert_eq!(clock.now(), datetime!(2030-05-05 05:05 UTC));
    }

    #[test]
    fn system_clock_keeps_its_offset() {
        let clock = Clock::system();
        clock.advance(Duration::days(3));
        let ahead = clock.now() - OffsetDateTime::now_utc();
        assert!(
            ahead > Duration::days(3) - Duration::seconds(5),
            "offset lost: {ahead}"
        );
        assert!(
            ahead < Duration::days(3) + Duration::seconds(5),
            "offset grew: {ahead}"
        );
    }
}
