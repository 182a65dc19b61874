//! Port-forwarding tunnels: a local listener on 127.0.0.1 whose connections are carried over one
//! or more Session Manager port sessions (`AWS-StartPortForwardingSession`, or
//! `…ToRemoteHost` through the instance to another host).
//!
//! Each session is driven by a worker in the mode the agent speaks ([`PortMode`]): smux (many
//! connections per session), or basic (one connection at a time; the next waits). A pool of N
//! sessions behind one port multiplies throughput past the agent's per-session pacing; new
//! connections go to the least busy session. A worker whose session ends for good starts a
//! fresh one, so a tunnel outlives a session the service gave up. Counters of bytes and
//! connections are kept per tunnel.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use postern_ssm::smux::{self, SmuxEvent};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc, watch};

use crate::session::{
    self, Flag, PortMode, SessionEnd, SessionError, SessionEvent, SessionKind, SessionOptions,
    SessionRequest, SsmAccess,
};

/// What to forward.
#[derive(Clone, Debug)]
pub struct TunnelSpec {
    /// The instance the sessions run on.
    pub target: String,
    /// The port connections reach (on the instance, or on `host`).
    pub remote_port: u16,
    /// Another host reached through the instance (an RDS endpoint, say).
    pub host: Option<String>,
    /// The local address; only loopback is accepted, port 0 picks a free port.
    pub local: SocketAddr,
    /// How many sessions carry the connections.
    pub pool: usize,
}

/// The most sessions one tunnel may carry its connections over.
pub const MAX_POOL: usize = 32;

/// What happens in a tunnel, for a front end's live list (the counters of [`TunnelStats`] are
/// the totals; these say when). A receiver that falls behind loses the oldest events, never
/// the tunnel's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TunnelEvent {
    /// A local client connected; connections are numbered from 1 in each tunnel.
    ConnectionOpened {
        /// Its number.
        connection: u64,
    },
    /// A connection closed (either side).
    ConnectionClosed {
        /// Its number.
        connection: u64,
    },
    /// A session of the pool ended (its connections with it); another is started.
    SessionEnded {
        /// How it ended.
        end: SessionEnd,
    },
    /// A session replaced one that ended.
    SessionReplaced,
    /// A replacement session could not be started; Postern tries again every few seconds.
    RestartFailed {
        /// Why, in a sentence.
        message: String,
    },
    /// The agent could not connect to the remote port (nothing listens there, or a security
    /// group or the host's firewall refuses it).
    RemotePortUnreachable {
        /// The port.
        port: u16,
        /// The host it was reached through the instance, if not the instance itself.
        host: Option<String>,
    },
    /// The tunnel was closed: its listener, its sessions and every connection (some opened
    /// while it closed get no `ConnectionClosed` of their own). The last event.
    Closed {
        /// How many sessions AWS did not confirm ended.
        unconfirmed: usize,
    },
}

/// Why a tunnel could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    /// The local address is not a loopback address.
    #[error("tunnels listen on loopback only (127.0.0.1 or ::1), not {0}")]
    NotLoopback(SocketAddr),
    /// The local port could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A session could not be started.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The pool size is out of bounds.
    #[error("a tunnel carries its connections over 1 to {MAX_POOL} sessions, not {0}")]
    Pool(usize),
}

/// Live counters of a tunnel.
#[derive(Debug, Default)]
pub struct TunnelStats {
    /// Bytes from local clients to the remote port.
    pub bytes_up: AtomicU64,
    /// Bytes from the remote port to local clients.
    pub bytes_down: AtomicU64,
    /// Connections accepted so far.
    pub connections: AtomicU64,
    /// Connections open now.
    pub open: AtomicUsize,
    /// Sessions started so far (the pool, plus any that replaced ended ones).
    pub sessions: AtomicU64,
    /// Bytes from the remote port not yet written to local clients (bounded: see
    /// [`MAX_BACKLOG`]).
    pub waiting_for_local: AtomicUsize,
    /// Sessions closed without AWS confirming they ended (TerminateSession failed or went
    /// unanswered); AWS ends them after the account's idle timeout.
    pub unconfirmed_closes: AtomicUsize,
}

/// A running tunnel; dropping it (or [`Tunnel::close`]) closes its sessions.
#[derive(Debug)]
pub struct Tunnel {
    local: SocketAddr,
    stats: Arc<TunnelStats>,
    modes: Vec<PortMode>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    events: broadcast::Sender<TunnelEvent>,
}

