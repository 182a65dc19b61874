// The window against the in-memory fake backend: the first run into the sandbox, the MFA modal
// answered with the demo code, the identity bar, the instance list (reachable first, a shell
// button only there), a terminal tab following its session's state.
import { describe, expect, it } from "vitest";
import { fireEvent, render, screen, waitFor, within } from "@testing-library/svelte";
import App from "./App.svelte";
import { FAKE_CODE, FakeBackend } from "../backend/fake";

async function typeCode(code: string) {
  const field = (await screen.findByTestId("mfa-code")) as HTMLInputElement;
  field.value = code;
  await fireEvent.input(field);
}

describe("the window", () => {
  it("goes from the first run into the sandbox, signs in with the demo code and opens a shell", async () => {
    const backend = new FakeBackend();
    render(App, { backend });

    const first = await screen.findByTestId("first-run");
    expect(within(first).getByText(/Welcome to Postern/)).toBeTruthy();
    await fireEvent.click(screen.getByTestId("try-sandbox"));

    // The modal shows the demo device's code; six digits send themselves.
    const demo = await screen.findByTestId("sandbox-mfa-code");
    expect(demo.textContent).toBe(FAKE_CODE);
    await typeCode("000000");
    await screen.findByText(/AWS did not accept that code/);
    await typeCode(FAKE_CODE);
    await waitFor(() => expect(screen.queryByTestId("mfa-code")).toBeNull());

    const bar = screen.getByTestId("identity-bar");
    await waitFor(() => expect(bar.textContent).toContain("developer"));
    expect(bar.textContent).toContain("SANDBOX");
    expect(bar.textContent).toMatch(/MFA \d+:\d\d left/);

    // Reachable rows only (the rest behind "Show"), each with a shell button.
    const rows = await screen.findAllByTestId("instance-row");
    expect(rows.map((r) => r.dataset.instanceId)).toEqual(["i-09f8e7d6c5b4a3921", "i-0a1b2c3d4e5f60718"]);
    await fireEvent.click(screen.getByText("Show"));
    const all = screen.getAllByTestId("instance-row");
    expect(all).toHaveLength(4);
    expect(within(all[2]).queryByTestId("open-shell")).toBeNull();
    expect(all[2].textContent).toContain("stopped");
    expect(all[3].textContent).toContain("not managed by Systems Manager");

    await fireEvent.click(within(all[1]).getByTestId("open-shell"));
    const terminal = await screen.findByTestId("terminal");
    await waitFor(() => expect(terminal.dataset.sessionState).toBe("live"));
    expect(backend.calls).toContainEqual(["open_shell", "i-0a1b2c3d4e5f60718"]);

    // A drop shows "resuming" with input paused, then live again.
    const id = terminal.dataset.sessionId!;
    backend.dropConnection(id);
    await waitFor(() => expect(terminal.dataset.sessionState).toBe("resuming"));
    expect(screen.getByText(/Input is paused/)).toBeTruthy();
    backend.resume(id);
    await waitFor(() => expect(terminal.dataset.sessionState).toBe("live"));

    // Closing the tab ends the session.
    await fireEvent.click(screen.getByLabelText(/Close web-1/));
    await waitFor(() => expect(screen.queryByTestId("terminal")).toBeNull());
    expect(backend.calls).toContainEqual(["close_session", id]);
  });

  it("with --sandbox, skips the first run and asks for the code at once; Esc cancels", async () => {
    const backend = new FakeBackend({ sandbox: true });
    render(App, { backend });
    const field = await screen.findByTestId("mfa-code");
    expect(screen.queryByTestId("first-run")).toBeNull();
    await fireEvent.keyDown(field, { key: "Escape" });
    await screen.findByText(/cancelled/);
    expect(screen.queryByTestId("mfa-code")).toBeNull();
  });

  it("switches identity from the switcher", async () => {
    const backend = new FakeBackend({ sandbox: true });
    render(App, { backend });
    await typeCode(FAKE_CODE);
    await screen.findAllByTestId("instance-row");
    await fireEvent.keyDown(window, { key: "A", ctrlKey: true, shiftKey: true });
    const switcher = await screen.findByTestId("switcher");
    expect(within(switcher).getByText(/developer · current/)).toBeTruthy();
    await fireEvent.keyDown(switcher, { key: "Escape" });
    await waitFor(() => expect(screen.queryByTestId("switcher")).toBeNull());
  });

  it("adds an AWS profile from the first run: a bad key is refused in words, the secret field is cleared", async () => {
    const backend = new FakeBackend();
    render(App, { backend });
    await fireEvent.click(await screen.findByTestId("add-aws-profile"));
    const form = await screen.findByTestId("add-profile");
    const field = (label: RegExp) => within(form).getByLabelText(label) as HTMLInputElement;
    const fill = async (label: RegExp, value: string) => {
      field(label).value = value;
      await fireEvent.input(field(label));
    };
    const secret = field(/Secret access key/);
    await fill(/Profile name/, "work");
    await fill(/Access key id/, "not-a-key");
    secret.value = "wJalrXUtnFEMIEXAMPLEKEYEXAMPLEKEYEXAMPLE";
    await fireEvent.submit(form);
    await screen.findByText(/not an access key id/);
    expect(secret.value).toBe("");
    expect(backend.added).toEqual([]);

    await fill(/Access key id/, "AKIAEXAMPLEEXAMPLE01");
    secret.value = "wJalrXUtnFEMIEXAMPLEKEYEXAMPLEKEYEXAMPLE";
    await fill(/MFA device/, "arn:aws:iam::111122223333:mfa/alice");
    await fireEvent.submit(form);
    await screen.findByTestId("mfa-code");
    expect(backend.added).toEqual([{ profile: "work", region: "us-east-1", mfa: true }]);
    expect(secret.value).toBe("");
    expect(backend.calls).toContainEqual(["sign_in", "work"]);
  });
});
