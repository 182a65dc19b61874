//! The driver in tokio's paused time, against a fake link: in-memory websockets (tokio's duplex
//! pipes) with a scripted agent behind each, and scripted ResumeSession and TerminateSession
//! answers. Timeouts, the resume deadline and the end reasons are checked to the virtual second,
//! with no real waiting and no network.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use postern_ssm::frame::{self, Frame, MessageId, MessageType, PayloadType};
use tokio::io::DuplexStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::{Driver, Link, ResumeError};
use crate::sensitive::Secret;
use crate::session::socket::DialError;
use crate::session::{
    Command, Control, LinkLost, SessionEnd, SessionEvent, SessionFailure, SessionId, SessionOptions,
};

/// What the agent behind one socket does once it is connected.
#[derive(Clone, Debug)]
struct Agent {
    /// Output it sends at once, with sequence numbers from `first`.
    first: i64,
    says: Vec<&'static str>,
    /// Then: keep answering (pings, and recording input), go silent, or close.
    then: Then,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Then {
    Answer,
    Silent,
    Close,
    /// Close the channel as the agent does at a session's normal end.
    EndSession,
}

fn agent(first: i64, says: &[&'static str], then: Then) -> Agent {
    Agent {
        first,
        says: says.to_vec(),
        then,
    }
}

#[derive(Default)]
struct Script {
    dials: VecDeque<Result<Agent, DialError>>,
    resumes: VecDeque<Result<(Secret, Option<String>), ResumeError>>,
    terminate: Option<Result<(), String>>,
    /// What the link was asked, in order: `dial <token>`, `resume`, `terminate`.
    log: Vec<String>,
    /// Input payloads the agents received.
    input: Vec<Vec<u8>>,
}

#[derive(Clone, Default)]
struct FakeLink(Arc<Mutex<Script>>);

impl FakeLink {
    fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn log(&self) -> Vec<String> {
        self.script().log.clone()
    }
}

fn output(sequence: i64, text: &str) -> Message {
    let frame = Frame {
        message_type: MessageType::OutputStreamData,
        schema_version: 1,
        created_ms: 1_764_806_400_000,
        sequence,
        flags: 0,
        message_id: MessageId::from_random([sequence as u8 + 1; 16]),
        payload_type: PayloadType::OUTPUT,
        payload: text.as_bytes().to_vec(),
    };
    Message::Binary(frame::encode(&frame).into())
}

fn channel_closed() -> Message {
    let frame = Frame {
        message_type: MessageType::ChannelClosed,
        schema_version: 1,
        created_ms: 1_764_806_400_000,
        sequence: 0,
        flags: 0,
        message_id: MessageId::from_random([0xcc; 16]),
        payload_type: PayloadType::NONE,
        payload: br#"{"Output":"","SessionId":"demo-1"}"#.to_vec(),
    };
    Message::Binary(frame::encode(&frame).into())
}

/// Run `agent` on the server end of a socket.
async fn serve(link: FakeLink, server: DuplexStream, agent: Agent) {
    let Ok(mut socket) = tokio_tungstenite::accept_async(server).await else {
        return;
    };
    for (i, text) in agent.says.iter().enumerate() {
        if socket
            .send(output(agent.first + i as i64, text))
            .await
            .is_err()
        {
            return;
        }
    }
    match agent.then {
        Then::Silent => {
            // Hold the socket open, reading nothing and answering nothing.
            std::future::pending::<()>().await;
        }
        Then::Close => {
            let _ = socket
                .send(Message::Close(Some(CloseFrame {
                    code: CloseCode::Away,
                    reason: "going away".into(),
                })))
                .await;
            // Read until the client has seen it.
            while let Some(Ok(_)) = socket.next().await {}
        }
        Then::EndSession => {
            let _ = socket.send(channel_closed()).await;
            while let Some(Ok(_)) = socket.next().await {}
        }
        Then::Answer => {
            while let Some(Ok(message)) = socket.next().await {
                if let Message::Binary(bytes) = message
                    && let Ok(decoded) = frame::decode(&bytes)
                    && decoded.frame.message_type == MessageType::InputStreamData
                    && decoded.frame.payload_type == PayloadType::OUTPUT
                {
                    link.script().input.push(decoded.frame.payload);
                }
            }
        }
    }
}

impl Link for FakeLink {
    type Socket = WebSocketStream<DuplexStream>;

    async fn dial(
        &self,
        _url: &str,
        token: &str,
        _client_id: &str,
        _client_version: &str,
    ) -> Result<Self::Socket, DialError> {
        let next = {
            let mut script = self.script();
            script.log.push(format!("dial {token}"));
            script
                .dials
                .pop_front()
                .unwrap_or_else(|| Err(DialError::Connect("nothing listens".into())))
        };
        let agent = next?;
        let (client, server) = tokio::io::duplex(256 * 1024);
        tokio::spawn(serve(self.clone(), server, agent));
        let (socket, _) = tokio_tungstenite::client_async("ws://agent.test/", client)
            .await
            .map_err(|e| DialError::Connect(e.to_string()))?;
        Ok(socket)
    }

    async fn resume(
        &self,
        _session: &SessionId,
        _target: &str,
    ) -> Result<(Secret, Option<String>), ResumeError> {
        let mut script = self.script();
        script.log.push("resume".into());
        script
            .resumes
            .pop_front()
            .unwrap_or_else(|| Err(ResumeError::Retry("the network is down".into())))
    }

    async fn terminate(&self, _session: &SessionId, _target: &str) -> Result<(), String> {
        let mut script = self.script();
        script.log.push("terminate".into());
        script.terminate.clone().unwrap_or(Ok(()))
    }
}

struct Running {
    events: mpsc::Receiver<SessionEvent>,
    commands: mpsc::Sender<Command>,
    control: mpsc::Sender<Control>,
    started: Instant,
}

fn options() -> SessionOptions {
    SessionOptions {
        ping_interval: Duration::from_secs(2),
        silence_timeout: Duration::from_secs(5),
        resume_deadline: Duration::from_secs(10),
        ..SessionOptions::default()
    }
}

fn start(link: &FakeLink) -> Running {
    start_with(link, options())
}

fn start_with(link: &FakeLink, options: SessionOptions) -> Running {
    let (commands, command_rx) = mpsc::channel(64);
    let (control, control_rx) = mpsc::channel(16);
    let (event_tx, events) = mpsc::channel(1024);
    let driver = Driver::new(
        link.clone(),
        None,
        SessionId::from("demo-1"),
        "i-0123456789abcdef0".into(),
        "wss://ssmmessages.test/v1/data-channel/demo-1".into(),
        Secret::new("first-token"),
        options,
        command_rx,
        control_rx,
        event_tx,
    );
    tokio::spawn(driver.run());
    Running {
        events,
        commands,
        control,
        started: Instant::now(),
    }
}

impl Running {
    /// Events until the end (or until the driver stops), each with the virtual time it came.
    async fn until_end(&mut self) -> Vec<(Duration, SessionEvent)> {
        let mut seen = Vec::new();
        while let Some(event) = self.events.recv().await {
            let ended = matches!(event, SessionEvent::Ended(_));
            seen.push((self.started.elapsed(), event));
            if ended {
                break;
            }
        }
        seen
    }

    /// The next event that is not output, with its time.
    async fn next_news(&mut self) -> Option<(Duration, SessionEvent)> {
        while let Some(event) = self.events.recv().await {
            if !matches!(event, SessionEvent::Output(_) | SessionEvent::Started(_)) {
                return Some((self.started.elapsed(), event));
            }
        }
        None
    }
}

fn outputs(events: &[(Duration, SessionEvent)]) -> String {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            SessionEvent::Output(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
            _ => None,
        })
        .collect()
}

fn end_of(events: &[(Duration, SessionEvent)]) -> (Duration, SessionEnd) {
    match events.last() {
        Some((at, SessionEvent::Ended(end))) => (*at, end.clone()),
        other => panic!("no end: {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_dropped_socket_is_resumed_and_nothing_is_lost() {
    let link = FakeLink::default();
    {
        let mut script = link.script();
        script.dials.push_back(Ok(agent(0, &["one "], Then::Close)));
        script
            .resumes
            .push_back(Err(ResumeError::Retry("connection reset".into())));
        script
            .resumes
            .push_back(Ok((Secret::new("second-token"), None)));
        script
            .dials
            .push_back(Ok(agent(1, &["two ", "three"], Then::EndSession)));
    }
    let mut running = start(&link);
    let events = running.until_end().await;
    assert_eq!(outputs(&events), "one two three");
    let news: Vec<&SessionEvent> = events
        .iter()
        .map(|(_, e)| e)
        .filter(|e| !matches!(e, SessionEvent::Output(_) | SessionEvent::Started(_)))
        .collect();
    assert_eq!(
        news,
        [
            &SessionEvent::Reconnecting(LinkLost::ClosedByService {
                reason: Some("going away".into())
            }),
            &SessionEvent::Reconnected,
            &SessionEvent::Ended(SessionEnd::Closed { reason: None }),
        ]
    );
    // The first failed resume was retried after a short pause, well within the deadline.
    let (at, _) = end_of(&events);
    assert!(at < Duration::from_secs(2), "{at:?}");
    assert_eq!(
        link.log(),
        ["dial first-token", "resume", "resume", "dial second-token"]
    );
}

#[tokio::test(start_paused = true)]
async fn input_typed_while_the_socket_is_down_goes_out_after_the_resume() {
    let link = FakeLink::default();
    {
        let mut script = link.script();
        script.dials.push_back(Ok(agent(0, &["$ "], Then::Silent)));
        script
            .resumes
            .push_back(Ok((Secret::new("second-token"), None)));
        script.dials.push_back(Ok(agent(1, &["ok"], Then::Answer)));
    }
    let mut running = start(&link);
    // The agent goes silent: after the silence timeout the socket is declared down.
    let (at, event) = running.next_news().await.expect("an event");
    assert_eq!(
        event,
        SessionEvent::Reconnecting(LinkLost::Silent { seconds: 5 })
    );
    assert!(
        at >= Duration::from_secs(5) && at < Duration::from_secs(6),
        "{at:?}"
    );
    running
        .commands
        .send(Command::Input(b"typed while down\r".to_vec()))
        .await
        .expect("the driver takes input");
    let (_, event) = running.next_news().await.expect("an event");
    assert_eq!(event, SessionEvent::Reconnected);
    // Give the driver a moment (virtual) to send what waited.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let input = link.script().input.clone();
    assert!(
        input.iter().any(|i| i == b"typed while down\r"),
        "the second agent got {input:?}"
    );
    running.control.send(Control::Close).await.expect("close");
    let events = running.until_end().await;
    assert_eq!(end_of(&events).1, SessionEnd::ClosedByUser);
    assert_eq!(link.log().last().map(String::as_str), Some("terminate"));
}

#[tokio::test(start_paused = true)]
async fn a_session_that_cannot_be_resumed_ends_at_the_deadline_and_is_terminated() {
    let link = FakeLink::default();
    link.script()
        .dials
        .push_back(Ok(agent(0, &["$ "], Then::Silent)));
    let mut running = start(&link);
    let events = running.until_end().await;
    let (at, end) = end_of(&events);
    // Down after 5 s of silence; given up 10 s later, not a moment before.
    assert!(
        at >= Duration::from_secs(15) && at < Duration::from_secs(16),
        "{at:?}"
    );
    match end {
        SessionEnd::Failed(SessionFailure::NotResumed { seconds: 10, last }) => {
            assert_eq!(last, "the network is down");
        }
        other => panic!("{other:?}"),
    }
    let log = link.log();
    assert!(
        log.iter().filter(|l| *l == "resume").count() >= 3,
        "{log:?}"
    );
    assert_eq!(log.last().map(String::as_str), Some("terminate"));
}

#[tokio::test(start_paused = true)]
async fn a_new_socket_that_stays_silent_fails_at_the_same_deadline() {
    let link = FakeLink::default();
    {
        let mut script = link.script();
        script.dials.push_back(Ok(agent(0, &[], Then::Close)));
        script
            .resumes
            .push_back(Ok((Secret::new("second-token"), None)));
        script.dials.push_back(Ok(agent(1, &[], Then::Silent)));
    }
    // Silence alone would take longer than the resume deadline here.
    let mut running = start_with(
        &link,
        SessionOptions {
            silence_timeout: Duration::from_secs(30),
            ..options()
        },
    );
    let events = running.until_end().await;
    let (at, end) = end_of(&events);
    assert_eq!(
        end,
        SessionEnd::Failed(SessionFailure::SilentAfterResume { seconds: 10 })
    );
    assert!(
        at >= Duration::from_secs(10) && at < Duration::from_secs(11),
        "{at:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_refused_resume_ends_the_session_at_once_with_the_reason() {
    let link = FakeLink::default();
    {
        let mut script = link.script();
        script.dials.push_back(Ok(agent(0, &[], Then::Close)));
        script
            .resumes
            .push_back(Err(ResumeError::Fatal(SessionFailure::ResumeRefused {
                detail: "the session has ended".into(),
            })));
    }
    let mut running = start(&link);
    let events = running.until_end().await;
    let (at, end) = end_of(&events);
    assert_eq!(
        end,
        SessionEnd::Failed(SessionFailure::ResumeRefused {
            detail: "the session has ended".into()
        })
    );
    assert!(at < Duration::from_secs(1), "{at:?}");
}

#[tokio::test(start_paused = true)]
async fn a_refused_first_dial_is_not_retried() {
    let link = FakeLink::default();
    link.script().dials.push_back(Err(DialError::Refused {
        status: 403,
        reason: "The request signature we calculated does not match".into(),
    }));
    let mut running = start(&link);
    let events = running.until_end().await;
    let (at, end) = end_of(&events);
    assert!(
        matches!(
            end,
            SessionEnd::Failed(SessionFailure::ChannelRefused { status: 403, .. })
        ),
        "{end:?}"
    );
    assert!(at < Duration::from_secs(1), "{at:?}");
    assert_eq!(link.log(), ["dial first-token", "terminate"]);
}

#[tokio::test(start_paused = true)]
async fn closing_while_resuming_ends_at_once_and_terminates() {
    let link = FakeLink::default();
    link.script()
        .dials
        .push_back(Ok(agent(0, &[], Then::Close)));
    let mut running = start(&link);
    let (_, event) = running.next_news().await.expect("an event");
    assert!(matches!(event, SessionEvent::Reconnecting(_)), "{event:?}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    running.control.send(Control::Close).await.expect("close");
    let events = running.until_end().await;
    let (at, end) = end_of(&events);
    assert_eq!(end, SessionEnd::ClosedByUser);
    assert!(at < Duration::from_secs(4), "{at:?}");
    assert_eq!(link.log().last().map(String::as_str), Some("terminate"));
}

#[tokio::test(start_paused = true)]
async fn a_close_that_aws_does_not_confirm_says_so() {
    let link = FakeLink::default();
    {
        let mut script = link.script();
        script.dials.push_back(Ok(agent(0, &["$ "], Then::Answer)));
        script.terminate = Some(Err("TerminateSession failed: throttled".into()));
    }
    let mut running = start(&link);
    running.control.send(Control::Close).await.expect("close");
    let events = running.until_end().await;
    assert_eq!(
        end_of(&events).1,
        SessionEnd::Failed(SessionFailure::NotConfirmed {
            detail: "TerminateSession failed: throttled".into()
        })
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_the_handle_closes_the_session() {
    let link = FakeLink::default();
    link.script()
        .dials
        .push_back(Ok(agent(0, &["$ "], Then::Answer)));
    let running = start(&link);
    drop(running);
    // The driver notices, closes and terminates on the service.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(link.log().last().map(String::as_str), Some("terminate"));
}
