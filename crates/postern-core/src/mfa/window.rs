//! The MFA prompt of a window: core asks by sending a [`Question`] out, and the window answers
//! with [`WindowPrompt::answer`] (or [`WindowPrompt::cancel`]).
//!
//! One question per device is pending at a time. Whoever else needs the same device while it is
//! asked (another profile, a reloaded resolver) joins it rather than opening a second dialog,
//! and the question, sent again with the same id, names every profile that waits on it. A
//! webview that reloads asks [`WindowPrompt::pending`] for what is still open.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::mfa::{MfaPrompt, MfaRequest, PromptError, PromptFuture, Retry};

/// A question for the window: a code for one device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Question {
    /// Its id, for the answer.
    pub id: u64,
    /// The device.
    pub serial: String,
    /// The profile that owns the device, when known.
    pub owner: Option<String>,
    /// Every profile waiting on the code, in the order they asked.
    pub waiting: Vec<String>,
    /// Why the previous answer was not taken, when asking again.
    pub retry: Option<Retry>,
    /// The question in a sentence (no code in it).
    pub message: String,
}

/// What the prompt tells the window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum PromptEvent {
    /// Show this question (new, or with more profiles waiting: same id).
    Asking(Question),
    /// The question was answered or cancelled: close its dialog.
    Settled {
        /// Its id.
        id: u64,
    },
}

struct Pending {
    question: Question,
    answers: Vec<oneshot::Sender<Result<String, PromptError>>>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    /// By device.
    pending: BTreeMap<String, Pending>,
}

/// An [`MfaPrompt`] answered by a window.
#[derive(Clone)]
pub struct WindowPrompt {
    inner: Arc<Mutex<Inner>>,
    events: mpsc::UnboundedSender<PromptEvent>,
}

impl WindowPrompt {
    /// A prompt, and the events the window listens to.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<PromptEvent>) {
        let (events, rx) = mpsc::unbounded_channel();
        (
            Self {
                inner: Arc::new(Mutex::new(Inner::default())),
                events,
            },
            rx,
        )
    }

    fn settle(&self, id: u64, answer: Result<String, PromptError>) -> bool {
        let settled = {
            let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            let serial = inner
                .pending
                .iter()
                .find(|(_, p)| p.question.id == id)
                .map(|(serial, _)| serial.clone());
            serial.and_then(|serial| inner.pending.remove(&serial))
        };
        let Some(pending) = settled else {
            return false;
        };
        for waiter in pending.answers {
            let _ = waiter.send(answer.clone());
        }
        let _ = self.events.send(PromptEvent::Settled { id });
        true
    }

    /// The user typed `code` for question `id` (checked by the resolver, which asks again with
    /// the reason when AWS refuses it). False when no such question is open.
    pub fn answer(&self, id: u64, code: &str) -> bool {
        self.settle(id, Ok(code.to_owned()))
    }

    /// The user closed question `id` without a code: everything waiting on it fails with
    /// "cancelled". False when no such question is open.
    pub fn cancel(&self, id: u64) -> bool {
        self.settle(id, Err(PromptError::Cancelled))
    }

    /// The questions open now.
    pub fn pending(&self) -> Vec<Question> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.pending.values().map(|p| p.question.clone()).collect()
    }
}

impl MfaPrompt for WindowPrompt {
    fn ask<'a>(&'a self, request: &'a MfaRequest) -> PromptFuture<'a> {
        let (tx, rx) = oneshot::channel();
        let question = {
            let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            inner.next += 1;
            let id = inner.next;
            let pending = inner
                .pending
                .entry(request.serial.clone())
                .or_insert_with(|| Pending {
                    question: Question {
                        id,
                        serial: request.serial.clone(),
                        owner: request.owner.clone(),
                        waiting: Vec::new(),
                        retry: request.retry,
                        message: request.message(),
                    },
                    answers: Vec::new(),
                });
            if !pending.question.waiting.contains(&request.profile) {
                pending.question.waiting.push(request.profile.clone());
            }
            if request.retry.is_some() {
                pending.question.retry = request.retry;
                pending.question.message = request.message();
            }
            pending.answers.push(tx);
            pending.question.clone()
        };
        let _ = self.events.send(PromptEvent::Asking(question));
        Box::pin(async move { rx.await.unwrap_or(Err(PromptError::Cancelled)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(profile: &str, serial: &str) -> MfaRequest {
        MfaRequest {
            serial: serial.into(),
            profile: profile.into(),
            owner: Some("me".into()),
            retry: None,
        }
    }

    #[tokio::test]
    async fn one_question_per_device_naming_everyone_who_waits() {
        let (prompt, mut events) = WindowPrompt::new();
        let (dev, ops) = (request("dev", "mfa/me"), request("ops", "mfa/me"));
        let first = prompt.ask(&dev);
        let second = prompt.ask(&ops);
        let Some(PromptEvent::Asking(asked)) = events.recv().await else {
            panic!("asked");
        };
        let Some(PromptEvent::Asking(joined)) = events.recv().await else {
            panic!("asked again");
        };
        assert_eq!(asked.id, joined.id, "one dialog");
        assert_eq!(joined.waiting, ["dev", "ops"]);
        assert_eq!(prompt.pending(), vec![joined.clone()]);
        assert!(prompt.answer(joined.id, "123456"));
        assert_eq!(first.await, Ok("123456".into()));
        assert_eq!(second.await, Ok("123456".into()));
        assert_eq!(
            events.recv().await,
            Some(PromptEvent::Settled { id: joined.id })
        );
        assert!(prompt.pending().is_empty());
        assert!(!prompt.answer(joined.id, "123456"), "answered once");

        // Another device is another question; cancelling fails its waiters.
        let other = request("prod", "mfa/token");
        let third = prompt.ask(&other);
        let Some(PromptEvent::Asking(q)) = events.recv().await else {
            panic!("asked");
        };
        assert_ne!(q.id, joined.id);
        assert!(prompt.cancel(q.id));
        assert_eq!(third.await, Err(PromptError::Cancelled));
    }
}
