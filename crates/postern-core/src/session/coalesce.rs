//! Output coalescing for front ends that pay per event (a webview: one IPC message each).
//!
//! A busy shell sends a websocket frame per write of the remote program: a thousand a second
//! when it prints a log. [`coalesce`] passes the first output after a quiet spell on at once (a
//! keystroke's echo is never delayed), then holds what follows for the rest of a short window
//! and passes it on as one event, or sooner once it reaches a size bound. Anything else (a
//! reconnect, the end) first lets out what is held, so the order never changes. A busy shell is
//! then tens of events a second, and an idle one exactly what it was.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::SessionEvent;

/// How output is coalesced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Coalescing {
    /// How long output after the first is held (a display frame is about 16 ms).
    pub window: Duration,
    /// Held output is let out once it is this big.
    pub max_bytes: usize,
}

impl Default for Coalescing {
    fn default() -> Self {
        Self {
            window: Duration::from_millis(16),
            max_bytes: 256 * 1024,
        }
    }
}

/// The events of `events`, with output coalesced as [`Coalescing`] says. Dropping the returned
/// receiver drops `events` too (and so closes the session, as dropping its events does).
pub fn coalesce(
    mut events: mpsc::Receiver<SessionEvent>,
    how: Coalescing,
) -> mpsc::Receiver<SessionEvent> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut held: Vec<u8> = Vec::new();
        // Until when output is held rather than passed on at once.
        let mut window_ends: Option<Instant> = None;
        loop {
            let flush_at = window_ends.filter(|_| !held.is_empty());
            let flush = async {
                match flush_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                // Nobody listens any more: drop the session's events (which closes it).
                () = tx.closed() => return,
                () = flush => {
                    if tx.send(SessionEvent::Output(std::mem::take(&mut held))).await.is_err() {
                        return;
                    }
                    window_ends = Some(Instant::now() + how.window);
                }
                event = events.recv() => match event {
                    Some(SessionEvent::Output(bytes)) => {
                        let now = Instant::now();
                        if window_ends.is_some_and(|end| now < end) {
                            held.extend_from_slice(&bytes);
                            if held.len() >= how.max_bytes {
                                let out = std::mem::take(&mut held);
                                if tx.send(SessionEvent::Output(out)).await.is_err() {
                                    return;
                                }
                                window_ends = Some(Instant::now() + how.window);
                            }
                        } else {
                            // After a quiet spell: at once.
                            if tx.send(SessionEvent::Output(bytes)).await.is_err() {
                                return;
                            }
                            window_ends = Some(now + how.window);
                        }
                    }
                    other => {
                        if !held.is_empty()
                            && tx.send(SessionEvent::Output(std::mem::take(&mut held))).await.is_err()
                        {
                            return;
                        }
                        let Some(event) = other else { return };
                        let ended = matches!(event, SessionEvent::Ended(_));
                        if tx.send(event).await.is_err() || ended {
                            return;
                        }
                    }
                },
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::mpsc;
    use tokio::time::Instant;

    use super::{Coalescing, coalesce};
    use crate::session::{LinkLost, SessionEnd, SessionEvent};

    fn output(text: &str) -> SessionEvent {
        SessionEvent::Output(text.as_bytes().to_vec())
    }

    async fn all(mut rx: mpsc::Receiver<SessionEvent>) -> Vec<(Duration, SessionEvent)> {
        let start = Instant::now();
        let mut seen = Vec::new();
        while let Some(event) = rx.recv().await {
            seen.push((start.elapsed(), event));
        }
        seen
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_shell_is_tens_of_events_a_second_with_every_byte_in_order() {
        let (tx, rx) = mpsc::channel(1024);
        let out = coalesce(rx, Coalescing::default());
        tokio::spawn(async move {
            for i in 0..1000 {
                let _ = tx.send(output(&format!("line {i}\n"))).await;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let _ = tx.send(SessionEvent::Ended(SessionEnd::ClosedByUser)).await;
        });
        let seen = all(out).await;
        let outputs: Vec<&[u8]> = seen
            .iter()
            .filter_map(|(_, e)| match e {
                SessionEvent::Output(bytes) => Some(bytes.as_slice()),
                _ => None,
            })
            .collect();
        let expected: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        assert_eq!(outputs.concat(), expected.as_bytes());
        // About one second of output: one event per 16 ms window, not a thousand.
        assert!(
            (55..=70).contains(&outputs.len()),
            "{} output events",
            outputs.len()
        );
        assert!(matches!(
            seen.last(),
            Some((_, SessionEvent::Ended(SessionEnd::ClosedByUser)))
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn output_after_a_quiet_spell_is_not_delayed() {
        let (tx, rx) = mpsc::channel(16);
        let mut out = coalesce(rx, Coalescing::default());
        for echo in ["a", "b", "c"] {
            let typed = Instant::now();
            tx.send(output(echo)).await.expect("open");
            assert_eq!(out.recv().await, Some(output(echo)));
            assert_eq!(typed.elapsed(), Duration::ZERO, "{echo} was held");
            // Typing speed: a keystroke every 100 ms, each echoed at once.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn held_output_goes_before_any_other_event() {
        let (tx, rx) = mpsc::channel(16);
        let out = coalesce(rx, Coalescing::default());
        for event in [
            output("first "),
            output("held "),
            output("also held"),
            SessionEvent::Reconnecting(LinkLost::Ended),
            output("after"),
            SessionEvent::Ended(SessionEnd::Closed { reason: None }),
        ] {
            tx.send(event).await.expect("open");
        }
        let seen: Vec<SessionEvent> = all(out).await.into_iter().map(|(_, e)| e).collect();
        assert_eq!(
            seen,
            [
                output("first "),
                output("held also held"),
                SessionEvent::Reconnecting(LinkLost::Ended),
                output("after"),
                SessionEvent::Ended(SessionEnd::Closed { reason: None }),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn held_output_is_let_out_at_the_size_bound_or_the_window_end() {
        let (tx, rx) = mpsc::channel(16);
        let how = Coalescing {
            window: Duration::from_millis(16),
            max_bytes: 10,
        };
        let mut out = coalesce(rx, how);
        let start = Instant::now();
        tx.send(output("0")).await.expect("open");
        assert_eq!(out.recv().await, Some(output("0")));
        tx.send(output("12345")).await.expect("open");
        tx.send(output("67890")).await.expect("open");
        // Ten bytes held: out at once, before the window ends.
        assert_eq!(out.recv().await, Some(output("1234567890")));
        assert_eq!(start.elapsed(), Duration::ZERO);
        tx.send(output("x")).await.expect("open");
        assert_eq!(out.recv().await, Some(output("x")));
        assert_eq!(start.elapsed(), Duration::from_millis(16));
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_coalesced_events_drops_the_sessions() {
        let (tx, rx) = mpsc::channel(16);
        let out = coalesce(rx, Coalescing::default());
        tx.send(output("x")).await.expect("open");
        drop(out);
        tokio::time::timeout(Duration::from_secs(1), tx.closed())
            .await
            .expect("the session's events are dropped too");
    }
}
