//! A simulated network link with a fake clock: latency, loss, duplication and reordering.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One direction of a lossy link.
pub(crate) struct Link {
    rng: StdRng,
    /// Chance a message is lost.
    pub(crate) loss: f64,
    /// Chance a message arrives twice.
    pub(crate) duplicate: f64,
    /// Chance a message is held back behind later ones.
    pub(crate) reorder: f64,
    latency: Duration,
    in_flight: BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>>,
    counter: u64,
    /// Messages sent into the link.
    pub(crate) sent: u64,
}

impl Link {
    pub(crate) fn new(seed: u64, latency: Duration) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            latency,
            in_flight: BinaryHeap::new(),
            counter: 0,
            sent: 0,
        }
    }

    pub(crate) fn lossy(mut self, loss: f64, duplicate: f64, reorder: f64) -> Self {
        self.loss = loss;
        self.duplicate = duplicate;
        self.reorder = reorder;
        self
    }

    fn push(&mut self, at: Instant, bytes: Vec<u8>) {
        self.counter += 1;
        self.in_flight.push(Reverse((at, self.counter, bytes)));
    }

    pub(crate) fn send(&mut self, now: Instant, bytes: Vec<u8>) {
        self.sent += 1;
        if self.rng.random_bool(self.loss) {
            return;
        }
        let mut at = now + self.latency;
        if self.rng.random_bool(self.reorder) {
            at += Duration::from_millis(self.rng.random_range(1..30));
        }
        if self.rng.random_bool(self.duplicate) {
            let later = at + Duration::from_millis(self.rng.random_range(0..20));
            self.push(later, bytes.clone());
        }
        self.push(at, bytes);
    }

    pub(crate) fn deliver(&mut self, now: Instant) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while self
            .in_flight
            .peek()
            .is_some_and(|Reverse((at, _, _))| *at <= now)
        {
            if let Some(Reverse((_, _, bytes))) = self.in_flight.pop() {
                out.push(bytes);
            }
        }
        out
    }

    pub(crate) fn next_delivery(&self) -> Option<Instant> {
        self.in_flight.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Drop everything in flight (the socket died).
    pub(crate) fn cut(&mut self) {
        self.in_flight.clear();
    }
}
