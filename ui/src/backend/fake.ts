// An in-memory Postern behind the same interface as the desktop's: a first run, a sandbox with
// one MFA role and a few instances, and shells with a tiny line discipline (echo, `exit`).
// It runs the UI in a plain browser (`npm run dev`) and in the unit tests.
import type { Backend, Unsubscribe } from "./backend";
import type {
  AddProfile,
  AppView,
  ListingUpdate,
  OpenShell,
  PromptEvent,
  Question,
  Report,
  Row,
  SandboxCode,
  SessionState,
  SessionView,
  SignedIn,
} from "../ipc/bindings";

/** The code the fake's demo device always shows. */
export const FAKE_CODE = "246810";

const encoder = new TextEncoder();

function row(id: string, name: string, reachable: boolean, state = "running"): Row {
  return {
    id,
    name,
    state,
    platform: "Linux/UNIX",
    private_ip: "10.0.1." + (id.length % 200),
    tags: { Name: name },
    ssm_status: reachable ? "online" : "not_managed",
    agent_version: reachable ? "3.3.1142.0" : null,
    last_ping: null,
    account: "111122223333",
    account_alias: "sandbox",
    region: "eu-west-1",
    identity: "developer",
    reachable,
    unreachable: reachable ? null : state === "running" ? { code: "not_managed" } : { code: "not_running", state },
    remote_host_tunnels: reachable,
  };
}

interface FakeShell {
  view: SessionView;
  line: string;
  output: ((bytes: Uint8Array) => void) | null;
  kept: string;
}

export class FakeBackend implements Backend {
  mode: AppView["mode"];
  private signedIn: SignedIn | null = null;
  private mfaListeners = new Set<(event: PromptEvent) => void>();
  private sessionListeners = new Set<(view: SessionView) => void>();
  private question: { q: Question; resolve: (ok: boolean) => void } | null = null;
  private nextQuestion = 1;
  private shells = new Map<string, FakeShell>();
  private nextSession = 1;
  /** Calls made, for tests: [command, argument]. */
  calls: [string, unknown][] = [];
  rows: Row[] = [
    row("i-0a1b2c3d4e5f60718", "web-1", true),
    row("i-09f8e7d6c5b4a3921", "bastion-2", true),
    row("i-0123456789abcdef0", "batch-7", false, "stopped"),
    row("i-0fedcba9876543210", "legacy-ftp", false),
  ];

  private readonly launchSandbox: boolean;

  constructor(options: { sandbox?: boolean } = {}) {
    this.mode = options.sandbox ? "sandbox" : "first_run";
    this.launchSandbox = options.sandbox ?? false;
  }

  async appState(): Promise<AppView> {
    this.calls.push(["app_state", null]);
    const sandbox = this.mode === "sandbox";
    return {
      version: "0.0.0-fake",
      debug_build: true,
      mode: this.mode,
      launch_sandbox: this.launchSandbox,
      identities: sandbox
        ? [
            {
              profile: "developer",
              kind: "role",
              role: "developer",
              account: "111122223333",
              alias: "sandbox",
              mfa: true,
              region: "eu-west-1",
              favourite: false,
              problem: null,
            },
          ]
        : [],
      active: sandbox ? "developer" : null,
      signed_in: this.signedIn,
      problem: null,
      looked_in: ["~/.aws/config", "~/.aws/credentials"],
    };
  }

  async startSandbox(): Promise<AppView> {
    this.calls.push(["start_sandbox", null]);
    this.mode = "sandbox";
    return this.appState();
  }

  /** Profiles added through addProfile (no secret kept). */
  added: { profile: string; region: string; mfa: boolean }[] = [];

