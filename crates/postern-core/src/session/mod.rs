//! Session Manager sessions: start one through the SSM API, then drive its data channel in one
//! task ([`driver`]) that owns the websocket, the protocol state from postern-ssm, keepalive, and
//! reconnection through ResumeSession.
//!
//! [`open`] returns a [`Session`]: a handle that sends input, resizes and closes, and yields
//! [`SessionEvent`]s (output, stderr, exit code, reconnects, the end). The driver keeps every
//! sequence number and unacknowledged message across reconnects; input given while the socket is
//! down is sequenced and sent after the reconnect, never dropped; and when the session cannot be
//! resumed it ends with a reason within [`SessionOptions::resume_deadline`].

pub mod coalesce;
pub mod driver;
pub mod socket;

pub use driver::CLOSE_LIMIT;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_ssm::error::ProvideErrorMetadata;
pub use postern_ssm::channel::{CloseReason, SessionKind};
pub use postern_ssm::payload::Flag;
pub use postern_ssm::port::PortMode;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// What to open: a target and a session document with its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRequest {
    /// The instance id.
    pub target: String,
    /// The document; `None` is the default shell (`SSM-SessionManagerRunShell`).
    pub document: Option<String>,
    /// The document's parameters.
    pub parameters: BTreeMap<String, Vec<String>>,
    /// Why (recorded in CloudTrail).
    pub reason: Option<String>,
}

impl SessionRequest {
    /// The default shell on `target`.
    pub fn shell(target: &str) -> Self {
        Self {
            target: target.to_owned(),
            document: None,
            parameters: BTreeMap::new(),
            reason: None,
        }
    }

    /// An interactive command in a terminal (`AWS-StartInteractiveCommand`).
    pub fn interactive_command(target: &str, command: &str) -> Self {
        Self::with(
            target,
            "AWS-StartInteractiveCommand",
            &[("command", command)],
        )
    }

    /// A non-interactive command with separate stdout, stderr and an exit code
    /// (`AWS-StartNonInteractiveCommand`).
    pub fn command(target: &str, command: &str) -> Self {
        Self::with(
            target,
            "AWS-StartNonInteractiveCommand",
            &[("command", command), ("separateOutputStream", "true")],
        )
    }

    /// Port forwarding to `port` on the instance, or through it to `host`.
    pub fn port_forward(target: &str, port: u16, host: Option<&str>) -> Self {
        let port = port.to_string();
        match host {
            None => Self::with(
                target,
                "AWS-StartPortForwardingSession",
                &[("portNumber", &port), ("localPortNumber", "0")],
            ),
            Some(host) => Self::with(
                target,
                "AWS-StartPortForwardingSessionToRemoteHost",
                &[
                    ("host", host),
                    ("portNumber", &port),
                    ("localPortNumber", "0"),
                ],
            ),
        }
    }

    /// An SSH byte stream to `port` on the instance (`AWS-StartSSHSession`).
    pub fn ssh(target: &str, port: u16) -> Self {
        Self::with(
            target,
            "AWS-StartSSHSession",
            &[("portNumber", &port.to_string())],
        )
    }

    fn with(target: &str, document: &str, parameters: &[(&str, &str)]) -> Self {
        Self {
            target: target.to_owned(),
            document: Some(document.to_owned()),
            parameters: parameters
                .iter()
                .map(|(k, v)| ((*k).to_owned(), vec![(*v).to_owned()]))
                .collect(),
            reason: None,
        }
    }
}

/// Where sessions are started, and the credentials the websocket upgrade is signed with. Made
/// by [`crate::aws::AwsAccess::ssm`]; its SDK client stays inside core.
#[derive(Clone, Debug)]
pub struct SsmAccess {
    /// The SSM client (endpoint, region and credentials configured).
    pub(crate) client: aws_sdk_ssm::Client,
    /// The same credentials, for signing the websocket upgrade (service `ssmmessages`).
    pub(crate) credentials: Option<SharedCredentialsProvider>,
    /// The region.
    pub(crate) region: String,
    /// AWS's time, for signing the websocket upgrade (a skewed local clock would get it
    /// refused).
    pub(crate) clock: crate::aws::AwsClock,
    /// Where the sessions opened here are journaled (none: not journaled).
    pub(crate) journal: Option<crate::history::journal::Journal>,
}

