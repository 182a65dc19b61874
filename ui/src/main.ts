import { getVersion } from "@tauri-apps/api/app";
import { isTauri } from "@tauri-apps/api/core";
import { describeBuild } from "./build-info";

async function showBuild(): Promise<void> {
  const line = document.querySelector<HTMLParagraphElement>("#build");
  if (!line) return;
  try {
    const version = isTauri() ? await getVersion() : null;
    line.textContent = describeBuild({ version });
  } catch (error) {
    line.textContent = `Could not ask the desktop shell for its version: ${String(error)}`;
    line.classList.add("failed");
  }
}

void showBuild();
