//! One session's agent task: the shell, command or port plumbing behind a data channel, and the
//! agent's half of the protocol (handshake, acknowledgements, retransmission, channel_closed).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use postern_ssm::frame::{MessageType, PayloadType};
use serde_json::{Value, json};
use sha2::Digest as _;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::home::SessionHome;
use super::local::{
    CommandGroup, Local, MAX_HELD_INPUT, MAX_UNWRITTEN, PtyHandles, TcpTag, TcpWriter, spawn_pty,
    spawn_tcp,
};
use super::mux::{self, MuxFrame, MuxReader};
use super::pacer::{self, Pacer};
use super::plan::{Plan, PortMode, agent_port_mode, plan_for};
use super::reliable::Reliable;
use super::{Attachment, Outbound};
use crate::shared::Shared;
use crate::world::SessionStatus;

/// Where connections to a session's agent task go; the task is started on first use.
pub fn attach_point(shared: &Arc<Shared>, session_id: &str) -> mpsc::Sender<Attachment> {
    let mut agents = shared.agents();
    if let Some(existing) = agents.get(session_id).filter(|tx| !tx.is_closed()) {
        return existing.clone();
    }
    let (tx, rx) = mpsc::channel(4);
    agents.insert(session_id.to_owned(), tx.clone());
    tokio::spawn(run(shared.clone(), session_id.to_owned(), rx));
    tx
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Handshake {
    NotNeeded,
    NotSent,
    Awaiting(Instant),
    Done,
}

struct Agent {
    shared: Arc<Shared>,
    session_id: String,
    target: String,
    plan: Plan,
    agent_version: String,
    reliable: Reliable,
    out: Option<mpsc::Sender<Outbound>>,
    outbox: VecDeque<Outbound>,
    inbound: Option<mpsc::Receiver<Vec<u8>>>,
    local_tx: mpsc::Sender<Local>,
    handshake: Handshake,
    mode: Option<PortMode>,
    queue: VecDeque<(PayloadType, Vec<u8>)>,
    utf8_tail: Vec<u8>,
    delayed_acks: VecDeque<(Instant, Vec<u8>)>,
    paused: bool,
    pacing: bool,
    pacer: Pacer,
    last_activity: Instant,
    idle_timeout: Duration,
    frames: u64,
    ending: Option<(String, Instant)>,
    finished: bool,
    /// The folder of a shell or command session, removed once the session is over and its
    /// process has exited.
    home: Option<Arc<SessionHome>>,
    pty: Option<PtyHandles>,
    tcp: Option<TcpWriter>,
    tcp_dialing: bool,
    /// Which single TCP connection is current: what an older one reports late (its last bytes,
    /// its end) must not reach, or close, the next one.
    tcp_generation: u64,
    basic_backlog: Vec<u8>,
    mux_reader: MuxReader,
    streams: HashMap<u32, Option<TcpWriter>>,
    stream_backlog: HashMap<u32, Vec<u8>>,
    /// Bytes handed to TCP connections and not written yet.
    tcp_unwritten: Arc<AtomicUsize>,
    /// Client data frames held back while too much is unwritten.
    held_input: VecDeque<Vec<u8>>,
    mux_keepalive: Option<(Instant, Instant)>,
    started: bool,
    last_report: Instant,
    next_resend_check: Instant,
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

async fn run(shared: Arc<Shared>, session_id: String, mut attachments: mpsc::Receiver<Attachment>) {
    let (plan, target, agent_version, pacing, idle_timeout) = {
        let world = shared.world();
        let Some(session) = world
            .session_index
            .get(&session_id)
            .map(|&i| &world.sessions[i])
        else {
            return;
        };
        let version = world
            .instance(&session.target)
            .map(|i| i.spec.agent_version.clone())
            .unwrap_or_default();
        (
            plan_for(&session.document, &session.parameters),
            session.target.clone(),
            version,
            world.agent_pacing,
            world.idle_timeout,
        )
    };
    let (local_tx, mut local_rx) = mpsc::channel(64);
    let now = Instant::now();
    let handshake = match plan {
        Plan::Shell { .. } => Handshake::NotNeeded,
        _ => Handshake::NotSent,
    };
    let mut agent = Agent {
        shared,
        session_id,
        target,
        plan,
        agent_version,
        reliable: Reliable::new(now, wall_ms(), rand::random()),
        out: None,
        outbox: VecDeque::new(),
        inbound: None,
        local_tx,
        handshake,
        mode: None,
        queue: VecDeque::new(),
        utf8_tail: Vec::new(),
        delayed_acks: VecDeque::new(),
        paused: false,
        pacing,
        pacer: Pacer::new(now),
        last_activity: now,
        idle_timeout,
        frames: 0,
        ending: None,
        finished: false,
        home: None,
        pty: None,
        tcp: None,
        tcp_dialing: false,
        tcp_generation: 0,
        basic_backlog: Vec::new(),
        mux_reader: MuxReader::default(),
        streams: HashMap::new(),
        stream_backlog: HashMap::new(),
        tcp_unwritten: Arc::new(AtomicUsize::new(0)),
        held_input: VecDeque::new(),
        mux_keepalive: None,
        started: false,
        last_report: now,
        next_resend_check: now,
    };
    let mut stopping = agent.shared.stopping();
    let mut tick = tokio::time::interval(if pacing {
        pacer::TICK
    } else {
        Duration::from_millis(5)
    });
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while !agent.finished {
        let accept_local = agent.queue.len() < 64 && agent.reliable.has_room();
        let out = agent.out.clone();
        tokio::select! {
            attachment = attachments.recv() => match attachment {
                Some(a) => agent.attach(a),
                None => break,
            },
            frame = recv_opt(&mut agent.inbound) => match frame {
                Some(bytes) => agent.on_client(&bytes),
                None => agent.detach(),
            },
            local = local_rx.recv(), if accept_local => {
                if let Some(local) = local {
                    agent.on_local(local);
                }
            }
            permit = reserve(&out), if !agent.outbox.is_empty() => {
                if let (Some(permit), Some(item)) = (permit, agent.outbox.pop_front()) {
                    permit.send(item);
                }
                agent.drain_outbox();
            }
            _ = tick.tick() => agent.on_tick(),
            _ = stopping.wait_for(|stopping| *stopping) => {
                agent.close_channel("The sandbox stopped.");
            }
        }
        agent.flush();
    }
    // The last frames (the channel_closed of a stop or an end) may still wait for room in the
    // socket's queue: they go out before the agent is dropped, for a moment at most, so the
    // client hears why instead of finding the socket gone.
    if let Some(out) = agent.out.clone() {
        let last = std::mem::take(&mut agent.outbox);
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            for item in last {
                if out.send(item).await.is_err() {
                    break;
                }
            }
        })
        .await;
    }
    // Dropping the agent cleans up (as it does when the runtime drops this task).
}