impl SsmAccess {
    /// The region sessions are started in.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// For tests: access over any SSM client, signing the data channel with `credentials`,
    /// journaling nothing.
    #[cfg(feature = "test-support")]
    pub fn from_sdk(
        client: aws_sdk_ssm::Client,
        credentials: Option<SharedCredentialsProvider>,
        region: &str,
        clock: crate::aws::AwsClock,
    ) -> Self {
        Self {
            client,
            credentials,
            region: region.to_owned(),
            clock,
            journal: None,
        }
    }

    /// For tests: the SDK client, to check what AWS (the sandbox) says about sessions.
    #[cfg(feature = "test-support")]
    pub fn sdk(&self) -> &aws_sdk_ssm::Client {
        &self.client
    }
}

/// Tunables of the session driver; the defaults suit AWS.
#[derive(Clone, Debug)]
pub struct SessionOptions {
    /// The protocol options (client version, window, pacing).
    pub channel: postern_ssm::channel::ChannelConfig,
    /// How often the websocket is pinged.
    pub ping_interval: Duration,
    /// How long with nothing at all from the service (not even a pong) before the socket is
    /// declared dead and the session resumed.
    pub silence_timeout: Duration,
    /// How long after the socket went down the session may take to come back (something heard
    /// on a new socket) before it ends with the reason. Every ResumeSession call and dial is cut
    /// short at this deadline.
    pub resume_deadline: Duration,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            channel: postern_ssm::channel::ChannelConfig::default(),
            ping_interval: Duration::from_secs(10),
            silence_timeout: Duration::from_secs(25),
            // Under the 30 s a user may wait for a verdict, with room for the last attempt's
            // error to arrive.
            resume_deadline: Duration::from_secs(25),
        }
    }
}

/// A session's id, as StartSession gives it (`<name>-<hex>`): not a secret (CloudTrail and the
/// console show it), but not to be confused with an instance id or a stream token.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(String);

impl SessionId {
    /// The id as AWS writes it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for SessionId {
    fn from(id: &str) -> Self {
        Self(id.to_owned())
    }
}

impl From<String> for SessionId {
    fn from(id: String) -> Self {
        Self(id)
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads as the text it is (an id is not a secret); it cannot be made from an arbitrary string
/// by accident, only by `From`.
impl std::ops::Deref for SessionId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for SessionId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for SessionId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for SessionId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// What a session tells its user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionEvent {
    /// The kind of session is known (and for ports and commands the handshake answered).
    Started(SessionKind),
    /// A line for the user from the agent (HandshakeComplete's CustomerMessage).
    Message(String),
    /// Output bytes.
    Output(Vec<u8>),
    /// Standard error of a command.
    StdErr(Vec<u8>),
    /// A command's exit code.
    ExitCode(i32),
    /// A flag from the agent (ConnectToPortError).
    Flag(Flag),
    /// The websocket dropped; the driver is resuming the session.
    Reconnecting(LinkLost),
    /// The session was resumed.
    Reconnected,
    /// The session is over.
    Ended(SessionEnd),
}

/// Why the data channel's websocket went down (the session is being resumed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "lost", rename_all = "snake_case")]
pub enum LinkLost {
    /// The service closed the websocket.
    #[error("the service closed the connection{}", reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    ClosedByService {
        /// The close frame's reason, if it gave one.
        reason: Option<String>,
    },
    /// The websocket failed (a reset, a TLS or protocol error).
    #[error("the connection failed: {detail}")]
    Failed {
        /// What failed.
        detail: String,
    },
    /// The websocket ended without a close.
    #[error("the connection ended")]
    Ended,
    /// Nothing came from the service, not even a pong (a sleeping laptop, a dead network).
    #[error("nothing from the service for {seconds} s")]
    Silent {
        /// How long it was silent.
        seconds: u64,
    },
    /// A keepalive ping could not be written.
    #[error("a keepalive could not be sent")]
    PingRefused,
    /// Writing to the websocket failed.
    #[error("writing to the connection failed: {detail}")]
    WriteFailed {
        /// What failed.
        detail: String,
    },
    /// The websocket stopped taking bytes.
    #[error("the connection stopped taking data")]
    WriteStuck,
}

/// How a session ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "end", rename_all = "snake_case")]
pub enum SessionEnd {
    /// It ended on the instance (the shell exited, the command finished, the agent closed the
    /// port), or the service closed it with a reason.
    Closed {
        /// The service's reason; `None` on a normal end.
        reason: Option<String>,
    },
    /// The user closed it.
    ClosedByUser,
    /// It failed.
    Failed(SessionFailure),
}

