//! The client channel against the test agent over simulated links with a fake clock.

use std::time::{Duration, Instant};

use postern_ssm::channel::{
    Channel, ChannelConfig, ChannelEvent, CloseReason, SendError, SessionKind,
};
use postern_ssm::frame::{self, MessageType, PayloadType};
use postern_ssm::payload::Flag;
use postern_ssm::port::PortMode;
use rand::{Rng, SeedableRng};

use crate::agent::Agent;
use crate::link::Link;

fn ids(seed: u64) -> impl FnMut() -> [u8; 16] + Send + 'static {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    move || rng.random()
}

fn client(now: Instant, config: ChannelConfig) -> Channel {
    Channel::new(config, now, 1_700_000_000_000, ids(7))
}

fn unpaced() -> ChannelConfig {
    ChannelConfig {
        pace_per_second: None,
        ..ChannelConfig::default()
    }
}

/// Client and agent joined by two links, stepped on a fake clock.
struct Pair {
    now: Instant,
    client: Channel,
    agent: Agent,
    up: Link,
    down: Link,
    events: Vec<ChannelEvent>,
    output: Vec<u8>,
}

impl Pair {
    fn new(config: ChannelConfig, up: Link, down: Link) -> Self {
        let now = Instant::now();
        Self {
            now,
            client: client(now, config),
            agent: Agent::new(),
            up,
            down,
            events: Vec::new(),
            output: Vec::new(),
        }
    }

    /// One step: move frames across, run timers, collect events, advance the clock to the next
    /// thing that happens (at most `max_step`).
    fn step(&mut self, max_step: Duration) {
        let now = self.now;
        while let Some(bytes) = self.client.poll_transmit(now) {
            self.up.send(now, bytes);
        }
        while let Some(bytes) = self.agent.poll_transmit() {
            self.down.send(now, bytes);
        }
        for bytes in self.up.deliver(now) {
            self.agent.handle(now, &bytes);
        }
        for bytes in self.down.deliver(now) {
            self.client.handle_frame(now, &bytes);
        }
        self.client.handle_timeout(now);
        self.agent.handle_timeout(now);
        while let Some(event) = self.client.poll_event() {
            match event {
                ChannelEvent::Output(bytes) => self.output.extend_from_slice(&bytes),
                other => self.events.push(other),
            }
        }
        let next = [
            self.client.poll_timeout(),
            self.agent.next_timeout(),
            self.up.next_delivery(),
            self.down.next_delivery(),
            Some(now + max_step),
        ]
        .into_iter()
        .flatten()
        .filter(|t| *t > now)
        .min()
        .unwrap_or(now + max_step);
        self.now = next.min(now + max_step);
    }

    fn handshake(&mut self, agent_version: &str) {
        self.agent.start_port(self.now, agent_version);
        for _ in 0..10_000 {
            if self.client.is_ready() && self.agent.handshake_done() {
                return;
            }
            self.step(Duration::from_millis(5));
        }
        panic!("no handshake: {:?}", self.events);
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ ((i >> 10) as u8))
        .collect()
}

/// Both directions at once: `size` bytes each way, fed as fast as the windows allow.
fn transfer(pair: &mut Pair, size: usize) {
    let up_data = pattern(size, 1);
    let down_data = pattern(size, 2);
    let (mut up_sent, mut down_sent) = (0, 0);
    let mut steps = 0u64;
    while pair.agent.received.len() < size
        || pair.output.len() < size
        || !pair.client.is_idle()
        || pair.agent.unacked() > 0
    {
        steps += 1;
        assert!(
            steps < 5_000_000,
            "stuck: up {}/{size}, down {}/{size}",
            pair.agent.received.len(),
            pair.output.len()
        );
        if up_sent < size {
            let end = (up_sent + 64 * 1024).min(size);
            match pair.client.send_output(&up_data[up_sent..end]) {
                Ok(n) => up_sent += n,
                Err(SendError::WindowFull) => {}
                Err(other) => panic!("send: {other}"),
            }
        }
        while down_sent < size {
            let end = (down_sent + 1024).min(size);
            if !pair.agent.send(
                pair.now,
                PayloadType::OUTPUT,
                down_data[down_sent..end].to_vec(),
            ) {
                break;
            }
            down_sent = end;
        }
        pair.step(Duration::from_millis(2));
    }
    assert!(
        pair.agent.received == up_data,
        "client → agent bytes differ"
    );
    assert!(pair.output == down_data, "agent → client bytes differ");
}

