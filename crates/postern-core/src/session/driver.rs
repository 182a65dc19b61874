//! The task behind one session: websocket ⇄ [`postern_ssm::channel::Channel`] ⇄ the handle.
//!
//! Every wake-up (a websocket message, a command, a deadline) feeds the channel, then drains its
//! frames into the websocket and its events to the handle. A socket that errors, closes, refuses
//! a write or goes silent (no frame and no pong for `silence_timeout`) is "down": the driver
//! calls ResumeSession and dials again, with backoff, until `resume_deadline` after it went down
//! (a new socket counts only once something is heard on it); the channel keeps all its state, and
//! input keeps being sequenced meanwhile (up to the window, then the handle waits). A session
//! that cannot be resumed ends with the reason. Resizes and the order to close come on their own
//! queue, so they never wait behind held-back input or a reconnect.

use std::collections::VecDeque;
use std::future::Future;
use std::time::{Duration, SystemTime};

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use postern_ssm::channel::{Channel, ChannelEvent, SendError, SessionKind};
use postern_ssm::payload::Flag;
use rand::Rng;
use tokio::sync::mpsc;
// The driver's clock is tokio's, so tests can pause and advance it; the sans-IO channel is
// handed the same instants as `std` ones.
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message};

use super::socket::{self, DialError};
use super::{
    Command, Control, LinkLost, SessionEnd, SessionError, SessionEvent, SessionFailure, SessionId,
    SessionOptions, SsmAccess,
};
use crate::history::journal::Journal;
use crate::sensitive::Secret;

/// What the driver needs from outside: the data channel's socket, and the two calls of the SSM
/// API it makes. [`AwsLink`] is Session Manager; core's tests give a fake one.
pub(crate) trait Link: Send + Sync + 'static {
    /// The websocket.
    type Socket: Stream<Item = Result<Message, tungstenite::Error>>
        + Sink<Message, Error = tungstenite::Error>
        + Unpin
        + Send
        + 'static;

    /// Open the data channel at `url` and send OpenDataChannel with `token`.
    fn dial(
        &self,
        url: &str,
        token: &str,
        client_id: &str,
        client_version: &str,
    ) -> impl Future<Output = Result<Self::Socket, DialError>> + Send;

    /// ResumeSession: a fresh token, and a fresh stream URL if the service gives one.
    fn resume(
        &self,
        session: &SessionId,
        target: &str,
    ) -> impl Future<Output = Result<(Secret, Option<String>), ResumeError>> + Send;

    /// TerminateSession; the error says why it did not happen.
    fn terminate(
        &self,
        session: &SessionId,
        target: &str,
    ) -> impl Future<Output = Result<(), String>> + Send;
}

/// Session Manager, through the SSM API and a signed websocket.
pub(crate) struct AwsLink(pub(crate) SsmAccess);

impl Link for AwsLink {
    type Socket = socket::Socket;

    async fn dial(
        &self,
        url: &str,
        token: &str,
        client_id: &str,
        client_version: &str,
    ) -> Result<Self::Socket, DialError> {
        socket::dial(&self.0, url, token, client_id, client_version).await
    }

    async fn resume(
        &self,
        session: &SessionId,
        target: &str,
    ) -> Result<(Secret, Option<String>), ResumeError> {
        let answer = self
            .0
            .client
            .resume_session()
            .session_id(session.as_str())
            .send()
            .await;
        match answer {
            Err(error) => match SessionError::from_sdk("ResumeSession", target, &error) {
                SessionError::Network(why) => Err(Retry(why)),
                other => Err(Fatal(SessionFailure::ResumeRefused {
                    detail: other.to_string(),
                })),
            },
            Ok(out) => {
                let Some(token) = out.token_value().filter(|t| !t.is_empty()) else {
                    return Err(Fatal(SessionFailure::ResumeRefused {
                        detail: "the session has ended (ResumeSession returned no token)".into(),
                    }));
                };
                let url = out
                    .stream_url()
                    .filter(|u| !u.is_empty())
                    .map(str::to_owned);
                Ok((Secret::new(token), url))
            }
        }
    }

