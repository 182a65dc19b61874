import { defineConfig } from "vitest/config";

// The desktop window loads `ui/dist` (see `frontendDist` in ../tauri.conf.json).
export default defineConfig({
  clearScreen: false,
  server: { host: "127.0.0.1", port: 5173, strictPort: true },
  build: { target: "es2022", outDir: "dist", emptyOutDir: true },
  test: { environment: "node", include: ["src/**/*.test.ts"] },
});
