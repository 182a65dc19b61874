// The window's state, all of it derived from core: what app_state, the listing, the sessions
// and the events say. Reloading the webview loses nothing (core owns every session); this store
// just asks again.
import { asProblem, type Backend, type Problem, type Unsubscribe } from "../backend/backend";
import type { AddProfile, AppView, Progress, PromptEvent, Question, Row, SessionView, SignedIn } from "../ipc/bindings";

/** The Instances tab's key in `activeTab`. */
export const INSTANCES = "instances";

export class AppStore {
  view = $state<AppView | null>(null);
  /** What the window is busy with, in words ("Starting the sandbox…"). */
  busy = $state<string | null>(null);
  /** The last failure of something the user did, shown where they did it. */
  problem = $state<Problem | null>(null);
  /** MFA questions open now (one per device). */
  questions = $state<Question[]>([]);
  rows = $state<Row[]>([]);
  progress = $state<Progress | null>(null);
  listing = $state(false);
  listingProblems = $state<string[]>([]);
  tabs = $state<SessionView[]>([]);
  activeTab = $state<string>(INSTANCES);
  switcherOpen = $state(false);
  private unsubscribe: Unsubscribe[] = [];
  /** Questions settled since the window started (a late pending list must not bring them back). */
  private settled = new Set<number>();
  /** Which listing the rows come from (a newer one wins over one still running). */
  private listingRun = 0;

  constructor(readonly backend: Backend) {}

  get signedIn(): SignedIn | null {
    return this.view?.signed_in ?? null;
  }

  /** Reachable instances first (by name), then the rest (by name). */
  get sortedRows(): Row[] {
    const name = (r: Row) => (r.name ?? r.id).toLowerCase();
    return [...this.rows].sort(
      (a, b) => Number(b.reachable) - Number(a.reachable) || name(a).localeCompare(name(b)) || a.id.localeCompare(b.id),
    );
  }

  async start(): Promise<void> {
    this.unsubscribe.push(await this.backend.onMfa((e) => this.onMfa(e)));
    this.unsubscribe.push(await this.backend.onSession((v) => this.onSession(v)));
    try {
      this.view = await this.backend.appState();
      const pending = await this.backend.pendingMfa();
      const known = new Set(this.questions.map((q) => q.id));
      this.questions = [...this.questions, ...pending.filter((q) => !known.has(q.id) && !this.settled.has(q.id))];
      this.tabs = await this.backend.sessions();
    } catch (error) {
      this.problem = asProblem(error);
      return;
    }
    const view = this.view;
    if (view.launch_sandbox && view.mode !== "sandbox") {
      await this.trySandbox();
    } else if (view.signed_in) {
      void this.refreshInstances();
    } else if (view.mode === "sandbox" || view.mode === "aws") {
      await this.signIn(null);
    }
  }

  stop(): void {
    for (const u of this.unsubscribe.splice(0)) u();
  }

  /** "Add an AWS profile": keys to the keychain, then sign in to it. */
  async addProfile(form: AddProfile): Promise<boolean> {
    this.problem = null;
    this.busy = "Adding the profile…";
    const profile = form.profile;
    try {
      this.view = await this.backend.addProfile(form);
    } catch (error) {
      this.problem = asProblem(error);
      return false;
    } finally {
      // The secret went to core; nothing here keeps it while signing in waits for a code.
      form.secret_access_key = "";
      this.busy = null;
    }
    await this.signIn(profile);
    return true;
  }

  async trySandbox(): Promise<void> {
    this.problem = null;
    this.busy = "Starting the sandbox…";
    try {
      this.view = await this.backend.startSandbox();
    } catch (error) {
      this.problem = asProblem(error);
      return;
    } finally {
      this.busy = null;
    }
    await this.signIn(null);
  }

  /** Sign in to `profile` (else the active identity): the MFA modal opens when a code is needed. */
  async signIn(profile: string | null): Promise<void> {
    this.problem = null;
    this.busy = "Signing in…";
    try {
      const who = await this.backend.signIn(profile);
      if (this.view) this.view = { ...this.view, signed_in: who, active: who.profile };
    } catch (error) {
      this.problem = asProblem(error);
      return;
    } finally {
      this.busy = null;
    }
    this.switcherOpen = false;
    await this.refreshInstances();
  }

  async refreshInstances(): Promise<void> {
    const run = ++this.listingRun;
    this.listing = true;
    this.listingProblems = [];
    const fresh = new Map<string, Row[]>();
    try {
      await this.backend.listInstances(this.view?.active ?? null, (update) => {
        if (run !== this.listingRun) return;
        if (update.kind === "progress") {
          this.progress = { done: update.done, total: update.total, throttled: update.throttled };
        } else {
          if (update.problem) this.listingProblems = [...this.listingProblems, `${update.region || update.identity}: ${update.problem}`];
          fresh.set(`${update.identity} ${update.region}`, update.rows);
          this.rows = [...fresh.values()].flat();
        }
      });
    } catch (error) {
      if (run === this.listingRun) this.problem = asProblem(error);
    } finally {
      if (run === this.listingRun) this.listing = false;
    }
  }

  async answer(id: number, code: string): Promise<void> {
    await this.backend.answerMfa(id, code);
  }

  async cancel(id: number): Promise<void> {
    await this.backend.cancelMfa(id);
  }

  async openShell(row: Row): Promise<void> {
    this.problem = null;
    const live = this.tabs.find((t) => t.target === row.id && t.state !== "ended" && t.profile === row.identity);
    if (live) {
      this.activeTab = live.id;
      return;
    }
    try {
      // The identity the row was listed with (not whichever is active by the time of the click).
      const profile = row.identity === "environment" ? null : row.identity;
      const view = await this.backend.openShell({ profile, instance: row.id, region: row.region });
      this.tabs = [...this.tabs, view];
      this.activeTab = view.id;
    } catch (error) {
      this.problem = asProblem(error);
      // Core remembered the refusal: listed again, the row says "denied when last tried".
      if (this.problem.code === "access_denied") void this.refreshInstances();
    }
  }

  /** Close a tab: its session ends (Session Manager is told). */
  async closeTab(id: string): Promise<void> {
    const index = this.tabs.findIndex((t) => t.id === id);
    if (index < 0) return;
    this.tabs = this.tabs.filter((t) => t.id !== id);
    if (this.activeTab === id) {
      this.activeTab = this.tabs[Math.min(index, this.tabs.length - 1)]?.id ?? INSTANCES;
    }
    try {
      await this.backend.closeSession(id);
    } catch (error) {
      this.problem = asProblem(error);
    }
  }

  nameOf(instance: string): string {
    return this.rows.find((r) => r.id === instance)?.name ?? instance;
  }

  private onMfa(event: PromptEvent): void {
    if (event.event === "asking") {
      const { event: _kind, ...question } = event;
      const others = this.questions.filter((q) => q.id !== question.id);
      this.questions = [...others, question];
    } else {
      this.settled.add(event.id);
      this.questions = this.questions.filter((q) => q.id !== event.id);
    }
  }

  /** A session's state changed (an event, or what attaching to it found). */
  sessionChanged(view: SessionView): void {
    this.tabs = this.tabs.map((t) => (t.id === view.id ? view : t));
  }

  private onSession(view: SessionView): void {
    this.sessionChanged(view);
  }
}
