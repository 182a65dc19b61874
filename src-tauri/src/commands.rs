//! The commands the window may call (each is named in `capabilities/main.json`), thin wrappers
//! over [`Desktop`]. Output of a session goes over one `Channel` per terminal, as raw bytes;
//! low-rate state goes out as events (`mfa`, `session`). Every error is a [`Report`]: a stable
//! code, a sentence, a remedy.

use postern_core::mfa::window::Question;
use postern_core::registry::SessionState;
use postern_core::remedy::{Code, Report};
use postern_core::session::{SessionEvent, SessionId};
use tauri::ipc::{Channel, InvokeResponseBody};
use tauri::{AppHandle, Emitter, State};

use crate::desktop::{Desktop, problem};
use crate::ipc::{
    AddProfile, AppView, ListingUpdate, OpenShell, SandboxCode, SessionView, SignedIn,
};

type Reply<T> = Result<T, Report>;

/// The app as the window starts from (and after a reload).
#[tauri::command]
pub fn app_state(desktop: State<'_, Desktop>) -> AppView {
    desktop.view()
}

/// Start the sandbox and put Postern on it.
#[tauri::command]
pub async fn start_sandbox(desktop: State<'_, Desktop>) -> Reply<AppView> {
    desktop.start_sandbox().await
}

/// Add a profile for an IAM user's keys, and make it the active one.
#[tauri::command]
pub async fn add_profile(desktop: State<'_, Desktop>, form: AddProfile) -> Reply<AppView> {
    desktop.add_profile(form).await
}

/// The code the sandbox's demo device shows now.
#[tauri::command]
pub fn sandbox_code(desktop: State<'_, Desktop>) -> Reply<SandboxCode> {
    desktop.sandbox_code()
}

/// Sign in to `profile` (else the active identity) and make it the active one.
#[tauri::command]
pub async fn sign_in(desktop: State<'_, Desktop>, profile: Option<String>) -> Reply<SignedIn> {
    desktop.sign_in(profile).await
}

/// The code typed for MFA question `id`; whether the question was open.
#[tauri::command]
pub fn answer_mfa(desktop: State<'_, Desktop>, id: u64, code: String) -> bool {
    desktop.answer_mfa(id, code)
}

/// The MFA question `id` was cancelled.
#[tauri::command]
pub fn cancel_mfa(desktop: State<'_, Desktop>, id: u64) -> bool {
    desktop.cancel_mfa(id)
}

/// The MFA questions open now.
#[tauri::command]
pub fn pending_mfa(desktop: State<'_, Desktop>) -> Vec<Question> {
    desktop.pending_mfa()
}

/// List the instances of `profile` (else the active identity) over `updates`.
#[tauri::command]
pub async fn list_instances(
    desktop: State<'_, Desktop>,
    profile: Option<String>,
    updates: Channel<ListingUpdate>,
) -> Reply<()> {
    desktop
        .list_instances(profile, |update| {
            let _ = updates.send(update);
        })
        .await
}

/// Open a shell on an instance.
#[tauri::command]
pub async fn open_shell(desktop: State<'_, Desktop>, ask: OpenShell) -> Reply<SessionView> {
    desktop.open_shell(ask).await
}

/// The sessions open now (and ended ones not yet closed).
#[tauri::command]
pub fn sessions(desktop: State<'_, Desktop>) -> Vec<SessionView> {
    desktop.sessions()
}

/// A terminal attaches to session `id`: the output kept so far, then everything that follows,
/// over `output` as raw bytes. Its state goes out as `session` events only, in order, starting
/// with where it stands now (the reply's view may arrive after them: the window takes its state
/// from the events). A terminal attaching again (after a reload) replaces the previous one.
#[tauri::command]
pub fn attach_session(
    app: AppHandle,
    desktop: State<'_, Desktop>,
    id: String,
    output: Channel<InvokeResponseBody>,
) -> Reply<SessionView> {
    let id = SessionId::from(id);
    let registry = desktop.registry()?;
    let (recent, mut events) = registry
        .listen(&id)
        .ok_or_else(|| problem(Code::BadInput, format!("No session {id} is open.")))?;
    if !recent.is_empty() {
        let _ = output.send(InvokeResponseBody::Raw(recent));
    }
    let info = registry
        .info(&id)
        .ok_or_else(|| problem(Code::BadInput, format!("No session {id} is open.")))?;
    let view = SessionView::of(&info, None);
    let mut shown = info.state;
    let _ = app.emit("session", view.clone());
    tauri::async_runtime::spawn(async move {
        while let Some(event) = events.recv().await {
            let (delivered, note, output_only) = match event {
                SessionEvent::Output(bytes) | SessionEvent::StdErr(bytes) => (
                    output.send(InvokeResponseBody::Raw(bytes)).is_ok(),
                    None,
                    true,
                ),
                SessionEvent::Reconnecting(lost) => (true, Some(lost.to_string()), false),
                _ => (true, None, false),
            };
            // The terminal went away (its webview reloaded): stop; the next one listens.
            if !delivered {
                break;
            }
            // Output changes the state only while connecting: no lookup per chunk after that.
            if output_only && shown != SessionState::Connecting {
                continue;
            }
            let Some(info) = registry.info(&id) else {
                break;
            };
            if info.state != shown || note.is_some() {
                shown = info.state;
                let _ = app.emit("session", SessionView::of(&info, note));
            }
            if shown == SessionState::Ended {
                break;
            }
        }
        // The stream ended without the session's end (the registry let a slow listener go):
        // say where it stands now, so the tab does not keep a stale state.
        if let Some(info) = registry.info(&id)
            && info.state != shown
        {
            let _ = app.emit("session", SessionView::of(&info, None));
        }
    });
    Ok(view)
}

/// Type into session `id` (what xterm encoded: text, or control sequences).
#[tauri::command]
pub async fn send_input(desktop: State<'_, Desktop>, id: String, data: String) -> Reply<()> {
    desktop
        .send_input(&SessionId::from(id), data.into_bytes())
        .await
}

/// The terminal of session `id` is now `cols` × `rows`.
#[tauri::command]
pub async fn resize_session(
    desktop: State<'_, Desktop>,
    id: String,
    cols: u32,
    rows: u32,
) -> Reply<()> {
    desktop.resize(&SessionId::from(id), cols, rows).await
}

/// End session `id` (its tab closed).
#[tauri::command]
pub async fn close_session(desktop: State<'_, Desktop>, id: String) -> Reply<()> {
    desktop.close_session(&SessionId::from(id)).await
}
