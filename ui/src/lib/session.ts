// A session's state and end, in words.
import type { SessionView } from "../ipc/bindings";

export function stateWords(session: SessionView): string {
  switch (session.state) {
    case "connecting":
      return "connecting…";
    case "live":
      return "live";
    case "resuming":
      return "resuming";
    case "ended":
      return "ended";
  }
}

export function endWords(session: SessionView): string {
  if (session.problem) return `Session ended: ${session.problem.message}`;
  const end = session.end ?? "the session ended";
  return end.charAt(0).toUpperCase() + end.slice(1) + ".";
}
