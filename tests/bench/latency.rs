//! Session start and keystroke echo, against a PTY on this machine with nothing in between
//! (the same shell the sandbox agent runs, started the same way).

use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant};

use postern_core::session::{self, SessionEvent, SessionOptions, SessionRequest};
use postern_e2e::{DEVELOPER, role_credentials, ssm_access};

use crate::{Row, median, percentile};

const STARTS: usize = 15;
const KEYSTROKES: usize = 300;

/// A local PTY running the agent's shell: `(time to its first output, echo times)`.
fn local_pty(keystrokes: usize) -> (Duration, Vec<f64>) {
    use portable_pty::{CommandBuilder, PtySize, native_pty_system};
    let home = std::env::temp_dir();
    let start = Instant::now();
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: 24,
            cols: 80,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("pty");
    let mut builder = CommandBuilder::new("bash");
    builder.args(["--noprofile", "--norc", "-i"]);
    builder.cwd(&home);
    builder.env("HOME", &home);
    builder.env("TERM", "xterm-256color");
    builder.env("PS1", "local$ ");
    builder.env("LANG", "C.UTF-8");
    let mut child = pair.slave.spawn_command(builder).expect("bash");
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().expect("reader");
    let mut writer = pair.master.take_writer().expect("writer");
    let mut buf = [0u8; 4096];
    let mut seen = Vec::new();
    let n = reader.read(&mut buf).expect("read");
    assert!(n > 0, "bash ended");
    let first = start.elapsed();
    seen.extend_from_slice(&buf[..n]);
    // Wait for the prompt before typing.
    while !String::from_utf8_lossy(&seen).contains("local$ ") {
        let n = reader.read(&mut buf).expect("read");
        seen.extend_from_slice(&buf[..n]);
    }
    let mut echoes = Vec::with_capacity(keystrokes);
    for _ in 0..keystrokes {
        let sent = Instant::now();
        writer
            .write_all(b"x")
            .and_then(|()| writer.flush())
            .expect("type");
        loop {
            let n = reader.read(&mut buf).expect("read");
            if buf[..n].contains(&b'x') {
                break;
            }
        }
        echoes.push(sent.elapsed().as_secs_f64() * 1000.0);
    }
    let _ = child.kill();
    (first, echoes)
}

pub(crate) async fn run() -> Vec<Row> {
    let sandbox = postern_e2e::sandbox().await;
    let access = ssm_access(
        &sandbox,
        role_credentials(&sandbox, DEVELOPER, "demo").await,
    );
    let target = postern_e2e::instance("payments");

    let mut starts = Vec::new();
    for _ in 0..STARTS {
        let begun = Instant::now();
        let mut session = session::open(
            &access,
            SessionRequest::shell(&target),
            SessionOptions::default(),
        )
        .await
        .expect("shell");
        loop {
            match session.next_event().await {
                Some(SessionEvent::Output(_)) => break,
                Some(SessionEvent::Ended(end)) => panic!("ended: {end:?}"),
                Some(_) => {}
                None => panic!("driver stopped"),
            }
        }
        starts.push(begun.elapsed().as_secs_f64() * 1000.0);
        session.writer().close().await;
    }
    let (local_starts, local_echoes) = tokio::task::spawn_blocking(|| {
        let mut starts = Vec::new();
        let mut echoes = Vec::new();
        for i in 0..STARTS {
            let (first, e) = local_pty(if i == 0 { KEYSTROKES } else { 0 });
            starts.push(first.as_secs_f64() * 1000.0);
            echoes.extend(e);
        }
        (starts, echoes)
    })
    .await
    .expect("local pty");

    // Echo through a session: one keystroke at a time, as typed.
    let mut session = session::open(
        &access,
        SessionRequest::shell(&target),
        SessionOptions::default(),
    )
    .await
    .expect("shell");
    let writer = session.writer();
    let mut screen = Vec::new();
    while !String::from_utf8_lossy(&screen).contains("sandbox$ ") {
        if let Some(SessionEvent::Output(bytes)) = session.next_event().await {
            screen.extend(bytes);
        }
    }
    let mut echoes = Vec::with_capacity(KEYSTROKES);
    for _ in 0..KEYSTROKES {
        let sent = Instant::now();
        writer
            .send(b"x".to_vec())
            .await
            .expect("the session takes input");
        loop {
            match session.next_event().await {
                Some(SessionEvent::Output(bytes)) if bytes.contains(&b'x') => break,
                Some(SessionEvent::Ended(end)) => panic!("ended: {end:?}"),
                None => panic!("driver stopped"),
                _ => {}
            }
        }
        echoes.push(sent.elapsed().as_secs_f64() * 1000.0);
    }
    writer.close().await;

    let ms = |v: f64| format!("{v:.2} ms");
    let (mut starts, mut local_starts) = (starts, local_starts);
    let (mut echoes, mut local_echoes) = (echoes, local_echoes);
    let start = median(&mut starts);
    let local_start = median(&mut local_starts);
    let p50 = percentile(&mut echoes, 0.5);
    let p99 = percentile(&mut echoes, 0.99);
    let local_p50 = percentile(&mut local_echoes, 0.5);
    let local_p99 = percentile(&mut local_echoes, 0.99);
    vec![
        Row::new(
            "session start to first shell output, median (vs local PTY)",
            ms(start),
            ms(local_start),
            start / local_start,
        ),
        Row::new(
            "keystroke echo p50 (vs local PTY)",
            ms(p50),
            ms(local_p50),
            p50 / local_p50,
        ),
        Row::new(
            "keystroke echo p99 (vs local PTY)",
            ms(p99),
            ms(local_p99),
            p99 / local_p99,
        ),
    ]
}
