/** What the placeholder page says about the running build. */
export interface BuildInfo {
  /** The app version Tauri reports, or `null` outside the desktop shell. */
  version: string | null;
}

/** The line shown under the tagline: the version inside the app, a hint in a plain browser. */
export function describeBuild(info: BuildInfo): string {
  if (info.version === null) {
    return "Not running inside the Postern desktop shell.";
  }
  return `Postern desktop ${info.version}`;
}
