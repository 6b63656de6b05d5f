// Debian's Chromium for the browser tests, driven by playwright-core: never a downloaded
// browser. The flags keep it off this machine's closed network (no background requests).
import { chromium } from "playwright-core";
import type { BrowserContext } from "playwright-core";

const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";

const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** A headless Chromium with its own fresh profile directory `profileDir`. */
export function launchChromium(
  profileDir: string,
  options: { javaScriptEnabled?: boolean } = {},
): Promise<BrowserContext> {
  return chromium.launchPersistentContext(profileDir, { executablePath, headless: true, args: ARGS, ...options });
}
