// Terminal output arrives in slices cut anywhere (coalesced IPC frames): in the middle of a
// UTF-8 character or an escape sequence. Written as bytes, the screen is the same however it
// was cut; this is why the terminal writes bytes, never text decoded slice by slice.
import { describe, expect, it } from "vitest";
import { Terminal } from "@xterm/headless";

// A recorded shell exchange: a coloured prompt, box drawing, accents, a line rewritten in place.
const RECORDED =
  "\x1b[1;32mdev@web-1\x1b[0m:\x1b[1;34m~\x1b[0m$ printf 'caf\\u00e9\\n'\r\n" +
  "café\r\n" +
  "┌─────┐\r\n│ ok  │\r\n└─────┘\r\n" +
  "progress 10%\r\x1b[Kprogress 100%\r\n" +
  "\x1b[1;32mdev@web-1\x1b[0m:\x1b[1;34m~\x1b[0m$ ";

function screen(chunks: Uint8Array[]): Promise<string[]> {
  const term = new Terminal({ cols: 40, rows: 8, allowProposedApi: true });
  return new Promise((resolve) => {
    chunks.forEach((chunk, i) =>
      term.write(chunk, i === chunks.length - 1 ? () => resolve(lines(term)) : undefined),
    );
  });
}

function lines(term: Terminal): string[] {
  const buffer = term.buffer.active;
  const out: string[] = [];
  for (let y = 0; y < term.rows; y++) out.push(buffer.getLine(y)?.translateToString(true) ?? "");
  return out;
}

describe("terminal output", () => {
  const bytes = new TextEncoder().encode(RECORDED);

  it("renders the recorded exchange", async () => {
    const shown = await screen([bytes]);
    expect(shown.slice(0, 7)).toEqual([
      "dev@web-1:~$ printf 'caf\\u00e9\\n'",
      "café",
      "┌─────┐",
      "│ ok  │",
      "└─────┘",
      "progress 100%",
      "dev@web-1:~$ ",
    ]);
  });

  it("renders the same whichever byte it is cut at", async () => {
    const whole = await screen([bytes]);
    for (let cut = 1; cut < bytes.length; cut += 3) {
      const shown = await screen([bytes.slice(0, cut), bytes.slice(cut)]);
      expect(shown, `cut at byte ${cut}`).toEqual(whole);
    }
  });
});
