// What the window asks of Postern. Two implementations: the desktop's (Tauri IPC, ./tauri.ts)
// and an in-memory fake (./fake.ts) that runs the UI in a browser and in the unit tests.
// Secrets never come back through it: the MFA code goes in once (answerMfa), nothing returns one.
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

export type Unsubscribe = () => void;

export interface Backend {
  /** The app as the window starts from (after a reload too: core owns every session). */
  appState(): Promise<AppView>;
  /** Start the local sandbox and put Postern on it. */
  startSandbox(): Promise<AppView>;
  /** Add a profile for an IAM user's keys (they go to the keychain) and make it the active one. */
  addProfile(form: AddProfile): Promise<AppView>;
  /** The code the sandbox's demo MFA device shows now. */
  sandboxCode(): Promise<SandboxCode>;
  /** Sign in to `profile` (else the active identity); MFA questions arrive through onMfa. */
  signIn(profile: string | null): Promise<SignedIn>;
  answerMfa(id: number, code: string): Promise<boolean>;
  cancelMfa(id: number): Promise<boolean>;
  pendingMfa(): Promise<Question[]>;
  onMfa(listener: (event: PromptEvent) => void): Promise<Unsubscribe>;
  /** List the instances of `profile` (else the active identity); resolves when done. */
  listInstances(profile: string | null, onUpdate: (update: ListingUpdate) => void): Promise<void>;
  openShell(ask: OpenShell): Promise<SessionView>;
  sessions(): Promise<SessionView[]>;
  /** Attach a terminal: the output kept so far, then what follows, as bytes. */
  attachSession(id: string, onOutput: (bytes: Uint8Array) => void): Promise<SessionView>;
  /** State changes of every session. */
  onSession(listener: (view: SessionView) => void): Promise<Unsubscribe>;
  sendInput(id: string, data: string): Promise<void>;
  resizeSession(id: string, cols: number, rows: number): Promise<void>;
  closeSession(id: string): Promise<void>;
}

/** A failed call, as core reports it: a stable code, a sentence, a remedy. */
export interface Problem {
  code: string;
  message: string;
  remedy: string;
}

/** Whatever a call threw, as a Problem (core's reports pass through; anything else is wrapped). */
export function asProblem(error: unknown): Problem {
  if (typeof error === "object" && error !== null && "code" in error && "message" in error) {
    const e = error as { code: unknown; message: unknown; remedy?: unknown };
    return { code: String(e.code), message: String(e.message), remedy: String(e.remedy ?? "none") };
  }
  return { code: "internal", message: error instanceof Error ? error.message : String(error), remedy: "none" };
}
