//! Jobs in the background (an inventory listing, a history gathering): how far one has got,
//! and the job itself, a task whose events stream out and which stops when it is dropped.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;

/// How far a job has got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Progress {
    /// Parts finished (listed, gathered, or failed).
    pub done: usize,
    /// Parts known so far (grows while identities' regions are learned).
    pub total: usize,
    /// Calls waiting out throttling right now.
    pub throttled: usize,
}

/// The counters behind a [`Progress`], shared by a job's tasks.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    done: AtomicUsize,
    total: AtomicUsize,
    throttled: AtomicUsize,
}

impl Tally {
    /// `total` parts known at the start.
    pub(crate) fn new(total: usize) -> Self {
        Self {
            total: AtomicUsize::new(total),
            ..Self::default()
        }
    }

    /// Where it stands now.
    pub(crate) fn now(&self) -> Progress {
        Progress {
            done: self.done.load(Ordering::SeqCst),
            total: self.total.load(Ordering::SeqCst),
            throttled: self.throttled.load(Ordering::SeqCst),
        }
    }

    /// `n` more parts to do.
    pub(crate) fn more(&self, n: usize) {
        self.total.fetch_add(n, Ordering::SeqCst);
    }

    /// One part done.
    pub(crate) fn one_done(&self) {
        self.done.fetch_add(1, Ordering::SeqCst);
    }

    /// A call starts (`true`) or stops (`false`) waiting out throttling.
    pub(crate) fn waiting(&self, more: bool) {
        if more {
            self.throttled.fetch_add(1, Ordering::SeqCst);
        } else {
            self.throttled.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// A job's task and its events; dropping it stops the task.
#[derive(Debug)]
pub(crate) struct Job<E> {
    events: mpsc::UnboundedReceiver<E>,
    task: tokio::task::JoinHandle<()>,
}

impl<E> Job<E> {
    /// The job `task`, telling `events`.
    pub(crate) fn new(
        events: mpsc::UnboundedReceiver<E>,
        task: tokio::task::JoinHandle<()>,
    ) -> Self {
        Self { events, task }
    }

    /// The next event; `None` once the job is over.
    pub(crate) async fn next(&mut self) -> Option<E> {
        self.events.recv().await
    }
}

impl<E> Drop for Job<E> {
    fn drop(&mut self) {
        self.task.abort();
    }
}
