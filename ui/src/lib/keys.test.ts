import { describe, expect, it } from "vitest";
import { appAction, type KeyLike } from "./keys";

const key = (k: string, mods: Partial<KeyLike> = {}): KeyLike => ({
  key: k,
  ctrlKey: false,
  shiftKey: false,
  altKey: false,
  metaKey: false,
  ...mods,
});

describe("the keymap", () => {
  it("leaves Ctrl+letter to the shell inside a terminal", () => {
    for (const k of ["c", "k", "w", "r", "d", "z", "t", "f"]) {
      expect(appAction(key(k, { ctrlKey: true }), true), `Ctrl+${k}`).toBeNull();
    }
  });

  it("answers Ctrl+Shift+letter everywhere", () => {
    expect(appAction(key("C", { ctrlKey: true, shiftKey: true }), true)).toBe("copy");
    expect(appAction(key("V", { ctrlKey: true, shiftKey: true }), true)).toBe("paste");
    expect(appAction(key("A", { ctrlKey: true, shiftKey: true }), true)).toBe("switcher");
    expect(appAction(key("K", { ctrlKey: true, shiftKey: true }), false)).toBe("palette");
  });

  it("takes plain Ctrl shortcuts outside a terminal", () => {
    expect(appAction(key("k", { ctrlKey: true }), false)).toBe("palette");
    expect(appAction(key("c", { ctrlKey: true }), false)).toBeNull();
  });

  it("uses Cmd on macOS, and leaves Ctrl to the shell there", () => {
    expect(appAction(key("k", { metaKey: true }), true, true)).toBe("palette");
    expect(appAction(key("c", { ctrlKey: true }), true, true)).toBeNull();
    expect(appAction(key("a", { metaKey: true, shiftKey: true }), true, true)).toBe("switcher");
  });

  it("ignores plain letters and AltGr combinations", () => {
    expect(appAction(key("k"), true)).toBeNull();
    expect(appAction(key("q", { ctrlKey: true, altKey: true }), false)).toBeNull();
  });
});
