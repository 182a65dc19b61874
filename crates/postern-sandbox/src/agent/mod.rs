//! The agent side of the Session Manager data channel, as MGS and the SSM Agent play it (spec §10),
//! behind the `ws://` stream URL StartSession hands out.
//!
//! A websocket connection opens with the OpenDataChannel text frame; its single-use token must be
//! the one StartSession or ResumeSession last minted for the session. The connection then attaches
//! to the session's agent task ([`session`]), which outlives it: sequence state, unacknowledged
//! output and the shell or TCP connections survive a dropped socket, and the next connection
//! (with a token from ResumeSession) carries on where the last stopped.
//!
//! The agent uses postern-ssm only for framing; its reliability ([`reliable`]), its smux server
//! ([`mux`]) and its session logic are its own. Shells run in real PTYs, commands in their own
//! process group, each in a throw-away HOME ([`home`]) that goes with the session, however it ends,
//! once its processes are gone (the sandbox stopping or being dropped ends every session); port
//! sessions dial 127.0.0.1 (any `host` of the remote-host document is mapped to loopback). Faults
//! ([`faults::Faults`]) are injected here, at the websocket.

pub mod faults;
pub mod home;
mod local;
pub mod mux;
pub mod pacer;
mod plan;
pub mod reliable;
pub mod session;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::Response;
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc;

use crate::shared::Shared;
use crate::world::SessionStatus;

pub use faults::{Faults, Injected};

/// A websocket attached to a session's agent task.
#[derive(Debug)]
pub struct Attachment {
    /// Frames the client sent (after inbound faults).
    pub inbound: mpsc::Receiver<Vec<u8>>,
    /// Frames for the client, or the order to close.
    pub outbound: mpsc::Sender<Outbound>,
}

/// What the agent task hands the socket.
#[derive(Debug)]
pub enum Outbound {
    /// A binary frame.
    Frame(Vec<u8>),
    /// Close the websocket (after the channel_closed frame).
    Close,
}

/// `GET /v1/data-channel/{session_id}`: upgrade and serve the data channel.
///
/// An upgrade signed with SigV4 (as newer plugins and Postern sign it, service `ssmmessages`)
/// must carry a valid signature of a known caller, or it is refused with 403; an unsigned one is
/// let through, since older clients do not sign (spec §10). The token decides admission.
pub async fn connect(
    State(shared): State<Arc<Shared>>,
    Path(session_id): Path<String>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let Err(refusal) = check_signature(&shared, &session_id, &uri, &headers) {
        use axum::response::IntoResponse as _;
        *shared
            .world()
            .refused_upgrades
            .entry(session_id.clone())
            .or_default() += 1;
        return (axum::http::StatusCode::FORBIDDEN, refusal).into_response();
    }
    let hang = {
        let mut world = shared.world();
        let count = world.upgrades.entry(session_id.clone()).or_default();
        *count += 1;
        let count = *count;
        world
            .faults
            .get(&session_id)
            .and_then(|faults| faults.hang_upgrades_after)
            .is_some_and(|answered| count > answered)
    };
    if hang {
        // A dead path: the client's dial must give up on its own. The path comes back only
        // once the session has ended (then the connection is refused like any other).
        for _ in 0..1200 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let active = shared
                .world()
                .session_mut(&session_id)
                .is_some_and(|session| session.status.is_active());
            if !active {
                break;
            }
        }
    }
    upgrade.on_upgrade(move |socket| serve(shared, session_id, socket))
}

