// The desktop's backend: Tauri commands (src-tauri/src/commands.rs), one Channel per terminal
// for output bytes, events for MFA questions and session states.
import { Channel, invoke } from "@tauri-apps/api/core";
import { listen } from "@tauri-apps/api/event";
import type { Backend, Unsubscribe } from "./backend";
import type {
  AddProfile,
  AppView,
  ListingUpdate,
  OpenShell,
  PromptEvent,
  Question,
  SandboxCode,
  SessionView,
  SignedIn,
} from "../ipc/bindings";

export class TauriBackend implements Backend {
  appState(): Promise<AppView> {
    return invoke("app_state");
  }
  startSandbox(): Promise<AppView> {
    return invoke("start_sandbox");
  }
  addProfile(form: AddProfile): Promise<AppView> {
    return invoke("add_profile", { form });
  }
  sandboxCode(): Promise<SandboxCode> {
    return invoke("sandbox_code");
  }
  signIn(profile: string | null): Promise<SignedIn> {
    return invoke("sign_in", { profile });
  }
  answerMfa(id: number, code: string): Promise<boolean> {
    return invoke("answer_mfa", { id, code });
  }
  cancelMfa(id: number): Promise<boolean> {
    return invoke("cancel_mfa", { id });
  }
  pendingMfa(): Promise<Question[]> {
    return invoke("pending_mfa");
  }
  async onMfa(listener: (event: PromptEvent) => void): Promise<Unsubscribe> {
    return listen<PromptEvent>("mfa", (e) => listener(e.payload));
  }
  async listInstances(profile: string | null, onUpdate: (update: ListingUpdate) => void): Promise<void> {
    const updates = new Channel<ListingUpdate>();
    updates.onmessage = onUpdate;
    await invoke("list_instances", { profile, updates });
  }
  openShell(ask: OpenShell): Promise<SessionView> {
    return invoke("open_shell", { ask });
  }
  sessions(): Promise<SessionView[]> {
    return invoke("sessions");
  }
  attachSession(id: string, onOutput: (bytes: Uint8Array) => void): Promise<SessionView> {
    const output = new Channel<ArrayBuffer>();
    output.onmessage = (data) => onOutput(new Uint8Array(data));
    return invoke("attach_session", { id, output });
  }
  async onSession(listener: (view: SessionView) => void): Promise<Unsubscribe> {
    return listen<SessionView>("session", (e) => listener(e.payload));
  }
  sendInput(id: string, data: string): Promise<void> {
    return invoke("send_input", { id, data });
  }
  resizeSession(id: string, cols: number, rows: number): Promise<void> {
    return invoke("resize_session", { id, cols, rows });
  }
  closeSession(id: string): Promise<void> {
    return invoke("close_session", { id });
  }
}
