// The example app is served from the demo's origin: in development Vite forwards `/api/` to the
// demo (`MIZAN_URL`, default http://127.0.0.1:8000), and so does `vite preview` for the build.
import { defineConfig } from "vite";

const demo = process.env.MIZAN_URL ?? "http://127.0.0.1:8000";

export default defineConfig({
  // Vite transforms TSX itself (Oxc); no React plugin is needed without fast refresh.
  oxc: { jsx: { runtime: "automatic" } },
  server: { proxy: { "/api/": demo } },
  preview: { proxy: { "/api/": demo } },
});
