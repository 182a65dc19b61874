import { mount } from "svelte";
import App from "./components/App.svelte";
import { isTauri } from "@tauri-apps/api/core";
import { TauriBackend } from "./backend/tauri";
import { FakeBackend } from "./backend/fake";
import "./style.css";

// Inside the desktop app: core through IPC. In a plain browser (npm run dev): the in-memory fake
// (`?sandbox` starts it as `postern-desktop --sandbox` would).
const backend = isTauri()
  ? new TauriBackend()
  : new FakeBackend({ sandbox: new URLSearchParams(location.search).has("sandbox") });

const target = document.getElementById("app");
if (target) mount(App, { target, props: { backend } });