impl Tunnel {
    /// What happens in the tunnel from now on. The stream ends when the tunnel is gone.
    pub fn subscribe(&self) -> broadcast::Receiver<TunnelEvent> {
        self.events.subscribe()
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The counters.
    pub fn stats(&self) -> &TunnelStats {
        &self.stats
    }

    /// The mode of each session in the pool, as first started.
    pub fn modes(&self) -> &[PortMode] {
        &self.modes
    }

    /// Close the listener and every session, and wait until each has ended on the service (at
    /// most about [`session::CLOSE_LIMIT`]; the sessions close side by side). Returns how many
    /// sessions AWS did not confirm ended (they end after the account's idle timeout).
    pub async fn close(mut self) -> usize {
        let unfinished = stop_and_wait(&self.stop, std::mem::take(&mut self.tasks)).await;
        let unconfirmed = self.stats.unconfirmed_closes.load(Ordering::Relaxed) + unfinished;
        let _ = self.events.send(TunnelEvent::Closed { unconfirmed });
        unconfirmed
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Tell every worker to stop, and wait for them to have ended their sessions (they do so side
/// by side); how many had not finished in time.
async fn stop_and_wait(
    stop: &watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
) -> usize {
    let _ = stop.send(true);
    let deadline = tokio::time::Instant::now() + session::CLOSE_LIMIT + Duration::from_secs(1);
    let mut unfinished = 0;
    for mut task in tasks {
        if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
            // Stopped, not left behind (its session ends after the account's idle timeout).
            task.abort();
            unfinished += 1;
        }
    }
    unfinished
}

/// A connection handed to a worker, with its number.
struct Handoff {
    socket: TcpStream,
    connection: u64,
}

/// How busy each worker is: connections handed to it and not yet closed, for the least-busy
/// choice.
struct WorkerSlot {
    connections: mpsc::Sender<Handoff>,
    load: Arc<AtomicUsize>,
    basic: bool,
}

/// Start a tunnel: bind the listener, start the pool's sessions, then accept.
pub async fn open(
    access: &SsmAccess,
    spec: TunnelSpec,
    options: SessionOptions,
) -> Result<Tunnel, TunnelError> {
    if !spec.local.ip().is_loopback() {
        return Err(TunnelError::NotLoopback(spec.local));
    }
    if !(1..=MAX_POOL).contains(&spec.pool) {
        return Err(TunnelError::Pool(spec.pool));
    }
    let (events, _) = broadcast::channel(256);
    let listener = TcpListener::bind(spec.local)
        .await
        .map_err(|source| TunnelError::Bind {
            address: spec.local,
            source,
        })?;
    let local = listener.local_addr().map_err(|source| TunnelError::Bind {
        address: spec.local,
        source,
    })?;
    let stats = Arc::new(TunnelStats::default());
    let (stop, stopped) = watch::channel(false);
    let mut slots = Vec::new();
    let mut modes = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..spec.pool {
        let first = match start_session(access, &spec, &options, stopped.clone()).await {
            Ok(first) => first,
            Err(error) => {
                // The sessions started so far must not stay open on the service.
                let _ = stop_and_wait(&stop, tasks).await;
                return Err(error.into());
            }
        };
        stats.sessions.fetch_add(1, Ordering::Relaxed);
        modes.push(first.mode);
        let (tx, rx) = mpsc::channel(1024);
        let load = Arc::new(AtomicUsize::new(0));
        slots.push(WorkerSlot {
            connections: tx,
            load: load.clone(),
            basic: !matches!(first.mode, PortMode::Mux { .. }),
        });
        let worker = Worker {
            access: access.clone(),
            spec: spec.clone(),
            options: options.clone(),
            stats: stats.clone(),
            load,
            stop: stopped.clone(),
            events: events.clone(),
        };
        tasks.push(tokio::spawn(worker.run(first, rx)));
    }
    tasks.push(tokio::spawn(accept(
        listener,
        slots,
        stats.clone(),
        stopped,
        events.clone(),
    )));
    Ok(Tunnel {
        local,
        stats,
        modes,
        stop,
        tasks,
        events,
    })
}

async fn accept(
    listener: TcpListener,
    slots: Vec<WorkerSlot>,
    stats: Arc<TunnelStats>,
    mut stop: watch::Receiver<bool>,
    events: broadcast::Sender<TunnelEvent>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => return,
        };
        let Ok((socket, _)) = accepted else { continue };
        let _ = socket.set_nodelay(true);
        let connection = stats.connections.fetch_add(1, Ordering::Relaxed) + 1;
        let _ = events.send(TunnelEvent::ConnectionOpened { connection });
        // The least busy session takes it; in basic mode an idle one if any (else it queues).
        // Its load counts the connection from now, so a burst of connections spreads over the
        // pool instead of all going to the session that was idle when the burst began.
        let chosen = slots
            .iter()
            .min_by_key(|s| (s.load.load(Ordering::Relaxed), s.basic));
        if let Some(slot) = chosen {
            slot.load.fetch_add(1, Ordering::Relaxed);
            let handoff = Handoff { socket, connection };
            if slot.connections.send(handoff).await.is_err() {
                slot.load.fetch_sub(1, Ordering::Relaxed);
                let _ = events.send(TunnelEvent::ConnectionClosed { connection });
            }
        }
    }
}

/// A started session and what it turned out to be.
struct Started {
    events: mpsc::Receiver<SessionEvent>,
    writer: session::SessionWriter,
    mode: PortMode,
}

/// Start one port session and wait for its handshake; a stop meanwhile ends it again (a
/// session started on the service is closed there, never abandoned).
async fn start_session(
    access: &SsmAccess,
    spec: &TunnelSpec,
    options: &SessionOptions,
    mut stop: watch::Receiver<bool>,
) -> Result<Started, SessionError> {
    let request =
        SessionRequest::port_forward(&spec.target, spec.remote_port, spec.host.as_deref());
    let session = session::open(access, request, options.clone()).await?;
    let (mut events, writer, _) = session.split();
    let stopping = || SessionError::Network("the tunnel is closing".into());
    // The handshake tells the mode; nothing is sent before it.
    let mode = if *stop.borrow() {
        Err(stopping())
    } else {
        let handshake = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(event) = events.recv().await {
                match event {
                    SessionEvent::Started(SessionKind::Port { mode, .. }) => return Ok(mode),
                    SessionEvent::Ended(end) => {
                        return Err(SessionError::Network(format!(
                            "the port session ended at once: {end}"
                        )));
                    }
                    _ => {}
                }
            }
            Err(SessionError::Network(
                "the port session ended before its handshake".into(),
            ))
        });
        tokio::select! {
            done = handshake => done
                .map_err(|_| SessionError::Network("the port session's handshake timed out".into()))
                .and_then(|mode| mode),
            _ = stop.changed() => Err(stopping()),
        }
    };
    let mode = match mode {
        Ok(mode) => mode,
        Err(error) => {
            session::close_and_wait(&writer, &mut events).await;
            return Err(error);
        }
    };
    Ok(Started {
        events,
        writer,
        mode,
    })
}