impl std::fmt::Display for SessionEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Closed { reason: None } => f.write_str("the session ended"),
            Self::Closed {
                reason: Some(reason),
            } => write!(f, "the session was closed: {reason}"),
            Self::ClosedByUser => f.write_str("the session was closed"),
            Self::Failed(failure) => write!(f, "{failure}"),
        }
    }
}

/// Why a session failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "failure", rename_all = "snake_case")]
pub enum SessionFailure {
    /// The connection dropped and could not be made again in time.
    #[error("the session could not be resumed within {seconds} s: {last}")]
    NotResumed {
        /// The resume deadline.
        seconds: u64,
        /// The last attempt's problem.
        last: String,
    },
    /// A new connection opened, but nothing came through it in time.
    #[error(
        "the session could not be resumed within {seconds} s: nothing arrived on the new connection"
    )]
    SilentAfterResume {
        /// The resume deadline.
        seconds: u64,
    },
    /// Session Manager would not resume it (it ended there, or access was withdrawn).
    #[error("the session cannot be resumed: {detail}")]
    ResumeRefused {
        /// What Session Manager said.
        detail: String,
    },
    /// Session Manager refused the data channel.
    #[error("Session Manager refused the data channel (HTTP {status}): {reason}")]
    ChannelRefused {
        /// The HTTP status.
        status: u16,
        /// What it said.
        reason: String,
    },
    /// The session needs KMS encryption, which Postern does not do yet.
    #[error("{}", CloseReason::KmsEncryptionRequired)]
    KmsEncryptionRequired,
    /// The agent asked for something Postern does not support.
    #[error("the agent asked for something Postern does not support: {what}")]
    Unsupported {
        /// What it asked for.
        what: String,
    },
    /// The agent stopped acknowledging what Postern sent.
    #[error("the agent did not acknowledge message {sequence} after every retransmission")]
    Unacknowledged {
        /// The message's sequence number.
        sequence: i64,
    },
    /// The session was closed, but AWS did not confirm that it ended: it ends after the
    /// account's idle timeout.
    #[error(
        "the session was closed, but AWS did not confirm that it ended ({detail}); it ends after the account's idle timeout"
    )]
    NotConfirmed {
        /// Why not.
        detail: String,
    },
    /// The session's task stopped without saying how it ended.
    #[error("the session driver stopped")]
    DriverStopped,
}

impl From<CloseReason> for SessionEnd {
    fn from(reason: CloseReason) -> Self {
        match reason {
            CloseReason::ChannelClosed(text) if text.trim().is_empty() => {
                Self::Closed { reason: None }
            }
            CloseReason::ChannelClosed(text) => Self::Closed { reason: Some(text) },
            CloseReason::KmsEncryptionRequired => {
                Self::Failed(SessionFailure::KmsEncryptionRequired)
            }
            CloseReason::Unsupported(what) => Self::Failed(SessionFailure::Unsupported { what }),
            CloseReason::Unacknowledged { sequence } => {
                Self::Failed(SessionFailure::Unacknowledged { sequence })
            }
        }
    }
}

/// The session is over: its driver takes no more input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the session is over")]
pub struct SessionClosed;

/// Why a session could not be started or kept.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The caller may not start this session; AWS's message says on what.
    #[error("access denied: {message}")]
    AccessDenied {
        /// AWS's message.
        message: String,
    },
    /// The instance's SSM agent is not connected (stopped, offline, not a managed node).
    #[error(
        "{target} is not connected to Session Manager (AWS says: {message}): check that it is running and its SSM agent is online"
    )]
    TargetNotConnected {
        /// The instance.
        target: String,
        /// AWS's message.
        message: String,
    },
    /// The document or its parameters were refused.
    #[error("the session document was refused: {message}")]
    InvalidDocument {
        /// AWS's message.
        message: String,
    },
    /// Any other AWS error.
    #[error("{operation} failed: {code}: {message}")]
    Aws {
        /// The API operation.
        operation: &'static str,
        /// The error code.
        code: String,
        /// The message.
        message: String,
    },
    /// The SSM API or the websocket could not be reached.
    #[error("cannot reach Session Manager: {0}")]
    Network(String),
    /// The target is not an instance id.
    #[error(
        "{target:?} is not an instance id: instance ids are i- followed by 8 or 17 hexadecimal digits (or mi- for on-premises nodes)"
    )]
    MalformedTarget {
        /// What was given.
        target: String,
    },
    /// The instance does not exist in the region, but does in others.
    #[error("no instance {target} in {region}; it is in {}", found.join(", "))]
    InOtherRegion {
        /// The instance.
        target: String,
        /// The region asked.
        region: String,
        /// Where it is.
        found: Vec<String>,
    },
    /// The instance exists nowhere the user's credentials can see.
    #[error("no such instance: {target} is not in {region} {}", elsewhere(searched.as_deref()))]
    NoSuchInstance {
        /// The instance.
        target: String,
        /// The region asked.
        region: String,
        /// The other regions looked in; `None`: every region of the account.
        searched: Option<Vec<String>>,
    },
}