  async addProfile(form: AddProfile): Promise<AppView> {
    this.calls.push(["add_profile", form.profile]);
    if (!/^AKIA[A-Z0-9]{12,}$/.test(form.access_key_id)) {
      throw this.problem("bad_input", "that is not an access key id (16 to 128 letters and digits, like AKIAIOSFODNN7EXAMPLE)");
    }
    if (form.secret_access_key.length < 16) {
      throw this.problem("bad_input", "that secret access key is too short: copy all 40 characters");
    }
    this.added.push({ profile: form.profile, region: form.region, mfa: !!form.mfa_serial });
    this.mode = "aws";
    const view = await this.appState();
    return {
      ...view,
      active: form.profile,
      identities: [
        {
          profile: form.profile,
          kind: "keys",
          role: null,
          account: null,
          alias: null,
          mfa: !!form.mfa_serial,
          region: form.region,
          favourite: false,
          problem: null,
        },
      ],
    };
  }

  async sandboxCode(): Promise<SandboxCode> {
    if (this.mode !== "sandbox") throw this.problem("bad_input", "Postern is not on the sandbox.");
    return { code: FAKE_CODE, seconds_left: 17 };
  }

  async signIn(profile: string | null): Promise<SignedIn> {
    this.calls.push(["sign_in", profile]);
    if (this.signedIn) return this.signedIn;
    let retry: Question["retry"] = null;
    for (;;) {
      const ok = await this.ask(profile ?? "developer", retry);
      if (ok === null) throw this.problem("cancelled", "The MFA code was not given: cancelled.");
      if (ok) break;
      retry = "rejected";
    }
    this.signedIn = {
      profile: profile ?? "developer",
      account: "111122223333",
      arn: "arn:aws:sts::111122223333:assumed-role/developer/postern",
      role: "developer",
      mfa_until: Math.floor(Date.now() / 1000) + 12 * 3600,
      region: "eu-west-1",
    };
    return this.signedIn;
  }

  private ask(profile: string, retry: Question["retry"]): Promise<boolean | null> {
    const q: Question = {
      id: this.nextQuestion++,
      serial: "arn:aws:iam::111122223333:mfa/demo",
      owner: "demo",
      waiting: [profile],
      retry,
      message: `MFA code for arn:aws:iam::111122223333:mfa/demo (${profile})`,
    };
    return new Promise((resolve) => {
      this.question = { q, resolve: (ok) => resolve(ok) };
      this.emitMfa({ event: "asking", ...q });
    });
  }

  private settle(id: number, answer: boolean | null): boolean {
    const pending = this.question;
    if (!pending || pending.q.id !== id) return false;
    this.question = null;
    this.emitMfa({ event: "settled", id });
    (pending.resolve as (v: boolean | null) => void)(answer);
    return true;
  }

  async answerMfa(id: number, code: string): Promise<boolean> {
    this.calls.push(["answer_mfa", id]);
    return this.settle(id, code === FAKE_CODE);
  }

  async cancelMfa(id: number): Promise<boolean> {
    return this.settle(id, null);
  }

  async pendingMfa(): Promise<Question[]> {
    return this.question ? [this.question.q] : [];
  }

  async onMfa(listener: (event: PromptEvent) => void): Promise<Unsubscribe> {
    this.mfaListeners.add(listener);
    return () => this.mfaListeners.delete(listener);
  }

  private emitMfa(event: PromptEvent): void {
    for (const l of this.mfaListeners) l(event);
  }

  async listInstances(profile: string | null, onUpdate: (update: ListingUpdate) => void): Promise<void> {
    this.calls.push(["list_instances", profile]);
    onUpdate({ kind: "progress", done: 0, total: 1, throttled: 0 });
    onUpdate({ kind: "part", identity: "developer", region: "eu-west-1", rows: this.rows, problem: null, note: null });
    onUpdate({ kind: "progress", done: 1, total: 1, throttled: 0 });
  }

