// Keystrokes and pastes go to a session one call at a time, in order (two IPC calls in flight
// could arrive out of order), and what is typed while a call is in flight is sent together.
// Big pastes go in slices, so the shell is not flooded (the agent reads its input in small
// buffers; aws/amazon-ssm-agent#149).

/** The most sent in one call. */
export const SLICE = 1024;

export class InputQueue {
  private pending = "";
  private sending = false;
  private idle: Promise<void> = Promise.resolve();
  private wake: (() => void) | null = null;

  constructor(
    private send: (data: string) => Promise<void>,
    private onError: (error: unknown) => void = () => {},
  ) {}

  /** Queue `data`; it is sent after everything queued before it. */
  push(data: string): void {
    this.pending += data;
    if (!this.sending) {
      this.sending = true;
      this.idle = new Promise((resolve) => (this.wake = resolve));
      void this.drain();
    }
  }

  /** Resolves once everything queued so far has been sent (or failed). */
  flushed(): Promise<void> {
    return this.idle;
  }

  private async drain(): Promise<void> {
    while (this.pending) {
      const slice = takeSlice(this.pending);
      this.pending = this.pending.slice(slice.length);
      try {
        await this.send(slice);
      } catch (error) {
        this.pending = "";
        this.onError(error);
      }
    }
    this.sending = false;
    this.wake?.();
  }
}

/** The first slice of `data`: at most SLICE code units, never splitting a surrogate pair. */
export function takeSlice(data: string): string {
  if (data.length <= SLICE) return data;
  let end = SLICE;
  const last = data.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return data.slice(0, end);
}
