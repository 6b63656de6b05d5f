// The example app is served from the demo's origin: in development Vite forwards `/api/` to the
// demo (`MIZAN_URL`, default http://127.0.0.1:8000), and so does `vite preview` for the build,
// WebSocket upgrades included (`?transport=ws`). The `Host` header is kept, so the demo's
// Origin check sees the page's own origin.
import { defineConfig } from "vite";

const demo = process.env.MIZAN_URL ?? "http://127.0.0.1:8000";

export default defineConfig({
  // Vite transforms TSX itself (Oxc); no React plugin is needed without fast refresh.
  oxc: { jsx: { runtime: "automatic" } },
  // Two entries: the app (index.html) and the client of the demo's server-rendered profile page,
  // at a stable path (`/assets/profile.js`, which that page loads).
  build: {
    rollupOptions: {
      input: { index: "index.html", profile: "src/profile.tsx" },
      output: { entryFileNames: "assets/[name].js" },
    },
  },
  server: { proxy: { "/api/": { target: demo, ws: true } } },
  preview: { proxy: { "/api/": { target: demo, ws: true } } },
});
