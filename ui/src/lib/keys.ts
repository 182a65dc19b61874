// One keymap for the window (desktop-ux.md §5). In a terminal, Ctrl+letter belongs to the shell
// (readline's Ctrl+K, Ctrl+W, Ctrl+R…); the app answers to Ctrl+Shift+letter there, and that form
// works everywhere. On macOS, Cmd shortcuts never reach a shell.

export type AppAction = "palette" | "switcher" | "copy" | "paste" | "close-tab" | "find";

export interface KeyLike {
  key: string;
  ctrlKey: boolean;
  shiftKey: boolean;
  altKey: boolean;
  metaKey: boolean;
}

/** The app action of a keydown, or null when it is not one of the app's. */
export function appAction(e: KeyLike, inTerminal: boolean, mac = false): AppAction | null {
  const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  if (mac) {
    if (!e.metaKey || e.ctrlKey) return null;
    if (e.shiftKey && key === "a") return "switcher";
    if (e.shiftKey) return null;
    return ({ k: "palette", c: "copy", v: "paste", w: "close-tab", f: "find" } as const)[key as "k"] ?? null;
  }
  if (!e.ctrlKey || e.altKey || e.metaKey) return null;
  if (e.shiftKey) {
    return ({ k: "palette", a: "switcher", c: "copy", v: "paste", w: "close-tab", f: "find" } as const)[key as "k"] ?? null;
  }
  // Outside a terminal, plain Ctrl works too (nothing else wants it there).
  if (!inTerminal) {
    return ({ k: "palette", w: "close-tab", f: "find" } as const)[key as "k"] ?? null;
  }
  return null;
}