#[test]
fn transfers_eight_mebibytes_each_way_exactly_once_through_loss_duplication_and_reordering() {
    let up = Link::new(11, Duration::from_millis(5)).lossy(0.02, 0.02, 0.02);
    let down = Link::new(12, Duration::from_millis(5)).lossy(0.02, 0.02, 0.02);
    let mut pair = Pair::new(unpaced(), up, down);
    pair.handshake("3.3.1611.0");
    assert!(
        pair.events
            .contains(&ChannelEvent::SessionStarted(SessionKind::Port {
                properties: [
                    ("localPortNumber", "0"),
                    ("portNumber", "5432"),
                    ("type", "LocalPortForwarding")
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
                mode: PortMode::Mux { keepalive: false },
            }))
    );
    transfer(&mut pair, 8 * 1024 * 1024);
    assert_eq!(
        pair.client.dropped(),
        0,
        "loss, duplication and reordering make no frame unreadable"
    );
    assert!(
        pair.agent.duplicates > 0,
        "the link duplicated and resent frames, so some arrived twice"
    );
}

#[test]
fn a_clean_link_needs_no_retransmission() {
    let mut pair = Pair::new(
        unpaced(),
        Link::new(1, Duration::from_millis(3)),
        Link::new(2, Duration::from_millis(3)),
    );
    pair.handshake("3.0.100.0");
    assert!(pair.events.iter().any(|e| matches!(
        e,
        ChannelEvent::SessionStarted(SessionKind::Port {
            mode: PortMode::Basic,
            ..
        })
    )));
    transfer(&mut pair, 256 * 1024);
    assert_eq!(pair.agent.duplicates, 0);
    // 256 messages of data, one handshake response: nothing more went up.
    let acks_and_data = pair.up.sent;
    assert!(
        acks_and_data <= 257 + 260,
        "{acks_and_data} frames for 257 messages and ~258 acks"
    );
}

#[test]
fn duplicates_are_acknowledged_again() {
    let now = Instant::now();
    let mut channel = client(now, unpaced());
    let mut agent = Agent::new();
    let first = agent.raw_output(0, PayloadType::OUTPUT, b"prompt$ ".to_vec());
    channel.handle_frame(now, &first);
    channel.handle_frame(now, &first);
    let mut acks = Vec::new();
    while let Some(bytes) = channel.poll_transmit(now) {
        acks.push(frame::decode(&bytes).expect("frame").frame);
    }
    assert_eq!(
        acks.len(),
        2,
        "one ack for the message and one for its duplicate"
    );
    for ack in &acks {
        assert_eq!(ack.message_type, MessageType::Acknowledge);
        assert_eq!(
            (ack.sequence, ack.flags, ack.payload_type),
            (0, 3, PayloadType::NONE)
        );
        let body: serde_json::Value = serde_json::from_slice(&ack.payload).expect("json");
        assert_eq!(body["AcknowledgedMessageSequenceNumber"], 0);
        assert_eq!(body["AcknowledgedMessageType"], "output_stream_data");
    }
    let outputs: Vec<_> = std::iter::from_fn(|| channel.poll_event())
        .filter(|e| matches!(e, ChannelEvent::Output(_)))
        .collect();
    assert_eq!(
        outputs,
        [ChannelEvent::Output(b"prompt$ ".to_vec())],
        "delivered once"
    );
}

#[test]
fn frames_with_bad_digests_are_dropped_unacknowledged() {
    let now = Instant::now();
    let mut channel = client(now, unpaced());
    let mut agent = Agent::new();
    let mut bytes = agent.raw_output(0, PayloadType::OUTPUT, b"hello".to_vec());
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    channel.handle_frame(now, &bytes);
    assert!(channel.poll_transmit(now).is_none(), "no acknowledgement");
    assert!(channel.poll_event().is_none());
    assert_eq!(channel.dropped(), 1);
}

#[test]
fn out_of_order_messages_wait_for_the_gap() {
    let now = Instant::now();
    let mut channel = client(now, unpaced());
    let mut agent = Agent::new();
    let second = agent.raw_output(1, PayloadType::OUTPUT, b"world".to_vec());
    let first = agent.raw_output(0, PayloadType::OUTPUT, b"hello ".to_vec());
    channel.handle_frame(now, &second);
    assert!(
        channel.poll_event().is_none(),
        "held back until the gap fills"
    );
    assert!(
        channel.poll_transmit(now).is_some(),
        "but acknowledged at once"
    );
    channel.handle_frame(now, &first);
    let mut text = Vec::new();
    while let Some(event) = channel.poll_event() {
        if let ChannelEvent::Output(bytes) = event {
            text.extend(bytes);
        }
    }
    assert_eq!(text, b"hello world");
}

#[test]
fn only_the_oldest_message_is_resent_once_per_timeout() {
    let start = Instant::now();
    let mut channel = client(start, unpaced());
    let mut agent = Agent::new();
    // A shell: the first output makes the channel ready.
    channel.handle_frame(
        start,
        &agent.raw_output(0, PayloadType::OUTPUT, b"$ ".to_vec()),
    );
    while channel.poll_transmit(start).is_some() {}
    channel.send_output(&[b'x'; 3000]).expect("sent");
    let sent: Vec<_> = std::iter::from_fn(|| channel.poll_transmit(start)).collect();
    assert_eq!(sent.len(), 3);
    let deadline = channel.poll_timeout().expect("a resend deadline");
    assert_eq!(deadline - start, Duration::from_millis(200), "initial RTO");
    channel.handle_timeout(deadline - Duration::from_millis(1));
    assert!(
        channel.poll_transmit(deadline).is_none(),
        "not before the timeout"
    );
    channel.handle_timeout(deadline);
    let resent: Vec<_> = std::iter::from_fn(|| channel.poll_transmit(deadline)).collect();
    assert_eq!(resent, vec![sent[0].clone()], "the head, byte for byte");
    channel.handle_timeout(deadline + Duration::from_millis(100));
    assert!(
        channel.poll_transmit(deadline).is_none(),
        "once per timeout, not every tick"
    );
}

#[test]
fn a_full_window_holds_the_sender_back_and_nothing_is_evicted() {
    let now = Instant::now();
    let config = ChannelConfig {
        window: 4,
        ..unpaced()
    };
    let mut channel = client(now, config);
    let mut agent = Agent::new();
    channel.handle_frame(
        now,
        &agent.raw_output(0, PayloadType::OUTPUT, b"$ ".to_vec()),
    );
    let taken = channel
        .send_output(&vec![7u8; 10 * 1024])
        .expect("some taken");
    assert_eq!(taken, 4 * 1024);
    assert_eq!(channel.send_output(b"more"), Err(SendError::WindowFull));
    assert_eq!(channel.in_flight(), 4);
}

#[test]
fn after_a_reconnect_every_unacknowledged_message_goes_again() {
    let mut pair = Pair::new(
        unpaced(),
        Link::new(3, Duration::from_millis(5)),
        Link::new(4, Duration::from_millis(5)),
    );
    pair.handshake("3.3.1611.0");
    pair.client
        .send_output(&pattern(20 * 1024, 9))
        .expect("sent");
    // The socket dies with everything in flight.
    while pair.client.poll_transmit(pair.now).is_some() {}
    pair.up.cut();
    pair.down.cut();
    assert_eq!(pair.client.in_flight(), 20);
    pair.client.reconnected(pair.now);
    let resent: Vec<_> = std::iter::from_fn(|| pair.client.poll_transmit(pair.now)).collect();
    let kinds: Vec<MessageType> = resent
        .iter()
        .map(|b| frame::decode(b).expect("frame").frame.message_type)
        .collect();
    let data = kinds
        .iter()
        .filter(|k| **k == MessageType::InputStreamData)
        .count();
    let acks = kinds
        .iter()
        .filter(|k| **k == MessageType::Acknowledge)
        .count();
    assert_eq!(
        data, 20,
        "every unacknowledged message at once, not one per timeout"
    );
    assert_eq!(
        acks, 2,
        "the agent's handshake messages acknowledged again, in case those acks died"
    );
    for bytes in resent {
        pair.up.send(pair.now, bytes);
    }
    for _ in 0..200 {
        pair.step(Duration::from_millis(5));
    }
    assert_eq!(pair.agent.received, pattern(20 * 1024, 9));
    assert!(pair.client.is_idle());
}

#[test]
fn kms_encrypted_sessions_are_refused_naming_the_preference() {
    let mut pair = Pair::new(
        unpaced(),
        Link::new(5, Duration::from_millis(2)),
        Link::new(6, Duration::from_millis(2)),
    );
    pair.agent.start_kms_shell(pair.now);
    for _ in 0..50 {
        pair.step(Duration::from_millis(2));
    }
    let closed = pair.events.iter().find_map(|e| match e {
        ChannelEvent::Closed(reason) => Some(reason.clone()),
        _ => None,
    });
    assert_eq!(closed, Some(CloseReason::KmsEncryptionRequired));
    let text = CloseReason::KmsEncryptionRequired.to_string();
    assert!(
        text.contains("Session Manager preferences") && text.contains("KMS encryption"),
        "{text}"
    );
    assert!(
        !pair.agent.handshake_done(),
        "the agent was told the action failed"
    );
}

#[test]
fn shells_start_on_the_first_output_and_send_the_size_then() {
    let now = Instant::now();
    let mut channel = client(now, unpaced());
    let mut agent = Agent::new();
    channel.resize(120, 40).expect("remembered");
    assert!(
        channel.poll_transmit(now).is_none(),
        "nothing is sent before the session starts"
    );
    channel.handle_frame(
        now,
        &agent.raw_output(0, PayloadType::OUTPUT, b"$ ".to_vec()),
    );
    let frames: Vec<_> = std::iter::from_fn(|| channel.poll_transmit(now))
        .map(|b| frame::decode(&b).expect("f").frame)
        .collect();
    let size = frames
        .iter()
        .find(|f| f.payload_type == PayloadType::SIZE)
        .expect("size sent");
    assert_eq!(size.payload, br#"{"cols":120,"rows":40}"#);
    assert_eq!(size.sequence, 0);
    channel.resize(120, 40).expect("unchanged");
    assert!(
        channel.poll_transmit(now).is_none(),
        "an unchanged size is not sent again"
    );
    assert_eq!(
        channel.poll_event(),
        Some(ChannelEvent::SessionStarted(SessionKind::Shell {
            session_type: String::new()
        }))
    );
}

#[test]
fn channel_closed_pause_and_flags_become_events() {
    let now = Instant::now();
    let mut channel = client(now, unpaced());
    let mut agent = Agent::new();
    channel.handle_frame(now, &agent.raw(MessageType::PausePublication, Vec::new()));
    channel.handle_frame(now, &agent.raw(MessageType::StartPublication, Vec::new()));
    channel.handle_frame(
        now,
        &agent.raw_output(
            0,
            PayloadType::FLAG,
            Flag::ConnectToPortError.to_bytes().to_vec(),
        ),
    );
    channel.handle_frame(
        now,
        &agent.raw(
            MessageType::ChannelClosed,
            br#"{"Output":"Session idle timeout"}"#.to_vec(),
        ),
    );
    let events: Vec<_> = std::iter::from_fn(|| channel.poll_event()).collect();
    assert_eq!(
        events,
        [
            ChannelEvent::Paused,
            ChannelEvent::Resumed,
            ChannelEvent::Flag(Flag::ConnectToPortError),
            ChannelEvent::Closed(CloseReason::ChannelClosed("Session idle timeout".into())),
        ]
    );
    assert!(channel.is_closed());
    assert_eq!(channel.send_output(b"x"), Err(SendError::Closed));
}

#[test]
fn pacing_spreads_messages_at_the_configured_rate() {
    let start = Instant::now();
    let config = ChannelConfig {
        pace_per_second: Some(500),
        window: 10_000,
        ..ChannelConfig::default()
    };
    let mut channel = client(start, config);
    let mut agent = Agent::new();
    channel.handle_frame(
        start,
        &agent.raw_output(0, PayloadType::OUTPUT, b"$ ".to_vec()),
    );
    while channel.poll_transmit(start).is_some() {}
    channel
        .send_output(&vec![1u8; 1000 * 1024])
        .expect("queued");
    let mut now = start;
    // The agent acknowledges nothing, so resends of the oldest message mix in: count each
    // sequence number once.
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 1000 {
        channel.handle_timeout(now);
        while let Some(bytes) = channel.poll_transmit(now) {
            seen.insert(frame::decode(&bytes).expect("frame").frame.sequence);
        }
        now += Duration::from_millis(1);
        assert!(
            now - start < Duration::from_secs(5),
            "stuck at {}",
            seen.len()
        );
    }
    let took = now - start;
    assert!(
        took >= Duration::from_millis(1990) && took <= Duration::from_millis(2300),
        "{took:?} for 1000 at 500/s"
    );
}

#[test]
fn three_acknowledgements_of_later_messages_resend_the_oldest_at_once() {
    let now = Instant::now();
    let mut channel = client(now, unpaced());
    let mut agent = Agent::new();
    channel.handle_frame(
        now,
        &agent.raw_output(0, PayloadType::OUTPUT, b"$ ".to_vec()),
    );
    while channel.poll_transmit(now).is_some() {}
    channel.send_output(&[b'x'; 5 * 1024]).expect("sent");
    let sent: Vec<Vec<u8>> = std::iter::from_fn(|| channel.poll_transmit(now)).collect();
    assert_eq!(sent.len(), 5);
    // The agent got messages 1, 2 and 3 but not 0.
    for bytes in &sent[1..4] {
        agent.handle(now, bytes);
    }
    let later = now + Duration::from_millis(5);
    while let Some(ack) = agent.poll_transmit() {
        channel.handle_frame(later, &ack);
    }
    let resent: Vec<Vec<u8>> = std::iter::from_fn(|| channel.poll_transmit(later)).collect();
    assert_eq!(
        resent,
        vec![sent[0].clone()],
        "the oldest again, long before its 200 ms timeout"
    );
}

/// A shell channel made ready by the agent's first output, with that output acknowledged.
fn ready_shell(now: Instant, config: ChannelConfig) -> (Channel, Agent) {
    let mut channel = client(now, config);
    let mut agent = Agent::new();
    channel.handle_frame(
        now,
        &agent.raw_output(0, PayloadType::OUTPUT, b"$ ".to_vec()),
    );
    while channel.poll_transmit(now).is_some() {}
    (channel, agent)
}

/// Send one message at `sent`, have the agent acknowledge it `rtt` later; returns the time
/// the acknowledgement arrived.
fn round_trip(channel: &mut Channel, agent: &mut Agent, sent: Instant, rtt: Duration) -> Instant {
    channel.send_output(b"k").expect("sent");
    let frames: Vec<_> = std::iter::from_fn(|| channel.poll_transmit(sent)).collect();
    assert_eq!(frames.len(), 1);
    let back = sent + rtt;
    agent.handle(back, &frames[0]);
    while let Some(ack) = agent.poll_transmit() {
        channel.handle_frame(back, &ack);
    }
    assert_eq!(channel.in_flight(), 0, "acknowledged");
    back
}

/// The retransmission timeout now: when a message sent now would first be resent.
fn current_rto(channel: &mut Channel, now: Instant) -> Duration {
    channel.send_output(b"probe").expect("sent");
    while channel.poll_transmit(now).is_some() {}
    channel.poll_timeout().expect("a resend deadline") - now
}

#[test]
fn the_resend_timeout_follows_measured_round_trips_up_to_a_second() {
    let start = Instant::now();
    let (mut channel, mut agent) = ready_shell(start, unpaced());
    let mut now = start;
    for _ in 0..30 {
        now = round_trip(&mut channel, &mut agent, now, Duration::from_millis(40));
    }
    let fast = current_rto(&mut channel, now);
    assert!(
        fast >= Duration::from_millis(40) && fast < Duration::from_millis(100),
        "steady 40 ms round trips: {fast:?}, not the initial 200 ms"
    );

    let (mut channel, mut agent) = ready_shell(start, unpaced());
    let mut now = start;
    for _ in 0..30 {
        now = round_trip(&mut channel, &mut agent, now, Duration::from_secs(3));
    }
    assert_eq!(
        current_rto(&mut channel, now),
        Duration::from_secs(1),
        "slow round trips: capped at a second"
    );
}

#[test]
fn acknowledgements_of_resent_messages_do_not_move_the_timeout() {
    let start = Instant::now();
    let (mut channel, mut agent) = ready_shell(start, unpaced());
    let mut now = start;
    for _ in 0..30 {
        now = round_trip(&mut channel, &mut agent, now, Duration::from_millis(40));
    }
    let before = current_rto(&mut channel, now);
    // The probe is resent a few times, then acknowledged 900 ms after it was first sent: which
    // copy is acknowledged is unknown, so no sample is taken.
    let sent = now;
    let first: Vec<_> = {
        // current_rto drained the probe's frame; resend it by letting its timeout pass.
        let mut resent = Vec::new();
        let mut at = sent;
        while at < sent + Duration::from_millis(900) {
            at = channel.poll_timeout().expect("deadline");
            channel.handle_timeout(at);
            resent.extend(std::iter::from_fn(|| channel.poll_transmit(at)));
        }
        resent
    };
    assert!(!first.is_empty(), "resent at least once");
    let late = sent + Duration::from_millis(900);
    agent.handle(late, &first[0]);
    while let Some(ack) = agent.poll_transmit() {
        channel.handle_frame(late, &ack);
    }
    assert_eq!(channel.in_flight(), 0);
    assert_eq!(current_rto(&mut channel, late), before);
}

#[test]
fn a_message_never_acknowledged_closes_the_channel_after_the_last_attempt() {
    let start = Instant::now();
    let config = ChannelConfig {
        max_attempts: 5,
        ..unpaced()
    };
    let (mut channel, _agent) = ready_shell(start, config);
    channel.send_output(b"lost").expect("sent");
    while channel.poll_transmit(start).is_some() {}
    let mut resends = 0;
    let mut now;
    let reason = loop {
        let Some(at) = channel.poll_timeout() else {
            panic!("no deadline while a message is unacknowledged");
        };
        now = at;
        channel.handle_timeout(now);
        resends += std::iter::from_fn(|| channel.poll_transmit(now)).count();
        if let Some(reason) = std::iter::from_fn(|| channel.poll_event()).find_map(|e| match e {
            ChannelEvent::Closed(reason) => Some(reason),
            _ => None,
        }) {
            break reason;
        }
        assert!(resends <= 5, "no more than max_attempts resends");
    };
    assert_eq!(resends, 5);
    assert!(
        matches!(reason, CloseReason::Unacknowledged { .. }),
        "{reason:?}"
    );
    assert_eq!(
        channel.send_output(b"more"),
        Err(SendError::Closed),
        "a closed channel takes nothing"
    );
    assert!(now - start < Duration::from_secs(10));
}

#[test]
fn a_resize_waits_for_room_in_a_full_window_and_only_the_latest_goes() {
    let start = Instant::now();
    let config = ChannelConfig {
        window: 2,
        ..unpaced()
    };
    let (mut channel, mut agent) = ready_shell(start, config);
    channel.send_output(&[b'x'; 4096]).expect("some taken");
    assert_eq!(channel.in_flight(), 2, "the window is full");
    let frames: Vec<_> = std::iter::from_fn(|| channel.poll_transmit(start)).collect();
    channel.resize(100, 30).expect("remembered");
    channel.resize(120, 40).expect("remembered");
    assert!(
        channel.poll_transmit(start).is_none(),
        "nothing fits while the window is full"
    );
    // Acknowledge what was sent: the latest size goes out, once.
    let later = start + Duration::from_millis(5);
    for frame in &frames {
        agent.handle(later, frame);
    }
    while let Some(ack) = agent.poll_transmit() {
        channel.handle_frame(later, &ack);
    }
    let sent: Vec<_> = std::iter::from_fn(|| channel.poll_transmit(later)).collect();
    let sizes: Vec<_> = sent
        .iter()
        .filter_map(|bytes| frame::decode(bytes).ok())
        .filter(|d| d.frame.payload_type == PayloadType::SIZE)
        .map(|d| String::from_utf8_lossy(&d.frame.payload).into_owned())
        .collect();
    assert_eq!(sizes, vec![r#"{"cols":120,"rows":40}"#.to_owned()]);
}

#[test]
fn created_date_and_the_resend_timer_start_when_a_paced_message_is_written() {
    // Ten messages a second: the third of three sent at once is written 200 ms later. Its
    // CreatedDate and its retransmission timer start then (spec §5.3), so it is not resent as
    // soon as it is written, after the agent had it in time.
    let start = Instant::now();
    let wall_start = 1_700_000_000_000u64;
    let config = ChannelConfig {
        pace_per_second: Some(10),
        ..ChannelConfig::default()
    };
    let (mut channel, mut agent) = ready_shell(start, config);
    // The first output made the pacer's schedule start (its acknowledgement is not paced).
    channel.send_output(&[b'x'; 3 * 1024]).expect("queued");
    let mut written = Vec::new();
    let mut now = start;
    while written.len() < 3 {
        now += Duration::from_millis(1);
        channel.handle_timeout(now);
        while let Some(bytes) = channel.poll_transmit(now) {
            let decoded = frame::decode(&bytes).expect("frame").frame;
            written.push((now, decoded.sequence, decoded.created_ms));
            // The agent acknowledges each at once (1 ms round trips).
            agent.handle(now, &bytes);
            let back = now + Duration::from_millis(1);
            while let Some(ack) = agent.poll_transmit() {
                channel.handle_frame(back, &ack);
            }
        }
        assert!(now - start < Duration::from_secs(2), "stuck: {written:?}");
    }
    let sequences: Vec<i64> = written.iter().map(|w| w.1).collect();
    assert_eq!(sequences, vec![0, 1, 2], "each written once, in order");
    for (at, _, created_ms) in &written {
        let expected = wall_start + (*at - start).as_millis() as u64;
        assert_eq!(*created_ms, expected, "CreatedDate is the time of writing");
    }
    assert!(
        written[2].0 - written[0].0 >= Duration::from_millis(190),
        "paced: {written:?}"
    );
    assert_eq!(channel.in_flight(), 0, "all acknowledged, none resent");
}

#[test]
fn a_message_waiting_for_its_pacing_slot_counts_against_the_window_but_is_not_resent() {
    let start = Instant::now();
    let config = ChannelConfig {
        pace_per_second: Some(10),
        window: 3,
        ..ChannelConfig::default()
    };
    let (mut channel, _agent) = ready_shell(start, config);
    channel.send_output(&[b'x'; 3 * 1024]).expect("queued");
    assert_eq!(
        channel.send_output(b"more"),
        Err(SendError::WindowFull),
        "queued messages fill the window"
    );
    let first: Vec<_> = std::iter::from_fn(|| channel.poll_transmit(start)).collect();
    assert_eq!(first.len(), 1, "one slot now");
    // 150 ms on, unacknowledged: the written message may be resent; the queued ones were never
    // written, so nothing but the oldest goes, and the next one only in its slot.
    let later = start + Duration::from_millis(150);
    channel.handle_timeout(later);
    let again: Vec<_> = std::iter::from_fn(|| channel.poll_transmit(later))
        .map(|b| frame::decode(&b).expect("frame").frame.sequence)
        .collect();
    assert_eq!(
        again,
        vec![1],
        "the second message, in its slot; no resend yet"
    );
}

#[test]
fn input_handed_over_in_pieces_fills_the_messages_waiting_for_their_slot() {
    // Ten messages a second: what is handed over while messages wait for their slots tops up
    // the last of them instead of leaving it short, so no slot carries a few bytes only.
    let start = Instant::now();
    let config = ChannelConfig {
        pace_per_second: Some(10),
        ..ChannelConfig::default()
    };
    let (mut channel, _agent) = ready_shell(start, config);
    assert_eq!(channel.send_output(&[b'a'; 1500]), Ok(1500));
    assert_eq!(channel.send_output(&[b'b'; 600]), Ok(600));
    assert_eq!(channel.in_flight(), 3, "1024 + 1024 + 52 bytes");
    // A flag keeps its place: bytes after it go in a message of their own.
    channel.send_flag(Flag::DisconnectToPort).expect("flag");
    assert_eq!(channel.send_output(b"c"), Ok(1));
    assert_eq!(channel.in_flight(), 5);
    let mut payloads = Vec::new();
    let mut now = start;
    while payloads.len() < 5 {
        while let Some(bytes) = channel.poll_transmit(now) {
            let decoded = frame::decode(&bytes).expect("frame").frame;
            payloads.push((decoded.sequence, decoded.payload_type, decoded.payload));
        }
        now += Duration::from_millis(10);
        assert!(now - start < Duration::from_secs(2), "stuck: {payloads:?}");
    }
    let shape: Vec<(i64, PayloadType, usize)> = payloads
        .iter()
        .map(|(sequence, kind, payload)| (*sequence, *kind, payload.len()))
        .collect();
    assert_eq!(
        shape,
        vec![
            (0, PayloadType::OUTPUT, 1024),
            (1, PayloadType::OUTPUT, 1024),
            (2, PayloadType::OUTPUT, 52),
            (3, PayloadType::FLAG, 4),
            (4, PayloadType::OUTPUT, 1),
        ]
    );
    let mut expected = vec![b'a'; 1500];
    expected.extend_from_slice(&[b'b'; 600]);
    let carried: Vec<u8> = payloads[..3]
        .iter()
        .flat_map(|(_, _, payload)| payload.iter().copied())
        .collect();
    assert!(carried == expected, "the bytes in order");
    assert_eq!(payloads[3].2, 1u32.to_be_bytes().to_vec());
    assert_eq!(payloads[4].2, b"c".to_vec());
}