/// One session of the pool and the connections it carries.
struct Worker {
    access: SsmAccess,
    spec: TunnelSpec,
    options: SessionOptions,
    stats: Arc<TunnelStats>,
    load: Arc<AtomicUsize>,
    stop: watch::Receiver<bool>,
    events: broadcast::Sender<TunnelEvent>,
}

/// Bytes from one local connection, to the worker.
enum FromLocal {
    Data(u32, Vec<u8>),
    Closed(u32),
}

impl Worker {
    async fn run(self, first: Started, mut connections: mpsc::Receiver<Handoff>) {
        let mut current = Some(first);
        let mut stop = self.stop.clone();
        loop {
            let started = match current.take() {
                Some(started) => started,
                None => {
                    // The last session ended for good: start another for new connections.
                    match start_session(&self.access, &self.spec, &self.options, stop.clone()).await
                    {
                        Ok(started) => {
                            self.stats.sessions.fetch_add(1, Ordering::Relaxed);
                            let _ = self.events.send(TunnelEvent::SessionReplaced);
                            started
                        }
                        Err(error) => {
                            tracing::warn!(%error, "could not restart a tunnel session; retrying");
                            let _ = self.events.send(TunnelEvent::RestartFailed {
                                message: error.to_string(),
                            });
                            tokio::select! {
                                () = tokio::time::sleep(Duration::from_secs(2)) => continue,
                                _ = stop.changed() => return,
                            }
                        }
                    }
                }
            };
            let ended = match started.mode {
                PortMode::Mux { keepalive } => self.mux(started, keepalive, &mut connections).await,
                PortMode::Basic | PortMode::Stream => self.basic(started, &mut connections).await,
            };
            if ended || *self.stop.borrow() {
                return;
            }
        }
    }