/// Check the upgrade's SigV4 signature, if it has one; count the signed upgrades per session.
/// A refusal says why.
fn check_signature(
    shared: &Shared,
    session_id: &str,
    uri: &axum::http::Uri,
    headers: &axum::http::HeaderMap,
) -> Result<(), String> {
    let authorization = match crate::sigv4::Authorization::from_headers(headers) {
        Ok(authorization) => authorization,
        Err(crate::sigv4::AuthorizationProblem::Missing) => return Ok(()),
        Err(crate::sigv4::AuthorizationProblem::Incomplete(text)) => return Err(text),
    };
    if authorization.service != "ssmmessages" {
        return Err(format!(
            "Credential should be scoped to correct service: 'ssmmessages', not '{}'.",
            authorization.service
        ));
    }
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    let request = crate::sigv4::ReceivedRequest {
        method: "GET",
        path_and_query,
        headers,
        body: &[],
    };
    let mut world = shared.world();
    match crate::auth::authenticate(&world, Ok(&authorization), &request) {
        Ok(_) => {
            *world
                .signed_upgrades
                .entry(session_id.to_owned())
                .or_default() += 1;
            Ok(())
        }
        Err(failure) => {
            let error = failure.into_error(crate::wire::Service::Ssm);
            Err(format!("{}: {}", error.code, error.message))
        }
    }
}

async fn serve(shared: Arc<Shared>, session_id: String, mut socket: WebSocket) {
    // The first frame is OpenDataChannel (text JSON) with the token.
    let first = tokio::time::timeout(Duration::from_secs(10), socket.recv()).await;
    let opened = match first {
        Ok(Some(Ok(Message::Text(text)))) => serde_json::from_str::<serde_json::Value>(&text).ok(),
        Ok(Some(Ok(Message::Binary(bytes)))) => {
            serde_json::from_slice::<serde_json::Value>(&bytes).ok()
        }
        _ => None,
    };
    let token = opened
        .as_ref()
        .and_then(|v| v.get("TokenValue"))
        .and_then(|t| t.as_str())
        .map(str::to_owned);
    let admitted = {
        let mut world = shared.world();
        match (world.session_mut(&session_id), token) {
            (Some(session), Some(token))
                if session.status.is_active() && session.token.as_deref() == Some(&token) =>
            {
                // Single use: the next connection needs a token from ResumeSession.
                session.token = None;
                true
            }
            _ => false,
        }
    };
    if !admitted {
        let _ = socket
            .send(Message::Close(Some(CloseFrame {
                code: 1008,
                reason: "invalid or used token".into(),
            })))
            .await;
        return;
    }
    let attach = session::attach_point(&shared, &session_id);
    let (inbound_tx, inbound_rx) = mpsc::channel(256);
    // Bounded like a socket buffer: the agent holds new output back while it is full, so a
    // dropped socket loses about what a real one would.
    let (outbound_tx, outbound_rx) = mpsc::channel(32);
    if attach
        .send(Attachment {
            inbound: inbound_rx,
            outbound: outbound_tx,
        })
        .await
        .is_err()
    {
        return;
    }
    pump(shared, session_id, socket, inbound_tx, outbound_rx).await;
}

/// Move frames between the websocket and the agent task, injecting the session's faults, and
/// count what was injected.
async fn pump(
    shared: Arc<Shared>,
    session_id: String,
    socket: WebSocket,
    inbound: mpsc::Sender<Vec<u8>>,
    outbound: mpsc::Receiver<Outbound>,
) {
    let mut injected = Injected::default();
    pump_frames(
        &shared,
        &session_id,
        socket,
        inbound,
        outbound,
        &mut injected,
    )
    .await;
    let mut world = shared.world();
    world.injected.add(&injected);
    if let Some(session) = world.session_mut(&session_id)
        && session.status == SessionStatus::Connected
    {
        session.status = SessionStatus::Disconnected;
    }
}

