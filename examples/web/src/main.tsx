import { StrictMode } from "react";
import { createRoot } from "react-dom/client";

import { MizanProvider } from "./api/react";
import { App } from "./App";

// The app is served from the demo's origin, so the client's default base URL ("", the page's
// origin) reaches the API; call `configure({ baseUrl })` from "./api" for another origin.
const root = document.getElementById("root");
if (root === null) throw new Error("index.html has no #root element");
createRoot(root).render(
  <StrictMode>
    <MizanProvider>
      <App />
    </MizanProvider>
  </StrictMode>,
);