    /// End this worker's session on the service and wait for it; a close AWS did not confirm is
    /// counted.
    async fn close(
        &self,
        writer: &session::SessionWriter,
        events: &mut mpsc::Receiver<SessionEvent>,
    ) {
        if !matches!(
            session::close_and_wait(writer, events).await,
            Some(SessionEnd::ClosedByUser)
        ) {
            self.stats
                .unconfirmed_closes
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Carry many connections over smux. Returns true when the tunnel is stopping.
    ///
    /// The loop never waits on the session while it has events to read: smux bytes for the
    /// session queue here and go out as the session makes room, and local readers are held back
    /// while that queue is long.
    async fn mux(
        &self,
        started: Started,
        keepalive: bool,
        connections: &mut mpsc::Receiver<Handoff>,
    ) -> bool {
        let Started {
            mut events, writer, ..
        } = started;
        let mut stop = self.stop.clone();
        let mut mux = smux::Session::new(Instant::now(), keepalive);
        let (local_tx, mut local_rx) = mpsc::channel::<FromLocal>(256);
        let mut writers: HashMap<u32, ToLocal> = HashMap::new();
        let backlog = Arc::new(Backlog::new(self.stats.clone()));
        let mut outgoing: VecDeque<Vec<u8>> = VecDeque::new();
        loop {
            let timer = async {
                match mux.poll_timeout() {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            let room_for_local = outgoing.len() < MAX_QUEUED_CHUNKS;
            tokio::select! {
                _ = stop.changed() => {
                    self.close(&writer, &mut events).await;
                    return true;
                }
                permit = writer.reserve(), if !outgoing.is_empty() => match permit {
                    Some(permit) => {
                        if let Some(bytes) = outgoing.pop_front() {
                            permit.send(bytes);
                        }
                    }
                    None => {
                        self.drop_all(&mut writers);
                        return *self.stop.borrow();
                    }
                },
                handoff = connections.recv() => {
                    let Some(Handoff { socket, connection }) = handoff else {
                        // The listener is gone: the tunnel is closing.
                        self.close(&writer, &mut events).await;
                        return true;
                    };
                    let stream = mux.open();
                    self.stats.open.fetch_add(1, Ordering::Relaxed);
                    writers.insert(
                        stream,
                        spawn_connection(
                            socket,
                            stream,
                            local_tx.clone(),
                            backlog.clone(),
                            (self.events.clone(), connection),
                        ),
                    );
                }
                local = local_rx.recv(), if room_for_local => match local {
                    Some(FromLocal::Data(stream, bytes)) => {
                        self.stats.bytes_up.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                        mux.write(stream, &bytes);
                    }
                    Some(FromLocal::Closed(stream)) => {
                        if writers.remove(&stream).is_some() {
                            self.load.fetch_sub(1, Ordering::Relaxed);
                            self.stats.open.fetch_sub(1, Ordering::Relaxed);
                        }
                        mux.close(stream);
                    }
                    None => {}
                },
                // Local clients slower than the remote side: stop reading the session until
                // they catch up, so the agent slows down instead of memory filling up.
                () = backlog.drained(), if backlog.full() => mux.reading_paused(Instant::now()),
                event = events.recv(), if !backlog.full() => match event {
                    Some(SessionEvent::Output(bytes)) => {
                        if let Err(error) = mux.handle_bytes(Instant::now(), &bytes) {
                            tracing::warn!(%error, "smux protocol error; restarting the session");
                            writer.close().await;
                            self.drop_all(&mut writers);
                            return false;
                        }
                    }
                    Some(SessionEvent::Flag(Flag::ConnectToPortError)) => self.unreachable(),
                    Some(SessionEvent::Ended(end)) => {
                        tracing::info!(?end, "tunnel session ended");
                        self.session_ended(end);
                        self.drop_all(&mut writers);
                        return *self.stop.borrow();
                    }
                    Some(_) => {}
                    None => {
                        self.drop_all(&mut writers);
                        return *self.stop.borrow();
                    }
                },
                () = timer => {
                    let now = Instant::now();
                    if backlog.full() {
                        mux.reading_paused(now);
                    }
                    mux.handle_timeout(now);
                }
            }
            while let Some(event) = mux.poll_event() {
                match event {
                    SmuxEvent::Data { stream, data } => {
                        self.stats
                            .bytes_down
                            .fetch_add(data.len() as u64, Ordering::Relaxed);
                        if let Some(w) = writers.get(&stream) {
                            w.send(data);
                        }
                    }
                    SmuxEvent::Closed { stream } => {
                        if writers.remove(&stream).is_some() {
                            self.load.fetch_sub(1, Ordering::Relaxed);
                            self.stats.open.fetch_sub(1, Ordering::Relaxed);
                        }
                    }
                    SmuxEvent::Dead => {
                        writer.close().await;
                        self.drop_all(&mut writers);
                        return false;
                    }
                }
            }
            while let Some(bytes) = mux.poll_bytes(CHUNK) {
                outgoing.push_back(bytes);
            }
        }
    }

    fn unreachable(&self) {
        tracing::warn!(
            port = self.spec.remote_port,
            "the agent could not connect to the remote port"
        );
        let _ = self.events.send(TunnelEvent::RemotePortUnreachable {
            port: self.spec.remote_port,
            host: self.spec.host.clone(),
        });
    }

    /// A session ended on its own (not by the tunnel closing).
    fn session_ended(&self, end: SessionEnd) {
        if !*self.stop.borrow() {
            let _ = self.events.send(TunnelEvent::SessionEnded { end });
        }
    }

    fn drop_all(&self, writers: &mut HashMap<u32, ToLocal>) {
        let n = writers.len();
        writers.clear();
        self.load.fetch_sub(n, Ordering::Relaxed);
        self.stats.open.fetch_sub(n, Ordering::Relaxed);
    }

    /// Carry one connection at a time (basic mode). Returns true when the tunnel is stopping.
    async fn basic(&self, started: Started, connections: &mut mpsc::Receiver<Handoff>) -> bool {
        let Started {
            mut events, writer, ..
        } = started;
        let mut stop = self.stop.clone();
        loop {
            // Idle: wait for a connection, or for the session to end.
            let handoff = loop {
                tokio::select! {
                    _ = stop.changed() => {
                        self.close(&writer, &mut events).await;
                        return true;
                    }
                    handoff = connections.recv() => match handoff {
                        Some(handoff) => break handoff,
                        // The listener is gone: the tunnel is closing.
                        None => {
                            self.close(&writer, &mut events).await;
                            return true;
                        }
                    },
                    event = events.recv() => match event {
                        Some(SessionEvent::Ended(end)) => {
                            self.session_ended(end);
                            return *self.stop.borrow();
                        }
                        None => return *self.stop.borrow(),
                        Some(SessionEvent::Flag(Flag::ConnectToPortError)) => self.unreachable(),
                        // Bytes for a connection that is gone are dropped.
                        Some(_) => {}
                    },
                }
            };
            self.stats.open.fetch_add(1, Ordering::Relaxed);
            let (local_tx, mut local_rx) = mpsc::channel::<FromLocal>(64);
            let backlog = Arc::new(Backlog::new(self.stats.clone()));
            let Handoff { socket, connection } = handoff;
            let to_local = spawn_connection(
                socket,
                0,
                local_tx,
                backlog.clone(),
                (self.events.clone(), connection),
            );
            let mut outgoing: VecDeque<Vec<u8>> = VecDeque::new();
            let mut local_done = false;
            let outcome = loop {
                if local_done && outgoing.is_empty() {
                    // The local connection ended and its bytes are out: the agent drops its side.
                    let _ = writer.flag(Flag::DisconnectToPort).await;
                    break None;
                }
                let room_for_local = !local_done && outgoing.len() < MAX_QUEUED_CHUNKS;
                tokio::select! {
                    _ = stop.changed() => break Some(true),
                    permit = writer.reserve(), if !outgoing.is_empty() => match permit {
                        Some(permit) => {
                            if let Some(bytes) = outgoing.pop_front() {
                                permit.send(bytes);
                            }
                        }
                        None => break Some(*self.stop.borrow()),
                    },
                    local = local_rx.recv(), if room_for_local => match local {
                        Some(FromLocal::Data(_, bytes)) => {
                            self.stats.bytes_up.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                            outgoing.push_back(bytes);
                        }
                        Some(FromLocal::Closed(_)) | None => local_done = true,
                    },
                    () = backlog.drained(), if backlog.full() => {}
                    event = events.recv(), if !backlog.full() => match event {
                        Some(SessionEvent::Output(bytes)) => {
                            self.stats.bytes_down.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                            to_local.send(bytes);
                        }
                        Some(SessionEvent::Flag(Flag::ConnectToPortError)) => self.unreachable(),
                        Some(SessionEvent::Ended(end)) => {
                            self.session_ended(end);
                            break Some(*self.stop.borrow());
                        }
                        None => break Some(*self.stop.borrow()),
                        Some(_) => {}
                    },
                }
            };
            drop(to_local);
            self.load.fetch_sub(1, Ordering::Relaxed);
            self.stats.open.fetch_sub(1, Ordering::Relaxed);
            match outcome {
                Some(true) => {
                    self.close(&writer, &mut events).await;
                    return true;
                }
                Some(false) => return false,
                None => {}
            }
        }
    }
}

/// Bytes handed to the session at a time.
const CHUNK: usize = 64 * 1024;
/// Chunks queued for the session before local readers are held back.
const MAX_QUEUED_CHUNKS: usize = 16;

/// Bytes from the remote side a session's local connections have not written yet, at most
/// [`MAX_BACKLOG`] before the worker stops reading the session. smux v1 has no per-stream flow
/// control, so like smux itself this holds every stream of the session back while one local
/// reader is slow: the agent slows down instead of Postern's memory filling up.
#[derive(Debug)]
struct Backlog {
    bytes: AtomicUsize,
    drained: tokio::sync::Notify,
    stats: Arc<TunnelStats>,
}

/// Bytes a session's local connections may have waiting before it stops reading the session.
pub const MAX_BACKLOG: usize = 8 * 1024 * 1024;

impl Backlog {
    fn new(stats: Arc<TunnelStats>) -> Self {
        Self {
            bytes: AtomicUsize::new(0),
            drained: tokio::sync::Notify::new(),
            stats,
        }
    }

    fn full(&self) -> bool {
        self.bytes.load(Ordering::Acquire) >= MAX_BACKLOG
    }

    /// Wait until the backlog may have dropped below the limit.
    async fn drained(&self) {
        self.drained.notified().await;
    }

    fn add(&self, n: usize) {
        self.bytes.fetch_add(n, Ordering::AcqRel);
        self.stats.waiting_for_local.fetch_add(n, Ordering::Relaxed);
    }

    fn remove(&self, n: usize) {
        let before = self.bytes.fetch_sub(n, Ordering::AcqRel);
        self.stats.waiting_for_local.fetch_sub(n, Ordering::Relaxed);
        if before >= MAX_BACKLOG && before - n < MAX_BACKLOG {
            self.drained.notify_one();
        }
    }
}

/// The way to one local connection: bytes sent here are written to it, counted in its
/// session's backlog until they are.
#[derive(Debug)]
struct ToLocal {
    tx: mpsc::UnboundedSender<Vec<u8>>,
    backlog: Arc<Backlog>,
    /// Told when the connection is done with (this is dropped).
    closed: (broadcast::Sender<TunnelEvent>, u64),
}

impl Drop for ToLocal {
    fn drop(&mut self) {
        let (events, connection) = &self.closed;
        let _ = events.send(TunnelEvent::ConnectionClosed {
            connection: *connection,
        });
    }
}

impl ToLocal {
    fn send(&self, bytes: Vec<u8>) {
        let n = bytes.len();
        self.backlog.add(n);
        if self.tx.send(bytes).is_err() {
            // The connection is gone: its bytes are dropped with it.
            self.backlog.remove(n);
        }
    }
}

/// Pump one local connection: its reads go to the worker as `FromLocal`, and the returned
/// sender's bytes are written to it. Reads are ≤ 32 KiB; the worker's bounded channel holds the
/// reader back when the session cannot take more.
fn spawn_connection(
    socket: TcpStream,
    stream: u32,
    to_worker: mpsc::Sender<FromLocal>,
    backlog: Arc<Backlog>,
    closed: (broadcast::Sender<TunnelEvent>, u64),
) -> ToLocal {
    let (mut reader, mut writer) = socket.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let closer = to_worker.clone();
    let written = backlog.clone();
    tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            let result = writer.write_all(&bytes).await;
            written.remove(bytes.len());
            if result.is_err() {
                // Whatever else waits for this connection is dropped, and leaves the backlog.
                rx.close();
                while let Ok(bytes) = rx.try_recv() {
                    written.remove(bytes.len());
                }
                let _ = closer.send(FromLocal::Closed(stream)).await;
                return;
            }
        }
        // The remote side closed this stream (or the session ended): close the connection.
        let _ = writer.shutdown().await;
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to_worker
                        .send(FromLocal::Data(stream, buf[..n].to_vec()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        let _ = to_worker.send(FromLocal::Closed(stream)).await;
    });
    ToLocal {
        tx,
        backlog,
        closed,
    }
}