async fn pump_frames(
    shared: &Shared,
    session_id: &str,
    mut socket: WebSocket,
    inbound: mpsc::Sender<Vec<u8>>,
    mut outbound: mpsc::Receiver<Outbound>,
    injected: &mut Injected,
) {
    let faults = shared
        .world()
        .faults
        .get(session_id)
        .cloned()
        .unwrap_or_default();
    let mut rng = rand::rngs::StdRng::from_os_rng();
    let mut frames: u64 = 0;
    let mut held_in: VecDeque<Vec<u8>> = VecDeque::new();
    let mut held_out: VecDeque<Vec<u8>> = VecDeque::new();
    loop {
        tokio::select! {
            message = socket.recv() => {
                let bytes = match message {
                    Some(Ok(Message::Binary(bytes))) => bytes.to_vec(),
                    Some(Ok(Message::Text(text))) => text.as_bytes().to_vec(),
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => break,
                };
                frames += 1;
                for bytes in perturb(&faults, &mut rng, &mut held_in, bytes, injected) {
                    if inbound.send(bytes).await.is_err() {
                        return;
                    }
                }
            }
            out = outbound.recv() => {
                match out {
                    Some(Outbound::Frame(bytes)) => {
                        frames += 1;
                        for bytes in perturb(&faults, &mut rng, &mut held_out, bytes, injected) {
                            if socket.send(Message::Binary(bytes.into())).await.is_err() {
                                return;
                            }
                        }
                    }
                    Some(Outbound::Close) | None => {
                        let _ = socket.send(Message::Close(None)).await;
                        return;
                    }
                }
            }
        }
        if *injected != Injected::default() {
            // Published at once, so a test reading the counts sees every fault so far.
            shared.world().injected.add(injected);
            *injected = Injected::default();
        }
        if let Some(after) = faults.stall_after
            && frames >= after
            && take_budget(shared, session_id, |f| &mut f.stall_after)
        {
            // Hold the socket open and silent: no reading (so no pongs), no writing.
            tracing::info!(session = %session_id, "fault: stalling the websocket");
            shared.world().injected.stalls += 1;
            tokio::time::sleep(Duration::from_secs(120)).await;
            return;
        }
        let drop_now = faults
            .drop_socket_after
            .is_some_and(|n| frames >= n && faults.drop_socket_times > 0)
            || (faults.drop_socket_chance > 0.0
                && rng.random_bool(faults.drop_socket_chance.min(1.0)));
        if drop_now {
            if faults.drop_socket_after.is_some() {
                let mut world = shared.world();
                if let Some(f) = world.faults.get_mut(session_id) {
                    f.drop_socket_times = f.drop_socket_times.saturating_sub(1);
                }
            }
            tracing::info!(session = %session_id, frames, "fault: dropping the websocket");
            shared.world().injected.sockets_dropped += 1;
            // No close frame: the connection just dies.
            return;
        }
    }
}

/// Use up a one-shot fault: clear it in the session's fault set; true if it was still armed.
fn take_budget(
    shared: &Shared,
    session_id: &str,
    field: impl Fn(&mut Faults) -> &mut Option<u64>,
) -> bool {
    let mut world = shared.world();
    let Some(faults) = world.faults.get_mut(session_id) else {
        return false;
    };
    field(faults).take().is_some()
}

/// Apply frame-level faults: maybe drop, duplicate or hold back behind the next frame.
fn perturb(
    faults: &Faults,
    rng: &mut impl Rng,
    held: &mut VecDeque<Vec<u8>>,
    bytes: Vec<u8>,
    injected: &mut Injected,
) -> Vec<Vec<u8>> {
    if !faults.perturbs_frames() {
        return vec![bytes];
    }
    let mut out = Vec::new();
    if rng.random_bool(faults.drop_rate.clamp(0.0, 1.0)) {
        injected.frames_dropped += 1;
        return out;
    }
    if rng.random_bool(faults.reorder_rate.clamp(0.0, 1.0)) {
        injected.frames_reordered += 1;
        held.push_back(bytes);
        return out;
    }
    if rng.random_bool(faults.duplicate_rate.clamp(0.0, 1.0)) {
        injected.frames_duplicated += 1;
        out.push(bytes.clone());
    }
    out.push(bytes);
    out.extend(held.drain(..));
    out
}