async fn reserve(out: &Option<mpsc::Sender<Outbound>>) -> Option<mpsc::Permit<'_, Outbound>> {
    match out {
        Some(out) => out.reserve().await.ok(),
        None => std::future::pending().await,
    }
}

async fn recv_opt(inbound: &mut Option<mpsc::Receiver<Vec<u8>>>) -> Option<Vec<u8>> {
    match inbound {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

impl Agent {
    fn send_frame(&mut self, bytes: Vec<u8>) {
        if self.out.is_some() {
            self.outbox.push_back(Outbound::Frame(bytes));
            self.drain_outbox();
        }
    }

    /// Hand queued frames to the socket while it has room.
    fn drain_outbox(&mut self) {
        let Some(out) = &self.out else {
            self.outbox.clear();
            return;
        };
        while let Some(item) = self.outbox.pop_front() {
            match out.try_send(item) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(item)) => {
                    self.outbox.push_front(item);
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.outbox.clear();
                    return;
                }
            }
        }
    }

    fn set_status(&self, status: SessionStatus) {
        let mut world = self.shared.world();
        let now = world.now();
        if let Some(session) = world.session_mut(&self.session_id)
            && session.status.is_active()
        {
            session.status = status;
            if status == SessionStatus::Terminated {
                session.ended = Some(now);
            }
        }
    }

    fn attach(&mut self, attachment: Attachment) {
        tracing::debug!(session = %self.session_id, in_flight = self.reliable.in_flight(), queued = self.queue.len(), "agent: websocket attached");
        self.out = Some(attachment.outbound);
        self.inbound = Some(attachment.inbound);
        self.set_status(SessionStatus::Connected);
        if self.started {
            return;
        }
        self.started = true;
        match self.handshake {
            Handshake::NotNeeded => self.start_shell(),
            Handshake::NotSent => {
                let properties = match &self.plan {
                    Plan::Port { properties, .. } => json!(properties),
                    _ => Value::Null,
                };
                let request = json!({
                    "AgentVersion": self.agent_version,
                    "RequestedClientActions": [{
                        "ActionType": "SessionType",
                        "ActionParameters": { "SessionType": self.plan.session_type(), "Properties": properties },
                    }],
                });
                self.queue.push_back((
                    PayloadType::HANDSHAKE_REQUEST,
                    request.to_string().into_bytes(),
                ));
                self.handshake = Handshake::Awaiting(Instant::now());
            }
            _ => {}
        }
    }

    fn detach(&mut self) {
        // What had not reached the socket dies with it.
        self.outbox.clear();
        tracing::debug!(session = %self.session_id, in_flight = self.reliable.in_flight(), "agent: websocket detached");
        self.inbound = None;
        self.out = None;
        self.set_status(SessionStatus::Disconnected);
    }

    /// One setting of this session's faults, if any are set (tests change them at any time).
    fn fault<T>(&self, pick: impl FnOnce(&super::Faults) -> T) -> Option<T> {
        self.shared.world().faults.get(&self.session_id).map(pick)
    }

    fn count_frame(&mut self) {
        self.frames += 1;
        let limit = self.fault(|f| f.close_channel_after).flatten();
        if limit.is_some_and(|n| self.frames >= n) {
            self.end("the session was closed by fault injection");
        }
    }

    fn on_client(&mut self, bytes: &[u8]) {
        self.count_frame();
        if self.holding_input(bytes) {
            return;
        }
        self.handle_client_frame(bytes);
    }

    /// While too much waits to be written to TCP, client data is held, unacknowledged, so the
    /// client's window fills and it stops sending; acknowledgements and control messages go
    /// on. True if `bytes` was held.
    fn holding_input(&mut self, bytes: &[u8]) -> bool {
        let over = self.tcp_unwritten.load(Ordering::Acquire) >= MAX_UNWRITTEN;
        if !over && self.held_input.is_empty() {
            return false;
        }
        let is_data = postern_ssm::frame::decode(bytes)
            .is_ok_and(|d| d.frame.message_type == MessageType::InputStreamData);
        if !is_data {
            return false;
        }
        if self.held_input.len() < MAX_HELD_INPUT {
            self.held_input.push_back(bytes.to_vec());
        }
        true
    }

    /// Take held client data once TCP has caught up.
    fn release_input(&mut self) {
        while self.tcp_unwritten.load(Ordering::Acquire) < MAX_UNWRITTEN {
            let Some(bytes) = self.held_input.pop_front() else {
                return;
            };
            self.handle_client_frame(&bytes);
        }
    }

    fn handle_client_frame(&mut self, bytes: &[u8]) {
        let now = Instant::now();
        let received = self.reliable.receive(now, bytes);
        if let Some(paused) = received.publication {
            self.paused = paused;
        }
        if received.acked || !received.deliver.is_empty() {
            self.paused = false;
        }
        let delay = self.fault(|f| f.ack_delay_ms).unwrap_or(0);
        for ack in received.acks {
            if delay > 0 {
                self.delayed_acks
                    .push_back((now + Duration::from_millis(delay), ack));
            } else {
                self.send_frame(ack);
            }
        }
        for frame in received.deliver {
            self.on_input(frame.payload_type, frame.payload);
        }
    }

    fn on_input(&mut self, payload_type: PayloadType, payload: Vec<u8>) {
        if payload_type == PayloadType::HANDSHAKE_RESPONSE {
            self.on_handshake_response(&payload);
            return;
        }
        if !matches!(self.handshake, Handshake::NotNeeded | Handshake::Done) {
            // Before the handshake completes the agent acknowledges and discards input.
            return;
        }
        match payload_type {
            PayloadType::OUTPUT => {
                self.last_activity = Instant::now();
                self.on_client_bytes(payload);
            }
            PayloadType::SIZE => {
                if let (Some(pty), Ok(size)) =
                    (&self.pty, serde_json::from_slice::<Value>(&payload))
                {
                    let cols = size["cols"].as_u64().unwrap_or(80).min(u64::from(u16::MAX)) as u16;
                    let rows = size["rows"].as_u64().unwrap_or(24).min(u64::from(u16::MAX)) as u16;
                    let _ = pty.master.resize(portable_pty::PtySize {
                        rows,
                        cols,
                        pixel_width: 0,
                        pixel_height: 0,
                    });
                }
            }
            PayloadType::FLAG => {
                match <[u8; 4]>::try_from(payload.as_slice()).map(u32::from_be_bytes) {
                    // TerminateSession: port sessions end; shells ignore it, as the real agent does.
                    Ok(2) if matches!(self.plan, Plan::Port { .. }) => self.end(""),
                    // DisconnectToPort: basic mode closes its connection and re-dials on next data.
                    Ok(1) if self.mode == Some(PortMode::Basic) => {
                        self.tcp = None;
                        self.tcp_dialing = false;
                        self.tcp_generation += 1;
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn on_handshake_response(&mut self, payload: &[u8]) {
        if !matches!(self.handshake, Handshake::Awaiting(_)) {
            return;
        }
        let response: Value = serde_json::from_slice(payload).unwrap_or_default();
        let client_version = response["ClientVersion"].as_str().unwrap_or("").to_owned();
        let failed: Vec<String> = response["ProcessedClientActions"]
            .as_array()
            .map(|actions| {
                actions
                    .iter()
                    .filter(|a| a["ActionStatus"].as_u64() != Some(1))
                    .map(|a| {
                        format!(
                            "{}: {}",
                            a["ActionType"].as_str().unwrap_or("?"),
                            a["Error"].as_str().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_else(|| vec!["no ProcessedClientActions".into()]);
        if !failed.is_empty() {
            self.end(&format!("Session handshake failed: {}", failed.join("; ")));
            return;
        }
        self.handshake = Handshake::Done;
        self.queue.push_back((
            PayloadType::HANDSHAKE_COMPLETE,
            json!({ "HandshakeTimeToComplete": 1_000_000, "CustomerMessage": "" })
                .to_string()
                .into_bytes(),
        ));
        match self.plan.clone() {
            Plan::Command { command, .. } => self.start_command(&command),
            Plan::Port { port, properties } => {
                let forwarding = properties
                    .get("type")
                    .is_some_and(|t| t == "LocalPortForwarding");
                let mode = agent_port_mode(forwarding, &client_version, &self.agent_version);
                self.mode = Some(mode);
                match mode {
                    PortMode::Stream => self.dial(port),
                    PortMode::Mux { keepalive: true } => {
                        let now = Instant::now();
                        self.mux_keepalive = Some((now, now + Duration::from_secs(10)));
                    }
                    _ => {}
                }
            }
            Plan::Shell { .. } => {}
        }
    }

    fn on_client_bytes(&mut self, bytes: Vec<u8>) {
        match (&self.plan, self.mode) {
            (Plan::Shell { .. }, _) => {
                if let Some(pty) = &self.pty {
                    let _ = pty.input.send(bytes);
                }
            }
            (Plan::Port { port, .. }, Some(PortMode::Stream | PortMode::Basic)) => {
                let port = *port;
                match &self.tcp {
                    Some(tcp) => {
                        tcp.send(bytes);
                    }
                    None => {
                        self.basic_backlog.extend_from_slice(&bytes);
                        if !self.tcp_dialing && self.mode == Some(PortMode::Basic) {
                            self.dial(port);
                        }
                    }
                }
            }
            (Plan::Port { port, .. }, Some(PortMode::Mux { .. })) => {
                let port = *port;
                if let Some(keepalive) = &mut self.mux_keepalive {
                    keepalive.0 = Instant::now();
                }
                match self.mux_reader.feed(&bytes) {
                    Ok(frames) => {
                        for frame in frames {
                            self.on_mux(port, frame);
                        }
                    }
                    Err(why) => self.end(&format!("smux protocol error: {why}")),
                }
            }
            _ => {}
        }
    }

    fn on_mux(&mut self, port: u16, frame: MuxFrame) {
        match frame {
            MuxFrame::Open(stream) => {
                self.streams.insert(stream, None);
                let tx = self.local_tx.clone();
                let unwritten = self.tcp_unwritten.clone();
                tokio::spawn(async move {
                    match TcpStream::connect(("127.0.0.1", port)).await {
                        Ok(socket) => {
                            let writer =
                                spawn_tcp(socket, tx.clone(), TcpTag::Stream(stream), unwritten);
                            let _ = tx.send(Local::StreamDialed(stream, Ok(writer))).await;
                        }
                        Err(e) => {
                            let _ = tx
                                .send(Local::StreamDialed(stream, Err(e.to_string())))
                                .await;
                        }
                    }
                });
            }
            MuxFrame::Data(stream, data) => match self.streams.get(&stream) {
                Some(Some(writer)) => {
                    writer.send(data);
                }
                Some(None) => self
                    .stream_backlog
                    .entry(stream)
                    .or_default()
                    .extend_from_slice(&data),
                None => {}
            },
            MuxFrame::Close(stream) => {
                self.streams.remove(&stream);
                self.stream_backlog.remove(&stream);
            }
            MuxFrame::Nop => {}
        }
    }

    fn dial(&mut self, port: u16) {
        self.tcp_dialing = true;
        self.tcp_generation += 1;
        let generation = self.tcp_generation;
        let tx = self.local_tx.clone();
        let unwritten = self.tcp_unwritten.clone();
        tokio::spawn(async move {
            match TcpStream::connect(("127.0.0.1", port)).await {
                Ok(socket) => {
                    let writer =
                        spawn_tcp(socket, tx.clone(), TcpTag::Single(generation), unwritten);
                    let _ = tx.send(Local::Dialed(generation, Ok(writer))).await;
                }
                Err(e) => {
                    let _ = tx.send(Local::Dialed(generation, Err(e.to_string()))).await;
                }
            }
        });
    }

    fn on_local(&mut self, local: Local) {
        match local {
            Local::Output(bytes) => {
                self.last_activity = Instant::now();
                if matches!(self.plan, Plan::Shell { .. }) {
                    self.queue_text(PayloadType::OUTPUT, bytes);
                } else {
                    self.queue_bytes(PayloadType::OUTPUT, &bytes);
                }
            }
            Local::StdErr(bytes) => {
                let separate = matches!(self.plan, Plan::Command { separate: true, .. });
                let kind = if separate {
                    PayloadType::STDERR
                } else {
                    PayloadType::OUTPUT
                };
                self.queue_bytes(kind, &bytes);
            }
            Local::Exited(code) => {
                if let Some(tail) =
                    (!self.utf8_tail.is_empty()).then(|| std::mem::take(&mut self.utf8_tail))
                {
                    self.queue.push_back((PayloadType::OUTPUT, tail));
                }
                if matches!(self.plan, Plan::Command { separate: true, .. }) {
                    self.queue.push_back((
                        PayloadType::EXIT_CODE,
                        format!("EXIT_CODE: {code}").into_bytes(),
                    ));
                }
                self.end("");
            }
            // What an earlier single connection reports late is dropped with it.
            Local::TcpData(generation, _)
            | Local::TcpClosed(generation)
            | Local::Dialed(generation, _)
                if generation != self.tcp_generation => {}
            Local::TcpData(_, bytes) => {
                self.last_activity = Instant::now();
                self.queue_bytes(PayloadType::OUTPUT, &bytes);
            }
            Local::Dialed(_, Ok(writer)) => {
                self.tcp_dialing = false;
                if !self.basic_backlog.is_empty() {
                    writer.send(std::mem::take(&mut self.basic_backlog));
                }
                self.tcp = Some(writer);
            }
            Local::Dialed(_, Err(why)) => {
                self.tcp_dialing = false;
                if self.mode == Some(PortMode::Stream) {
                    self.end(&format!("Unable to start port forwarding: {why}"));
                }
            }
            Local::TcpClosed(_) => {
                self.tcp = None;
                if self.mode == Some(PortMode::Stream) {
                    self.end("");
                }
            }
            Local::StreamDialed(stream, Ok(writer)) => {
                if let Some(slot) = self.streams.get_mut(&stream) {
                    if let Some(backlog) = self.stream_backlog.remove(&stream) {
                        writer.send(backlog);
                    }
                    *slot = Some(writer);
                }
            }
            Local::StreamDialed(stream, Err(_)) => {
                self.streams.remove(&stream);
                self.queue
                    .push_back((PayloadType::FLAG, 3u32.to_be_bytes().to_vec()));
                self.queue_bytes(PayloadType::OUTPUT, &mux::close(stream));
            }
            Local::StreamData(stream, data) => {
                self.last_activity = Instant::now();
                if self.streams.contains_key(&stream) {
                    self.queue_bytes(PayloadType::OUTPUT, &mux::data(stream, &data));
                }
            }
            Local::StreamEnded(stream) => {
                if self.streams.remove(&stream).is_some() {
                    self.queue_bytes(PayloadType::OUTPUT, &mux::close(stream));
                }
            }
        }
    }

    /// Queue bytes as ≤1 KiB messages, topping up the last queued message of the same stream
    /// first: the real agent reads its streams 1 KiB at a time, so its messages are full
    /// (a 1,032-byte smux frame is not sent as 1,024 + 8).
    fn queue_bytes(&mut self, payload_type: PayloadType, mut bytes: &[u8]) {
        const FULL: usize = 1024;
        let stream = matches!(payload_type, PayloadType::OUTPUT | PayloadType::STDERR);
        if let Some((last_type, last)) = self.queue.back_mut()
            && stream
            && *last_type == payload_type
            && last.len() < FULL
        {
            let take = (FULL - last.len()).min(bytes.len());
            last.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
        for chunk in bytes.chunks(FULL) {
            self.queue.push_back((payload_type, chunk.to_vec()));
        }
    }

    /// Queue terminal output, holding back a trailing incomplete UTF-8 sequence (spec §9).
    fn queue_text(&mut self, payload_type: PayloadType, bytes: Vec<u8>) {
        let mut text = std::mem::take(&mut self.utf8_tail);
        text.extend(bytes);
        let split_characters = self.fault(|f| f.split_characters).unwrap_or(false);
        if split_characters {
            // The agent only "usually" splits on character boundaries: cut this read right
            // after the first lead byte of a multi-byte character, in messages of their own.
            if let Some(lead) = text.iter().position(|&b| b >= 0xc0)
                && lead + 1 < text.len()
            {
                let rest = text.split_off(lead + 1);
                for chunk in text.chunks(1024).chain(rest.chunks(1024)) {
                    self.queue.push_back((payload_type, chunk.to_vec()));
                }
            } else {
                self.queue_bytes(payload_type, &text);
            }
            return;
        }
        let cut = incomplete_utf8_tail(&text);
        self.utf8_tail = text.split_off(text.len() - cut);
        self.queue_bytes(payload_type, &text);
    }

    fn end(&mut self, reason: &str) {
        if self.ending.is_none() {
            self.ending = Some((reason.to_owned(), Instant::now()));
        }
    }

    fn on_tick(&mut self) {
        self.release_input();
        let now = Instant::now();
        if now.saturating_duration_since(self.last_report) > Duration::from_secs(1) {
            self.last_report = now;
            tracing::debug!(session = %self.session_id, in_flight = self.reliable.in_flight(), queued = self.queue.len(), attached = self.out.is_some(), paused = self.paused, "agent: state");
        }
        while self
            .delayed_acks
            .front()
            .is_some_and(|(due, _)| *due <= now)
        {
            if let Some((_, ack)) = self.delayed_acks.pop_front() {
                self.send_frame(ack);
            }
        }
        if !self.paused && self.out.is_some() {
            if self.pacing {
                // As the real agent: the oldest message only, checked every 100 ms.
                if now >= self.next_resend_check {
                    self.next_resend_check = now + Duration::from_millis(100);
                    if let Some(bytes) = self.reliable.due(now) {
                        self.send_frame(bytes);
                    }
                }
            } else {
                for bytes in self.reliable.due_many(now, 64) {
                    self.send_frame(bytes);
                }
            }
        }
        if let Handshake::Awaiting(since) = self.handshake
            && now.saturating_duration_since(since) > Duration::from_secs(15)
        {
            self.end("Session handshake timed out: the client did not answer within 15 seconds; upgrade the client.");
        }
        let terminated = {
            let world = self.shared.world();
            world
                .session_index
                .get(&self.session_id)
                .map(|&i| world.sessions[i].status)
                == Some(SessionStatus::Terminated)
        };
        if terminated {
            self.end("");
        }
        if self.ending.is_none()
            && now.saturating_duration_since(self.last_activity) > self.idle_timeout
        {
            self.end("Your session timed out due to inactivity and has been terminated.");
        }
        if let Some((last_heard, next_nop)) = &mut self.mux_keepalive {
            if now.saturating_duration_since(*last_heard) > Duration::from_secs(30) {
                self.mux_keepalive = None;
                self.end("smux keepalive timed out");
            } else if now >= *next_nop {
                *next_nop = now + Duration::from_secs(10);
                self.queue_bytes(PayloadType::OUTPUT, &mux::nop());
            }
        }
        if let Some((reason, since)) = self.ending.clone() {
            // Let queued and unacknowledged output drain for up to 2 s, then close.
            let drained = self.queue.is_empty() && self.reliable.drained();
            if drained
                || now.saturating_duration_since(since) > Duration::from_secs(2)
                || self.out.is_none()
            {
                self.close_channel(&reason);
            }
        }
    }

    fn flush(&mut self) {
        if self.paused || self.out.is_none() {
            return;
        }
        let now = Instant::now();
        // New output waits while the socket is backed up.
        while self.reliable.has_room() && self.outbox.len() < 8 {
            if self.queue.is_empty() {
                // Nothing waits: output that comes later starts the pacing schedule afresh.
                self.pacer.idle();
                break;
            }
            if self.pacing && !self.pacer.try_take(now) {
                break;
            }
            let Some((payload_type, payload)) = self.queue.pop_front() else {
                break;
            };
            self.count_frame();
            let bytes = self.reliable.output(now, payload_type, payload);
            self.send_frame(bytes);
        }
    }

    fn close_channel(&mut self, reason: &str) {
        let body = json!({
            "MessageId": uuid::Uuid::new_v4().to_string(),
            "CreatedDate": crate::wire::iso_seconds(world_now(&self.shared)),
            "DestinationId": self.target,
            "SessionId": self.session_id,
            "MessageType": "channel_closed",
            "SchemaVersion": 1,
            "Output": reason,
        });
        let payload = body.to_string().into_bytes();
        let standard = self.fault(|f| f.standard_channel_closed).unwrap_or(false);
        let frame = if standard {
            self.reliable
                .control(Instant::now(), MessageType::ChannelClosed, payload)
        } else {
            short_channel_closed(&payload)
        };
        self.send_frame(frame);
        self.outbox.push_back(Outbound::Close);
        self.drain_outbox();
        self.set_status(SessionStatus::Terminated);
        self.finished = true;
    }

    /// Make the session's folder; on failure the session ends with the reason.
    fn make_home(&mut self, what: &str) -> Option<Arc<SessionHome>> {
        match self.shared.homes().create(&self.session_id) {
            Ok(home) => {
                self.home = Some(home.clone());
                Some(home)
            }
            Err(error) => {
                self.end(&format!(
                    "Unable to start the {what}: cannot make its folder: {error}"
                ));
                None
            }
        }
    }

    fn start_shell(&mut self) {
        let Some(home) = self.make_home("shell") else {
            return;
        };
        let command = match &self.plan {
            Plan::Shell { command } => command.clone(),
            _ => None,
        };
        match spawn_pty(home, command.as_deref(), self.local_tx.clone()) {
            Ok(handles) => self.pty = Some(handles),
            Err(why) => self.end(&format!("Unable to start the shell: {why}")),
        }
    }

    fn start_command(&mut self, command: &str) {
        let Some(home) = self.make_home("command") else {
            return;
        };
        let tx = self.local_tx.clone();
        let command = command.to_owned();
        tokio::spawn(async move {
            let mut sh = tokio::process::Command::new("sh");
            sh.arg("-c")
                .arg(&command)
                .current_dir(home.path())
                .env("HOME", home.path())
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true);
            // A group of its own, so what the command starts goes with it.
            #[cfg(unix)]
            sh.process_group(0);
            let child = sh.spawn();
            // Declared after the child: dropped first, whichever way this task ends.
            let mut group = CommandGroup {
                leader: None,
                _home: home,
            };
            let mut child = match child {
                Ok(child) => {
                    group.leader = child.id();
                    child
                }
                Err(e) => {
                    let _ = tx
                        .send(Local::StdErr(
                            format!("cannot run the command: {e}\n").into_bytes(),
                        ))
                        .await;
                    let _ = tx.send(Local::Exited(127)).await;
                    return;
                }
            };
            let mut stdout = child.stdout.take();
            let mut stderr = child.stderr.take();
            let out_tx = tx.clone();
            let out_task = tokio::spawn(async move {
                let mut buf = vec![0u8; 1024];
                while let Some(pipe) = stdout.as_mut() {
                    match pipe.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if out_tx.send(Local::Output(buf[..n].to_vec())).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
            let err_tx = tx.clone();
            let err_task = tokio::spawn(async move {
                let mut buf = vec![0u8; 1024];
                while let Some(pipe) = stderr.as_mut() {
                    match pipe.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if err_tx.send(Local::StdErr(buf[..n].to_vec())).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
            let ran = async {
                let _ = out_task.await;
                let _ = err_task.await;
                child.wait().await
            };
            let status = tokio::select! {
                status = ran => Some(status),
                // The session is over (its agent task ended): the command goes with it.
                () = tx.closed() => None,
            };
            match status {
                Some(status) => {
                    let code = status.ok().and_then(|s| s.code()).unwrap_or(-1);
                    let _ = tx.send(Local::Exited(code)).await;
                }
                None => {
                    let _ = child.kill().await;
                }
            }
            // Only now, with the command and what it started gone, may its folder go.
            drop(group);
        });
    }

    fn cleanup(&mut self) {
        self.pty = None;
        self.streams.clear();
        self.tcp = None;
        self.home = None;
        self.shared.agents().remove(&self.session_id);
    }
}

impl Drop for Agent {
    /// However the task ends (the session's end, the sandbox stopping, the runtime dropping the
    /// task, a panic), the session's processes are told to go and its folder follows them.
    fn drop(&mut self) {
        self.cleanup();
    }
}

fn world_now(shared: &Shared) -> time::OffsetDateTime {
    shared.world().now()
}

/// How many bytes at the end of `bytes` start a UTF-8 sequence that is not complete yet.
fn incomplete_utf8_tail(bytes: &[u8]) -> usize {
    for back in 1..=3.min(bytes.len()) {
        let byte = bytes[bytes.len() - back];
        if byte & 0xc0 == 0x80 {
            continue; // a continuation byte: look further back
        }
        let needed = match byte {
            b if b & 0xe0 == 0xc0 => 2,
            b if b & 0xf0 == 0xe0 => 3,
            b if b & 0xf8 == 0xf0 => 4,
            _ => return 0,
        };
        return if needed > back { back } else { 0 };
    }
    0
}

/// `channel_closed` as MGS is reported to send it (spec §3.4): a 112-byte header without
/// PayloadType, the type NUL-padded, the payload length at 112 and the payload from 116.
fn short_channel_closed(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(116 + payload.len());
    out.extend_from_slice(&112u32.to_be_bytes());
    let mut name = [0u8; 32];
    name[..14].copy_from_slice(b"channel_closed");
    out.extend_from_slice(&name);
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(&wall_ms().to_be_bytes());
    out.extend_from_slice(&0i64.to_be_bytes());
    out.extend_from_slice(&0u64.to_be_bytes());
    out.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    out.extend_from_slice(&sha2::Sha256::digest(payload));
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_tails_are_held_back_only_when_incomplete() {
        assert_eq!(incomplete_utf8_tail(b"abc"), 0);
        assert_eq!(incomplete_utf8_tail("é".as_bytes()), 0);
        assert_eq!(incomplete_utf8_tail(&"é".as_bytes()[..1]), 1);
        assert_eq!(incomplete_utf8_tail(&"☃".as_bytes()[..2]), 2);
        assert_eq!(incomplete_utf8_tail(&"🦀".as_bytes()[..3]), 3);
        assert_eq!(incomplete_utf8_tail("🦀".as_bytes()), 0);
    }
}