    async fn terminate(&self, session: &SessionId, target: &str) -> Result<(), String> {
        let answer = self
            .0
            .client
            .terminate_session()
            .session_id(session.as_str())
            .send()
            .await;
        answer.map(|_| ()).map_err(|error| {
            let error = SessionError::from_sdk("TerminateSession", target, &error);
            format!("TerminateSession failed: {error}")
        })
    }
}

/// How long closing a session may take in all: sending the input already queued, the
/// TerminateSession flag and the TerminateSession call.
pub const CLOSE_LIMIT: Duration = Duration::from_secs(3);

/// How much of [`CLOSE_LIMIT`] may go to input queued before the close.
const CLOSE_DRAIN_LIMIT: Duration = Duration::from_millis(1500);

/// The state of one session's task.
pub(crate) struct Driver<L: Link> {
    link: L,
    journal: Option<Journal>,
    session_id: SessionId,
    target: String,
    stream_url: String,
    first_token: Option<Secret>,
    client_id: String,
    options: SessionOptions,
    channel: Channel,
    socket: Option<L::Socket>,
    commands: mpsc::Receiver<Command>,
    control: mpsc::Receiver<Control>,
    events: mpsc::Sender<SessionEvent>,
    /// Input and flags waiting for room in the send window, in order.
    pending_input: VecDeque<Pending>,
    last_heard: Instant,
    next_ping: Instant,
    down_reason: Option<LinkLost>,
    /// When the socket went down, until something is heard on a new one.
    down_since: Option<Instant>,
    last_report: Instant,
    /// The handle asked to close while the driver was busy writing.
    close_requested: bool,
    /// Whether TerminateSession was called (and how it went).
    terminated: Option<Result<(), String>>,
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl<L: Link> Driver<L> {
    /// A driver for a started session; `run` it in a task.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        link: L,
        journal: Option<Journal>,
        session_id: SessionId,
        target: String,
        stream_url: String,
        token: Secret,
        options: SessionOptions,
        commands: mpsc::Receiver<Command>,
        control: mpsc::Receiver<Control>,
        events: mpsc::Sender<SessionEvent>,
    ) -> Self {
        let now = Instant::now();
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::from_os_rng();
        let channel = Channel::new(
            options.channel.clone(),
            now.into_std(),
            wall_ms(),
            move || rng.random(),
        );
        Self {
            link,
            journal,
            session_id,
            target,
            stream_url,
            first_token: Some(token),
            client_id: uuid::Uuid::new_v4().to_string(),
            options,
            channel,
            socket: None,
            commands,
            control,
            events,
            pending_input: VecDeque::new(),
            last_heard: now,
            next_ping: now,
            down_reason: None,
            down_since: None,
            last_report: now,
            close_requested: false,
            terminated: None,
        }
    }

    /// Run until the session ends. A session that failed is terminated on the service too, so
    /// nothing is left Active however it ended. The end is reported before the socket is closed
    /// (a wedged socket must not delay it).
    pub(crate) async fn run(mut self) {
        let mut end = self.drive().await;
        if matches!(end, SessionEnd::Failed(_)) && self.terminated.is_none() {
            let _ = self.terminate(Instant::now() + CLOSE_LIMIT).await;
        }
        if let (SessionEnd::ClosedByUser, Some(Err(why))) = (&end, &self.terminated) {
            end = SessionEnd::Failed(SessionFailure::NotConfirmed {
                detail: why.clone(),
            });
        }
        if let Some(journal) = &self.journal {
            journal.ended(self.session_id.as_str(), &end).await;
        }
        let _ = self.events.send(SessionEvent::Ended(end)).await;
        if let Some(socket) = self.socket.as_mut() {
            let _ = tokio::time::timeout(Duration::from_secs(1), SinkExt::close(socket)).await;
        }
    }