  async openShell(ask: OpenShell): Promise<SessionView> {
    this.calls.push(["open_shell", ask.instance]);
    const target = this.rows.find((r) => r.id === ask.instance);
    if (!target?.reachable) throw this.problem("target_not_connected", `${ask.instance} is not connected.`);
    const view: SessionView = {
      id: `postern-${this.nextSession++}`,
      target: ask.instance,
      profile: ask.profile ?? "developer",
      region: "eu-west-1",
      kind: "shell",
      state: "connecting",
      started: Math.floor(Date.now() / 1000),
      end: null,
      problem: null,
      note: null,
    };
    this.shells.set(view.id, { view, line: "", output: null, kept: "" });
    return { ...view };
  }

  async sessions(): Promise<SessionView[]> {
    return [...this.shells.values()].map((s) => ({ ...s.view }));
  }

  async attachSession(id: string, onOutput: (bytes: Uint8Array) => void): Promise<SessionView> {
    const shell = this.shell(id);
    shell.output = onOutput;
    if (shell.kept) onOutput(encoder.encode(shell.kept));
    if (shell.view.state === "connecting") {
      setTimeout(() => {
        this.setState(shell, "live");
        this.write(shell, "sh-5.2$ ");
      }, 0);
    }
    return { ...shell.view };
  }

  async onSession(listener: (view: SessionView) => void): Promise<Unsubscribe> {
    this.sessionListeners.add(listener);
    return () => this.sessionListeners.delete(listener);
  }

  async sendInput(id: string, data: string): Promise<void> {
    const shell = this.shell(id);
    if (shell.view.state === "ended") throw this.problem("bad_input", "The session has ended: input is closed.");
    for (const ch of data) {
      if (ch === "\r") {
        this.write(shell, "\r\n");
        this.run(shell, shell.line.trim());
        shell.line = "";
      } else if (ch === "\x03") {
        shell.line = "";
        this.write(shell, "^C\r\nsh-5.2$ ");
      } else if (ch === "\x7f") {
        if (shell.line) {
          shell.line = shell.line.slice(0, -1);
          this.write(shell, "\b \b");
        }
      } else {
        shell.line += ch;
        this.write(shell, ch);
      }
    }
  }

  async resizeSession(id: string, cols: number, rows: number): Promise<void> {
    this.calls.push(["resize_session", [id, cols, rows]]);
  }

  async closeSession(id: string): Promise<void> {
    this.calls.push(["close_session", id]);
    this.shells.delete(id);
  }

  /** Drop the connection of session `id` (as a sleeping laptop would) and resume it. */
  dropConnection(id: string): void {
    const shell = this.shell(id);
    this.setState(shell, "resuming", "nothing from the service for 25 s");
  }

  resume(id: string): void {
    this.setState(this.shell(id), "live");
  }

  private run(shell: FakeShell, line: string): void {
    if (line === "exit") {
      this.write(shell, "exit\r\n");
      shell.view.end = "the session ended";
      this.setState(shell, "ended");
      return;
    }
    if (line.startsWith("echo ")) {
      const text = line
        .slice(5)
        .replace(/\$\(\((\d+)\s*\*\s*(\d+)\)\)/g, (_, a: string, b: string) => String(Number(a) * Number(b)));
      this.write(shell, text + "\r\n");
    } else if (line) {
      this.write(shell, `sh: ${line.split(" ")[0]}: not found\r\n`);
    }
    this.write(shell, "sh-5.2$ ");
  }

  private write(shell: FakeShell, text: string): void {
    shell.kept += text;
    shell.output?.(encoder.encode(text));
  }

  private setState(shell: FakeShell, state: SessionState, note: string | null = null): void {
    shell.view.state = state;
    shell.view.note = note;
    for (const l of this.sessionListeners) l({ ...shell.view });
  }

  private shell(id: string): FakeShell {
    const shell = this.shells.get(id);
    if (!shell) throw this.problem("bad_input", `No session ${id} is open.`);
    return shell;
  }

  private problem(code: Report["code"], message: string): Report {
    return { code, message, remedy: "none" } as Report;
  }
}