/// Where else an instance was looked for, in words.
fn elsewhere(searched: Option<&[String]>) -> String {
    match searched {
        None | Some([]) => "nor in any other region of this account".to_owned(),
        Some(others) => format!(
            "nor in {} (the other regions of your profiles)",
            others.join(", ")
        ),
    }
}

impl SessionError {
    /// Map an SDK error of `operation` to what the user can act on.
    pub fn from_sdk<E, R>(
        operation: &'static str,
        target: &str,
        error: &aws_sdk_ssm::error::SdkError<E, R>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        use aws_sdk_ssm::error::SdkError;
        let (code, message) = match error {
            SdkError::ServiceError(service) => {
                let e = service.err();
                (
                    e.code().unwrap_or("Unknown").to_owned(),
                    e.message().unwrap_or("").to_owned(),
                )
            }
            SdkError::DispatchFailure(_)
            | SdkError::TimeoutError(_)
            | SdkError::ResponseError(_) => {
                return Self::Network(crate::failure::transport_failure(error));
            }
            other => ("Unknown".to_owned(), format!("{other}")),
        };
        match code.as_str() {
            "AccessDeniedException" | "AccessDenied" => Self::AccessDenied { message },
            "TargetNotConnected" => Self::TargetNotConnected {
                target: target.to_owned(),
                message,
            },
            "InvalidDocument" | "InvalidParameters" => Self::InvalidDocument { message },
            _ => Self::Aws {
                operation,
                code,
                message,
            },
        }
    }
}

/// What the handle asks of the driver, in order with the input (a flag such as DisconnectToPort
/// must follow the bytes before it).
#[derive(Debug)]
pub(crate) enum Command {
    Input(Vec<u8>),
    Flag(Flag),
}

/// What the handle asks of the driver out of band: these never wait behind input held back by
/// a full send window or a reconnect, so a session can always be closed or resized.
#[derive(Debug)]
pub(crate) enum Control {
    Resize { cols: u32, rows: u32 },
    Close,
}

/// A running session. Dropping it closes the session.
#[derive(Debug)]
pub struct Session {
    id: SessionId,
    commands: mpsc::Sender<Command>,
    control: mpsc::Sender<Control>,
    events: mpsc::Receiver<SessionEvent>,
}

/// The writing half of a session.
#[derive(Clone, Debug)]
pub struct SessionWriter {
    commands: mpsc::Sender<Command>,
    control: mpsc::Sender<Control>,
}

impl SessionWriter {
    /// Send bytes (keystrokes, TCP bytes). Waits while the send window is full. Nothing to
    /// send is no error.
    pub async fn send(&self, bytes: Vec<u8>) -> Result<(), SessionClosed> {
        if bytes.is_empty() {
            return if self.commands.is_closed() {
                Err(SessionClosed)
            } else {
                Ok(())
            };
        }
        self.commands
            .send(Command::Input(bytes))
            .await
            .map_err(|_| SessionClosed)
    }

    /// Wait until the session can take more input, without sending yet. Lets a caller that must
    /// keep reading events (a tunnel) wait for room in a `select!`, never blocked on a send.
    pub async fn reserve(&self) -> Option<InputPermit<'_>> {
        self.commands.reserve().await.ok().map(InputPermit)
    }

    /// Tell the agent the terminal size.
    pub async fn resize(&self, cols: u32, rows: u32) -> Result<(), SessionClosed> {
        self.control
            .send(Control::Resize { cols, rows })
            .await
            .map_err(|_| SessionClosed)
    }

    /// Send a flag (DisconnectToPort in basic port mode).
    pub async fn flag(&self, flag: Flag) -> Result<(), SessionClosed> {
        self.commands
            .send(Command::Flag(flag))
            .await
            .map_err(|_| SessionClosed)
    }

    /// Ask the driver to end the session: input already queued goes out (for a moment), then
    /// the TerminateSession flag for ports, then the TerminateSession API. Returns at once; the
    /// session's events end with [`SessionEvent::Ended`] once it is over (see [`close_and_wait`]).
    pub async fn close(&self) {
        let _ = self.control.send(Control::Close).await;
    }
}

