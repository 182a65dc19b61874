import { describe, expect, it } from "vitest";
import { InputQueue, SLICE, takeSlice } from "./input";

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe("InputQueue", () => {
  it("sends one call at a time, in order, and what was typed meanwhile together", async () => {
    const sent: string[] = [];
    const gates: ReturnType<typeof deferred>[] = [];
    const queue = new InputQueue((data) => {
      sent.push(data);
      const gate = deferred();
      gates.push(gate);
      return gate.promise;
    });
    queue.push("l");
    queue.push("s");
    queue.push("\r");
    expect(sent).toEqual(["l"]);
    gates[0].resolve();
    await Promise.resolve();
    await Promise.resolve();
    expect(sent).toEqual(["l", "s\r"]);
    gates[1].resolve();
    await queue.flushed();
    expect(sent.join("")).toBe("ls\r");
  });

  it("paces a big paste in slices, keeping all of it", async () => {
    const sent: string[] = [];
    const queue = new InputQueue(async (data) => {
      sent.push(data);
    });
    const paste = "x".repeat(SLICE * 3 + 17);
    queue.push(paste);
    await queue.flushed();
    expect(sent.length).toBe(4);
    expect(sent.every((s) => s.length <= SLICE)).toBe(true);
    expect(sent.join("")).toBe(paste);
  });

  it("drops what was queued when a send fails, and says so", async () => {
    const errors: unknown[] = [];
    const queue = new InputQueue(
      async () => {
        throw new Error("ended");
      },
      (e) => errors.push(e),
    );
    queue.push("a");
    await queue.flushed();
    expect(errors).toHaveLength(1);
  });

  it("never splits a surrogate pair", () => {
    const text = "a".repeat(SLICE - 1) + "😀" + "b";
    const first = takeSlice(text);
    expect(first.length).toBe(SLICE - 1);
    expect(first + takeSlice(text.slice(first.length))).toBe(text);
  });
});
