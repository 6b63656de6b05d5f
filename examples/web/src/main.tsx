import { StrictMode } from "react";
import { createRoot } from "react-dom/client";

import { configure, socketStatus } from "./api";
import { MizanProvider } from "./api/react";
import { App } from "./App";
import { setSocketStatus } from "./live";

// The app is served from the demo's origin, so the client's default base URL ("", the page's
// origin) reaches the API; call `configure({ baseUrl })` from "./api" for another origin.
// `?transport=ws` puts calls and fetches on the demo's socket (`/api/mizan/ws/`): every
// instance on screen is then subscribed there, and a change made anywhere (another tab,
// another client, over HTTP or the socket) shows here without a reload.
if (new URLSearchParams(window.location.search).get("transport") === "ws") {
  configure({ baseUrl: "", transport: "ws", socket: { onStatus: setSocketStatus } });
  setSocketStatus(socketStatus());
}

const root = document.getElementById("root");
if (root === null) throw new Error("index.html has no #root element");
createRoot(root).render(
  <StrictMode>
    <MizanProvider>
      <App />
    </MizanProvider>
  </StrictMode>,
);