/// Close a session and wait until it is over on the service (TerminateSession answered or given
/// up on), at most [`CLOSE_LIMIT`] and a little more. Events that arrive meanwhile are dropped.
/// Returns how the session ended, or `None` when the driver did not finish in time.
pub async fn close_and_wait(
    writer: &SessionWriter,
    events: &mut mpsc::Receiver<SessionEvent>,
) -> Option<SessionEnd> {
    writer.close().await;
    wait_for_end(events, CLOSE_LIMIT + Duration::from_millis(500)).await
}

/// Wait for a session's [`SessionEvent::Ended`], dropping other events, for at most `limit`.
pub async fn wait_for_end(
    events: &mut mpsc::Receiver<SessionEvent>,
    limit: Duration,
) -> Option<SessionEnd> {
    tokio::time::timeout(limit, async {
        while let Some(event) = events.recv().await {
            if let SessionEvent::Ended(end) = event {
                return Some(end);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}

/// Room for one input message, from [`SessionWriter::reserve`].
#[derive(Debug)]
pub struct InputPermit<'a>(mpsc::Permit<'a, Command>);

impl InputPermit<'_> {
    /// Send bytes in the reserved room.
    pub fn send(self, bytes: Vec<u8>) {
        if !bytes.is_empty() {
            self.0.send(Command::Input(bytes));
        }
    }
}

impl Session {
    /// The session id (`<name>-<hex>`).
    pub fn id(&self) -> &SessionId {
        &self.id
    }

    /// A writer for input, resizes and closing.
    pub fn writer(&self) -> SessionWriter {
        SessionWriter {
            commands: self.commands.clone(),
            control: self.control.clone(),
        }
    }

    /// The next event; `None` once the driver has stopped.
    pub async fn next_event(&mut self) -> Option<SessionEvent> {
        self.events.recv().await
    }

    /// Split into the event stream and a writer.
    pub fn split(self) -> (mpsc::Receiver<SessionEvent>, SessionWriter, SessionId) {
        let writer = SessionWriter {
            commands: self.commands,
            control: self.control,
        };
        (self.events, writer, self.id)
    }
}

/// Start a session: StartSession, then the data channel in a background task.
pub async fn open(
    access: &SsmAccess,
    request: SessionRequest,
    options: SessionOptions,
) -> Result<Session, SessionError> {
    let mut call = access.client.start_session().target(&request.target);
    if let Some(document) = &request.document {
        call = call.document_name(document);
    }
    if let Some(reason) = &request.reason {
        call = call.reason(reason);
    }
    for (name, values) in &request.parameters {
        call = call.parameters(name, values.clone());
    }
    let started = call
        .send()
        .await
        .map_err(|e| SessionError::from_sdk("StartSession", &request.target, &e))?;
    let (Some(id), Some(token), Some(url)) = (
        started.session_id(),
        started.token_value(),
        started.stream_url(),
    ) else {
        return Err(SessionError::Aws {
            operation: "StartSession",
            code: "IncompleteResponse".into(),
            message: "StartSession answered without a session id, token or stream URL".into(),
        });
    };
    if let Some(journal) = &access.journal {
        journal.started(&access.region, &request, id).await;
    }
    let (command_tx, command_rx) = mpsc::channel(64);
    let (control_tx, control_rx) = mpsc::channel(16);
    let (event_tx, event_rx) = mpsc::channel(1024);
    let id = SessionId::from(id);
    let driver = driver::Driver::new(
        driver::AwsLink(access.clone()),
        access.journal.clone(),
        id.clone(),
        request.target.clone(),
        url.to_owned(),
        crate::sensitive::Secret::new(token),
        options,
        command_rx,
        control_rx,
        event_tx,
    );
    tokio::spawn(driver.run());
    Ok(Session {
        id,
        commands: command_tx,
        control: control_tx,
        events: event_rx,
    })
}