    async fn drive(&mut self) -> SessionEnd {
        loop {
            if self.close_requested {
                return self.close_by_user().await;
            }
            if self.socket.is_none()
                && let Err(end) = self.connect().await
            {
                return end;
            }
            let deadline = [
                self.channel.poll_timeout().map(Instant::from_std),
                Some(self.next_ping),
                Some(self.last_heard + self.options.silence_timeout),
                self.down_since
                    .map(|since| since + self.options.resume_deadline),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
            let accept_commands = self.pending_input.is_empty();
            let Some(socket) = self.socket.as_mut() else {
                continue;
            };
            tokio::select! {
                message = socket.next() => match message {
                    Some(Ok(Message::Binary(bytes))) => {
                        self.heard();
                        self.channel.handle_frame(Instant::now().into_std(), &bytes);
                    }
                    Some(Ok(Message::Text(text))) => {
                        self.heard();
                        self.channel.handle_frame(Instant::now().into_std(), text.as_bytes());
                    }
                    Some(Ok(Message::Close(frame))) => {
                        let reason = frame.map(|f| f.reason.to_string()).filter(|r| !r.is_empty());
                        self.socket_down(LinkLost::ClosedByService { reason });
                    }
                    Some(Ok(_)) => self.heard(),
                    Some(Err(error)) => self.socket_down(LinkLost::Failed { detail: error.to_string() }),
                    None => self.socket_down(LinkLost::Ended),
                },
                control = self.control.recv() => match control {
                    Some(Control::Close) | None => return self.close_by_user().await,
                    Some(Control::Resize { cols, rows }) => {
                        let _ = self.channel.resize(cols, rows);
                    }
                },
                command = self.commands.recv(), if accept_commands => match command {
                    Some(command) => {
                        // A resize or close the handle gave before this input is on the other
                        // queue already: take it first, so the agent sees the terminal's size
                        // before the keys typed after it.
                        let close = self.take_control();
                        self.command(command);
                        if close {
                            return self.close_by_user().await;
                        }
                    }
                    None => return self.close_by_user().await,
                },
                () = tokio::time::sleep_until(deadline) => {}
            }
            if let Some(end) = self.step().await {
                return end;
            }
        }
    }

    /// Everything after a wake-up: timers, input, frames out, events out.
    async fn step(&mut self) -> Option<SessionEnd> {
        let now = Instant::now();
        if now.saturating_duration_since(self.last_report) > Duration::from_secs(1) {
            self.last_report = now;
            tracing::debug!(
                session = %self.session_id,
                in_flight = self.channel.in_flight(),
                pending_input = self.pending_input.len(),
                dropped = self.channel.dropped(),
                events_room = self.events.capacity(),
                "driver: state"
            );
        }
        self.channel.handle_timeout(now.into_std());
        if let Some(since) = self.down_since
            && now >= since + self.options.resume_deadline
        {
            // A new socket connected but nothing came through it in time.
            return Some(SessionEnd::Failed(SessionFailure::SilentAfterResume {
                seconds: self.options.resume_deadline.as_secs(),
            }));
        }
        if self.socket.is_some()
            && now.saturating_duration_since(self.last_heard) >= self.options.silence_timeout
        {
            self.socket_down(LinkLost::Silent {
                seconds: self.options.silence_timeout.as_secs(),
            });
        }
        if now >= self.next_ping {
            self.next_ping = now + self.options.ping_interval;
            if let Some(socket) = self.socket.as_mut() {
                let ping = tokio::time::timeout(
                    self.options.silence_timeout,
                    socket.send(Message::Ping(b"keepalive".to_vec().into())),
                );
                let mut resizes = Vec::new();
                let sent = unless_closed(
                    &mut self.control,
                    &mut self.close_requested,
                    &mut resizes,
                    ping,
                )
                .await;
                self.resize_all(resizes);
                if matches!(sent, Some(Err(_) | Ok(Err(_)))) {
                    self.socket_down(LinkLost::PingRefused);
                }
            }
        }
        self.feed_input();
        self.transmit().await;
        self.deliver_events().await
    }

    fn resize_all(&mut self, resizes: Vec<(u32, u32)>) {
        for (cols, rows) in resizes {
            let _ = self.channel.resize(cols, rows);
        }
    }

    /// Something arrived on the socket: it is alive, and a reconnect is complete.
    fn heard(&mut self) {
        self.last_heard = Instant::now();
        self.down_since = None;
    }

    fn socket_down(&mut self, reason: LinkLost) {
        if self.socket.take().is_some() {
            tracing::info!(session = %self.session_id, %reason, "data channel down");
            self.down_reason = Some(reason);
            self.down_since.get_or_insert_with(Instant::now);
        }
    }

    fn feed_input(&mut self) {
        while let Some(front) = self.pending_input.front_mut() {
            let front = match front {
                Pending::Flag(flag) => match self.channel.send_flag(*flag) {
                    Ok(()) => {
                        self.pending_input.pop_front();
                        continue;
                    }
                    Err(SendError::WindowFull | SendError::NotReady) => break,
                    Err(_) => {
                        self.pending_input.pop_front();
                        continue;
                    }
                },
                Pending::Bytes(bytes) => bytes,
            };
            match self.channel.send_output(front) {
                Ok(taken) if taken == front.len() => {
                    self.pending_input.pop_front();
                }
                Ok(taken) => {
                    front.drain(..taken);
                    break;
                }
                Err(SendError::WindowFull | SendError::NotReady) => break,
                Err(SendError::Empty) => {
                    self.pending_input.pop_front();
                }
                Err(SendError::Closed) => {
                    self.pending_input.clear();
                    break;
                }
            }
        }
    }

    /// Write what the channel has for the socket now. A close asked for meanwhile cuts a write
    /// that is stuck (the socket stopped taking bytes) short.
    async fn transmit(&mut self) {
        let Some(socket) = self.socket.as_mut() else {
            // The socket is down: stream messages wait in the channel (for their pacing slot, or
            // unacknowledged) and go after the reconnect; acknowledgements are re-sent when the
            // agent retransmits. Nothing is taken now, so a message's CreatedDate and its
            // retransmission timer start when it is really written.
            return;
        };
        let now = Instant::now();
        let mut frames = Vec::new();
        while let Some(bytes) = self.channel.poll_transmit(now.into_std()) {
            frames.push(bytes);
        }
        if frames.is_empty() {
            return;
        }
        let write = tokio::time::timeout(self.options.silence_timeout, async {
            for bytes in frames {
                socket.feed(Message::Binary(bytes.into())).await?;
            }
            socket.flush().await
        });
        let mut resizes = Vec::new();
        let written = unless_closed(
            &mut self.control,
            &mut self.close_requested,
            &mut resizes,
            write,
        )
        .await;
        self.resize_all(resizes);
        match written {
            Some(Ok(Ok(()))) | None => {}
            Some(Ok(Err(error))) => {
                self.socket_down(LinkLost::WriteFailed {
                    detail: error.to_string(),
                });
            }
            Some(Err(_)) => self.socket_down(LinkLost::WriteStuck),
        }
    }

    async fn deliver_events(&mut self) -> Option<SessionEnd> {
        while let Some(event) = self.channel.poll_event() {
            let out = match event {
                ChannelEvent::SessionStarted(kind) => SessionEvent::Started(kind),
                ChannelEvent::HandshakeComplete { message } if message.is_empty() => continue,
                ChannelEvent::HandshakeComplete { message } => SessionEvent::Message(message),
                ChannelEvent::Output(bytes) => SessionEvent::Output(bytes),
                ChannelEvent::StdErr(bytes) => SessionEvent::StdErr(bytes),
                ChannelEvent::ExitCode(code) => SessionEvent::ExitCode(code),
                ChannelEvent::Flag(flag) => SessionEvent::Flag(flag),
                ChannelEvent::Paused | ChannelEvent::Resumed => continue,
                ChannelEvent::Closed(reason) => {
                    // Whatever the agent sent before closing was delivered above, in order.
                    // Any other reason than the agent's close is Postern giving up (spec §5.7):
                    // a failure, which `run` ends on the service too.
                    return Some(SessionEnd::from(reason));
                }
            };
            match self.events.try_send(out) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    // Nobody listens any more: end the session.
                    return Some(self.close_by_user().await);
                }
                Err(mpsc::error::TrySendError::Full(out)) => {
                    // The consumer holds back (a tunnel whose local client is slow). The socket
                    // is not read meanwhile, so that time is not silence: count from now.
                    if self.events.send(out).await.is_err() {
                        return Some(self.close_by_user().await);
                    }
                    let now = Instant::now();
                    self.last_heard = self.last_heard.max(now);
                    self.next_ping = now;
                }
            }
        }
        None
    }

    /// Apply the resizes waiting on the control queue; whether a close (or the end of the
    /// handle) was among them.
    fn take_control(&mut self) -> bool {
        loop {
            match self.control.try_recv() {
                Ok(Control::Resize { cols, rows }) => {
                    let _ = self.channel.resize(cols, rows);
                }
                Ok(Control::Close) | Err(mpsc::error::TryRecvError::Disconnected) => return true,
                Err(mpsc::error::TryRecvError::Empty) => return false,
            }
        }
    }

    fn command(&mut self, command: Command) {
        let pending = match command {
            Command::Input(bytes) => Pending::Bytes(bytes),
            // In order after the bytes before it, and kept until the window has room (a lost
            // DisconnectToPort would hand the next connection the old one's socket).
            Command::Flag(flag) => Pending::Flag(flag),
        };
        self.pending_input.push_back(pending);
        self.feed_input();
    }

    /// End the session at the user's request, within [`CLOSE_LIMIT`]: input already queued goes
    /// out first if the socket takes it within [`CLOSE_DRAIN_LIMIT`]; then the TerminateSession
    /// flag for port sessions (the agent ends them in-band), then the TerminateSession API
    /// (shells have no in-band way) with the rest of the time.
    async fn close_by_user(&mut self) -> SessionEnd {
        let deadline = Instant::now() + CLOSE_LIMIT;
        self.drain_input(Instant::now() + CLOSE_DRAIN_LIMIT).await;
        if matches!(self.channel.session_kind(), Some(SessionKind::Port { .. }))
            && self.channel.send_flag(Flag::TerminateSession).is_ok()
        {
            let flag_deadline = deadline.min(Instant::now() + Duration::from_millis(500));
            self.write_out(flag_deadline).await;
        }
        let _ = self.terminate(deadline).await;
        SessionEnd::ClosedByUser
    }

    /// Tell the service the session is over, so it does not linger as Connected; gives up at
    /// `deadline`. The outcome is kept for the end report.
    async fn terminate(&mut self, deadline: Instant) -> Result<(), String> {
        let call = self.link.terminate(&self.session_id, &self.target);
        let outcome = match tokio::time::timeout_at(deadline, call).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => {
                tracing::warn!(session = %self.session_id, %error, "TerminateSession failed");
                Err(error)
            }
            Err(_) => {
                tracing::warn!(session = %self.session_id, "TerminateSession timed out");
                Err("TerminateSession got no answer in time".into())
            }
        };
        self.terminated = Some(outcome.clone());
        outcome
    }

    /// Write everything the channel holds for the socket, paced messages included, until it is
    /// all written or `deadline` passes.
    async fn write_out(&mut self, deadline: Instant) {
        loop {
            if tokio::time::timeout_at(deadline, self.transmit())
                .await
                .is_err()
                || self.socket.is_none()
                || self.channel.waiting_for_pacing() == 0
                || Instant::now() >= deadline
            {
                return;
            }
            let wake = self
                .channel
                .poll_timeout()
                .map_or(deadline, |at| Instant::from_std(at).min(deadline));
            tokio::time::sleep_until(wake).await;
        }
    }

    /// Feed input the handle queued before closing into the channel and onto the socket, until
    /// it is all written or `deadline` passes (a paused agent or a dead socket does not hold the
    /// close up).
    async fn drain_input(&mut self, deadline: Instant) {
        loop {
            // Commands are taken only while nothing waits, so a flag keeps its place after the
            // bytes before it.
            while self.pending_input.is_empty() {
                match self.commands.try_recv() {
                    Ok(command) => self.command(command),
                    Err(_) => break,
                }
            }
            if tokio::time::timeout_at(deadline, self.transmit())
                .await
                .is_err()
            {
                return;
            }
            let written = self.pending_input.is_empty() && self.channel.waiting_for_pacing() == 0;
            if written || Instant::now() >= deadline {
                return;
            }
            let Some(socket) = self.socket.as_mut() else {
                return;
            };
            let wake = self
                .channel
                .poll_timeout()
                .map_or(deadline, |at| Instant::from_std(at).min(deadline));
            tokio::select! {
                message = socket.next() => match message {
                    Some(Ok(Message::Binary(bytes))) => {
                        self.channel.handle_frame(Instant::now().into_std(), &bytes);
                    }
                    Some(Ok(Message::Text(text))) => {
                        self.channel.handle_frame(Instant::now().into_std(), text.as_bytes());
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return,
                },
                () = tokio::time::sleep_until(wake) => {}
            }
            self.channel.handle_timeout(Instant::now().into_std());
            self.feed_input();
        }
    }

    /// Open the websocket: the first time with StartSession's token, afterwards through
    /// ResumeSession, retrying with backoff until `resume_deadline` after the socket went down.
    /// Every attempt is cut short at the deadline, and a close from the user ends the wait.
    async fn connect(&mut self) -> Result<(), SessionEnd> {
        let reconnecting = self.first_token.is_none();
        let down_since = *self.down_since.get_or_insert_with(Instant::now);
        let deadline = down_since + self.options.resume_deadline;
        let mut delay = Duration::from_millis(rand::rng().random_range(100..200));
        if let Some(reason) = self.down_reason.take() {
            // Informational: never let a slow consumer use up the resume deadline.
            let _ = self.events.try_send(SessionEvent::Reconnecting(reason));
        }
        let seconds = self.options.resume_deadline.as_secs();
        let given_up = |last: &str| {
            SessionEnd::Failed(SessionFailure::NotResumed {
                seconds,
                last: last.to_owned(),
            })
        };
        let mut last_error = String::from("no attempt finished in time");
        loop {
            let first_token = self.first_token.take();
            // Resizes while the attempt runs are remembered by the channel; a close ends it.
            let outcome = {
                let attempt = tokio::time::timeout_at(
                    deadline,
                    attempt(
                        &self.link,
                        &self.session_id,
                        &self.target,
                        &self.stream_url,
                        first_token,
                        &self.client_id,
                        &self.options.channel.client_version,
                    ),
                );
                tokio::pin!(attempt);
                loop {
                    tokio::select! {
                        outcome = &mut attempt => break Some(outcome),
                        control = self.control.recv() => match control {
                            Some(Control::Resize { cols, rows }) => {
                                let _ = self.channel.resize(cols, rows);
                            }
                            Some(Control::Close) | None => break None,
                        },
                    }
                }
            };
            let Some(outcome) = outcome else {
                let _ = self.terminate(Instant::now() + CLOSE_LIMIT).await;
                return Err(SessionEnd::ClosedByUser);
            };
            match outcome {
                Err(_) => return Err(given_up(&last_error)),
                Ok(Ok((socket, url))) => {
                    let now = Instant::now();
                    self.socket = Some(socket);
                    if let Some(url) = url {
                        self.stream_url = url;
                    }
                    self.last_heard = now;
                    self.next_ping = now;
                    if reconnecting {
                        self.channel.reconnected(now.into_std());
                        let _ = self.events.try_send(SessionEvent::Reconnected);
                    } else {
                        self.down_since = None;
                    }
                    return Ok(());
                }
                // Started on the service and never to be used: `run` ends it there too.
                Ok(Err(Fatal(failure))) => return Err(SessionEnd::Failed(failure)),
                Ok(Err(Retry(reason))) => last_error = reason,
            }
            // The last attempt may start right at the deadline (and be cut short there): the
            // session is given up at the deadline, never before it.
            let now = Instant::now();
            if now >= deadline {
                return Err(given_up(&last_error));
            }
            let pause = tokio::time::sleep(delay.min(deadline - now));
            tokio::pin!(pause);
            loop {
                tokio::select! {
                    () = &mut pause => break,
                    control = self.control.recv() => match control {
                        Some(Control::Resize { cols, rows }) => {
                            let _ = self.channel.resize(cols, rows);
                        }
                        Some(Control::Close) | None => {
                            let _ = self.terminate(Instant::now() + CLOSE_LIMIT).await;
                            return Err(SessionEnd::ClosedByUser);
                        }
                    },
                }
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
}

/// One try at a socket: ResumeSession for a fresh token (unless StartSession's is still unused),
/// then the dial. Returns the socket and the new stream URL, if ResumeSession gave one.
async fn attempt<L: Link>(
    link: &L,
    session_id: &SessionId,
    target: &str,
    stream_url: &str,
    first_token: Option<Secret>,
    client_id: &str,
    client_version: &str,
) -> Result<(L::Socket, Option<String>), ResumeError> {
    let first_open = first_token.is_some();
    let (token, new_url) = match first_token {
        Some(token) => (token, None),
        None => {
            match tokio::time::timeout(RESUME_CALL_LIMIT, link.resume(session_id, target)).await {
                Err(_) => return Err(Retry("ResumeSession timed out".into())),
                Ok(answer) => answer?,
            }
        }
    };
    let url = new_url.as_deref().unwrap_or(stream_url);
    match link
        .dial(url, token.expose_str(), client_id, client_version)
        .await
    {
        Ok(socket) => Ok((socket, new_url)),
        // The first open refused outright (a bad signature, a token not accepted): no network
        // drop to wait out. A refusal after ResumeSession may be a stale URL: try again.
        Err(DialError::Refused { status, reason }) if first_open => {
            Err(Fatal(SessionFailure::ChannelRefused { status, reason }))
        }
        Err(error) => Err(Retry(error.to_string())),
    }
}

/// How long one ResumeSession call may take.
const RESUME_CALL_LIMIT: Duration = Duration::from_secs(10);

/// Await `work` (a write to the socket) unless the handle asks to close first: then `None`,
/// with `closing` set. Resizes that come meanwhile are collected for afterwards.
async fn unless_closed<F: std::future::Future>(
    control: &mut mpsc::Receiver<Control>,
    closing: &mut bool,
    resizes: &mut Vec<(u32, u32)>,
    work: F,
) -> Option<F::Output> {
    tokio::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => return Some(done),
            asked = control.recv(), if !*closing => match asked {
                Some(Control::Resize { cols, rows }) => resizes.push((cols, rows)),
                Some(Control::Close) | None => {
                    *closing = true;
                    return None;
                }
            },
        }
    }
}

/// Something the handle sent that waits for room in the send window.
#[derive(Debug)]
enum Pending {
    Bytes(Vec<u8>),
    Flag(Flag),
}

/// Why a resume attempt failed.
pub(crate) enum ResumeError {
    /// A network problem: try again until the deadline.
    Retry(String),
    /// The session cannot be resumed.
    Fatal(SessionFailure),
}

use ResumeError::{Fatal, Retry};

#[cfg(test)]
mod tests;
