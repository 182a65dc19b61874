//! Live sessions and tunnels, owned by core so that a front end holds none: a window that
//! reloads (or a second view of it) finds its terminals and tunnels still running, and a
//! terminal it reattaches gets the output it missed, up to [`SCROLLBACK`] bytes.
//!
//! A session is adopted once it is open: a task then reads its events (output coalesced, see
//! [`crate::session::coalesce`]), keeps its state (connecting, live, resuming, ended with the
//! reason) and its recent output, and passes every event on to whoever listens now. Nobody
//! listening is no problem: output is kept, the session goes on.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::Serialize;
use tokio::sync::{broadcast, mpsc, watch};

use crate::credentials::unix_now;
use crate::session::coalesce::{Coalescing, coalesce};
use crate::session::{Session, SessionEnd, SessionEvent, SessionId, SessionWriter};
use crate::tunnel::{Tunnel, TunnelEvent};

/// How much recent output of each session is kept for a terminal that reattaches.
pub const SCROLLBACK: usize = 512 * 1024;

/// How long a listener may take nothing before it is let go (its stream ends).
const LISTENER_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// Where a session of the registry stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// Opened; nothing heard from the agent yet.
    Connecting,
    /// Working.
    Live,
    /// The connection dropped; being resumed (input waits).
    Resuming,
    /// Over (see its end).
    Ended,
}

/// What a front end says about a session it hands over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct About {
    /// The instance.
    pub target: String,
    /// The profile it was opened with (`None`: the environment's credentials).
    pub profile: Option<String>,
    /// The region.
    pub region: String,
    /// What it is, in a word (`shell`, `command`).
    pub kind: String,
}

/// A session of the registry, as a front end lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    /// The session id.
    pub id: SessionId,
    /// What it is.
    #[serde(flatten)]
    pub about: About,
    /// Where it stands.
    pub state: SessionState,
    /// How it ended, once it has.
    pub end: Option<SessionEnd>,
    /// When it was adopted (Unix seconds).
    pub started: u64,
}

struct LiveSession {
    info: SessionInfo,
    writer: SessionWriter,
    listener: Option<mpsc::Sender<SessionEvent>>,
    recent: VecDeque<u8>,
    ended: watch::Sender<Option<SessionEnd>>,
}

/// A tunnel's number in the registry (tunnels have no id of their own).
pub type TunnelId = u64;

/// What a front end says about a tunnel it hands over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TunnelAbout {
    /// The instance its sessions run on.
    pub target: String,
    /// The remote port.
    pub remote_port: u16,
    /// The host reached through the instance, if not the instance.
    pub host: Option<String>,
    /// The profile it was opened with.
    pub profile: Option<String>,
    /// The region.
    pub region: String,
}

/// A tunnel of the registry, as a front end lists it. Counters are below 2^53, so a
/// JavaScript number holds them exactly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TunnelInfo {
    /// Its number.
    pub id: TunnelId,
    /// What it is.
    #[serde(flatten)]
    pub about: TunnelAbout,
    /// The local address clients connect to.
    pub local: String,
    /// Connections accepted so far.
    pub connections: u64,
    /// Connections open now.
    pub open: u64,
    /// Bytes from local clients.
    pub bytes_up: u64,
    /// Bytes to local clients.
    pub bytes_down: u64,
    /// Sessions started (the pool and replacements).
    pub sessions: u64,
    /// When it was adopted (Unix seconds).
    pub started: u64,
}

struct LiveTunnel {
    about: TunnelAbout,
    tunnel: Tunnel,
    started: u64,
}

#[derive(Default)]
struct Inner {
    sessions: BTreeMap<SessionId, LiveSession>,
    tunnels: BTreeMap<TunnelId, LiveTunnel>,
    next_tunnel: TunnelId,
}

/// The live sessions and tunnels of this process; clones share them.
#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("Registry")
            .field("sessions", &inner.sessions.len())
            .field("tunnels", &inner.tunnels.len())
            .finish()
    }
}

/// What closing everything ended, for a front end to say on quit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Closed {
    /// Sessions ended.
    pub sessions: usize,
    /// Tunnels closed.
    pub tunnels: usize,
    /// Of those, sessions AWS did not confirm ended (they end after the idle timeout).
    pub unconfirmed: usize,
}

/// Counters as JavaScript numbers hold them (2^53 − 1 at most).
fn js_number(n: u64) -> u64 {
    n.min((1 << 53) - 1)
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every change completes under the lock; a poisoned one still guards a consistent map.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Take over an open session: from now on the registry keeps it (its state, its recent
    /// output) until it is closed and forgotten.
    pub fn adopt(&self, session: Session, about: About) -> SessionId {
        let (events, writer, id) = session.split();
        let (ended, _) = watch::channel(None);
        let info = SessionInfo {
            id: id.clone(),
            about,
            state: SessionState::Connecting,
            end: None,
            started: unix_now(),
        };
        self.lock().sessions.insert(
            id.clone(),
            LiveSession {
                info,
                writer,
                listener: None,
                recent: VecDeque::new(),
                ended,
            },
        );
        let registry = self.clone();
        let pumped = id.clone();
        tokio::spawn(async move {
            let mut events = coalesce(events, Coalescing::default());
            loop {
                let event = events.recv().await;
                let done = matches!(event, None | Some(SessionEvent::Ended(_)));
                let event = event.unwrap_or(SessionEvent::Ended(SessionEnd::Failed(
                    crate::session::SessionFailure::DriverStopped,
                )));
                let listener = registry.note(&pumped, &event);
                // A listener that takes nothing for a while (a window that went away without
                // saying so) is let go, so it cannot hold the session up; the output keeps
                // being kept for the next one.
                if let Some(listener) = listener
                    && listener
                        .send_timeout(event, LISTENER_PATIENCE)
                        .await
                        .is_err()
                {
                    registry.unlisten_if(&pumped, &listener);
                }
                if done {
                    return;
                }
            }
        });
        id
    }

    /// Record an event of session `id`; who to pass it on to.
    fn note(&self, id: &SessionId, event: &SessionEvent) -> Option<mpsc::Sender<SessionEvent>> {
        let mut inner = self.lock();
        let live = inner.sessions.get_mut(id)?;
        let ended = matches!(event, SessionEvent::Ended(_));
        let state = &mut live.info.state;
        match event {
            SessionEvent::Output(bytes) | SessionEvent::StdErr(bytes) => {
                if *state == SessionState::Connecting {
                    *state = SessionState::Live;
                }
                live.recent.extend(bytes);
                let excess = live.recent.len().saturating_sub(SCROLLBACK);
                live.recent.drain(..excess);
            }
            SessionEvent::Started(_) | SessionEvent::Message(_) => {
                if *state == SessionState::Connecting {
                    *state = SessionState::Live;
                }
            }
            SessionEvent::Reconnecting(_) => *state = SessionState::Resuming,
            SessionEvent::Reconnected => *state = SessionState::Live,
            SessionEvent::Ended(end) => {
                *state = SessionState::Ended;
                live.info.end = Some(end.clone());
                live.ended.send_replace(Some(end.clone()));
            }
            SessionEvent::ExitCode(_) | SessionEvent::Flag(_) => {}
        }
        if ended {
            // The end is the last event: the listener's stream ends after it.
            live.listener.take()
        } else {
            live.listener.clone()
        }
    }

    fn unlisten_if(&self, id: &SessionId, gone: &mpsc::Sender<SessionEvent>) {
        if let Some(live) = self.lock().sessions.get_mut(id)
            && live.listener.as_ref().is_some_and(|l| l.same_channel(gone))
        {
            live.listener = None;
        }
    }

    /// Listen to session `id` from now on (a terminal attaching, or reattaching after a
    /// reload): the output kept so far, and the events that follow. A listener already there is
    /// replaced (its stream ends). `None`: no such session.
    pub fn listen(&self, id: &SessionId) -> Option<(Vec<u8>, mpsc::Receiver<SessionEvent>)> {
        let mut inner = self.lock();
        let live = inner.sessions.get_mut(id)?;
        let (tx, rx) = mpsc::channel(64);
        if let Some(end) = &live.info.end {
            // Over already: the stream says so at once, and ends.
            let _ = tx.try_send(SessionEvent::Ended(end.clone()));
        } else {
            live.listener = Some(tx);
        }
        Some((live.recent.iter().copied().collect(), rx))
    }

    /// The output of session `id` kept so far, without listening.
    pub fn recent(&self, id: &SessionId) -> Option<Vec<u8>> {
        let inner = self.lock();
        Some(inner.sessions.get(id)?.recent.iter().copied().collect())
    }

    /// The writer of session `id` (input, resize, close).
    pub fn writer(&self, id: &SessionId) -> Option<SessionWriter> {
        self.lock().sessions.get(id).map(|l| l.writer.clone())
    }

    /// Session `id` as a front end lists it.
    pub fn info(&self, id: &SessionId) -> Option<SessionInfo> {
        self.lock().sessions.get(id).map(|l| l.info.clone())
    }

    /// Every session, oldest first.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        let mut all: Vec<SessionInfo> = self
            .lock()
            .sessions
            .values()
            .map(|l| l.info.clone())
            .collect();
        all.sort_by(|a, b| a.started.cmp(&b.started).then(a.id.cmp(&b.id)));
        all
    }

    /// Close session `id` and wait until it is over (at most a little more than
    /// [`crate::session::CLOSE_LIMIT`]); how it ended. It stays listed, ended, until forgotten.
    pub async fn close(&self, id: &SessionId) -> Option<SessionEnd> {
        let (writer, mut ended) = {
            let inner = self.lock();
            let live = inner.sessions.get(id)?;
            (live.writer.clone(), live.ended.subscribe())
        };
        writer.close().await;
        let limit = crate::session::CLOSE_LIMIT + std::time::Duration::from_secs(1);
        tokio::time::timeout(limit, ended.wait_for(Option::is_some))
            .await
            .ok()?
            .ok()?
            .clone()
    }

    /// Drop an ended session from the list (a live one is closed first, without waiting).
    pub async fn forget(&self, id: &SessionId) {
        let removed = self.lock().sessions.remove(id);
        if let Some(live) = removed
            && live.info.end.is_none()
        {
            live.writer.close().await;
        }
    }

    /// Take over an open tunnel.
    pub fn adopt_tunnel(&self, tunnel: Tunnel, about: TunnelAbout) -> TunnelId {
        let mut inner = self.lock();
        inner.next_tunnel += 1;
        let id = inner.next_tunnel;
        inner.tunnels.insert(
            id,
            LiveTunnel {
                about,
                tunnel,
                started: unix_now(),
            },
        );
        id
    }

    /// What happens in tunnel `id` from now on.
    pub fn tunnel_events(&self, id: TunnelId) -> Option<broadcast::Receiver<TunnelEvent>> {
        self.lock().tunnels.get(&id).map(|t| t.tunnel.subscribe())
    }

    /// Every tunnel with its counters now, oldest first.
    pub fn tunnels(&self) -> Vec<TunnelInfo> {
        use std::sync::atomic::Ordering::Relaxed;
        self.lock()
            .tunnels
            .iter()
            .map(|(id, live)| {
                let stats = live.tunnel.stats();
                TunnelInfo {
                    id: *id,
                    about: live.about.clone(),
                    local: live.tunnel.local_addr().to_string(),
                    connections: js_number(stats.connections.load(Relaxed)),
                    open: js_number(stats.open.load(Relaxed) as u64),
                    bytes_up: js_number(stats.bytes_up.load(Relaxed)),
                    bytes_down: js_number(stats.bytes_down.load(Relaxed)),
                    sessions: js_number(stats.sessions.load(Relaxed)),
                    started: live.started,
                }
            })
            .collect()
    }

    /// Close tunnel `id` and its sessions; how many sessions AWS did not confirm ended.
    pub async fn close_tunnel(&self, id: TunnelId) -> Option<usize> {
        let live = self.lock().tunnels.remove(&id)?;
        Some(live.tunnel.close().await)
    }

    /// Close everything (the app quits): every session and tunnel, side by side.
    pub async fn close_all(&self) -> Closed {
        let ids: Vec<SessionId> = self
            .lock()
            .sessions
            .iter()
            .filter(|(_, l)| l.info.end.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        let tunnels: Vec<LiveTunnel> = std::mem::take(&mut self.lock().tunnels)
            .into_values()
            .collect();
        let sessions = futures_util::future::join_all(ids.iter().map(|id| self.close(id)));
        let tunnel_closes =
            futures_util::future::join_all(tunnels.into_iter().map(|t| t.tunnel.close()));
        let (ends, unconfirmed_tunnels) = tokio::join!(sessions, tunnel_closes);
        let unconfirmed_sessions = ends
            .iter()
            // A session that ended by itself meanwhile is not unconfirmed: only a close that
            // got no answer in time, or that AWS did not confirm, is.
            .filter(|end| {
                matches!(
                    end,
                    None | Some(SessionEnd::Failed(
                        crate::session::SessionFailure::NotConfirmed { .. }
                    ))
                )
            })
            .count();
        Closed {
            sessions: ends.len(),
            tunnels: unconfirmed_tunnels.len(),
            unconfirmed: unconfirmed_sessions + unconfirmed_tunnels.iter().sum::<usize>(),
        }
    }
}
