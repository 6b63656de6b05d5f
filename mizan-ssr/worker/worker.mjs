// The worker side of mizan-ssr: renders registered React components for the Rust pool.
//
// Usage, in an entry module of your frontend project (where `react` and `react-dom` are
// installed), importing this module FIRST so that its stdout guard runs before any other code:
//
//     import { serve } from './mizan-worker.mjs';
//     import { ProfilePage } from './ProfilePage.js';
//     serve({ ProfilePage });
//
// Protocol: one JSON object per line on stdin (requests) and stdout (replies).
//   worker → pool, once started:  {"id":0,"ready":true}
//   {"id":n,"method":"render","params":{"component":"ProfilePage","props":{...}}}
//        → {"id":n,"html":"..."} or {"id":n,"error":"..."}
//   {"id":n,"method":"ping"} → {"id":n,"pong":true}
// The worker exits when stdin closes. Everything else it prints goes to stderr.

// 1. Stdout carries replies only. Console output and direct writes to process.stdout go to
//    stderr; this runs before React or any component module is loaded.
const protocol = process.stdout;
const writeLine = protocol.write.bind(protocol);
const writeStderr = process.stderr.write.bind(process.stderr);
process.stdout.write = (chunk, encoding, callback) => writeStderr(chunk, encoding, callback);
for (const method of ['log', 'info', 'debug', 'dir', 'dirxml', 'table']) {
  console[method] = console.error;
}
// The pool went away: nobody reads the replies any more.
protocol.on('error', () => process.exit(0));

// 2. React, resolved from this file's location (it must share the copy your components use).
const [{ createElement }, { renderToString }] = await Promise.all([
  import('react'),
  import('react-dom/server'),
]);

function reply(message) {
  writeLine(`${JSON.stringify(message)}\n`);
}

function errorMessage(err) {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Renders one registered component to an HTML string. Throws when the component is unknown,
 * the props are not a JSON object, or the component throws.
 *
 * @param {Map<string, unknown>} registry component name → React component
 * @param {string} name
 * @param {unknown} props
 * @returns {string}
 */
export function renderComponent(registry, name, props) {
  if (typeof name !== 'string' || !registry.has(name)) {
    throw new Error(`unknown component ${JSON.stringify(name)}`);
  }
  const given = props ?? {};
  if (typeof given !== 'object' || Array.isArray(given)) {
    throw new Error('props must be a JSON object');
  }
  return renderToString(createElement(registry.get(name), given));
}

function handle(registry, line) {
  if (line.trim() === '') return;
  let message;
  try {
    message = JSON.parse(line);
  } catch {
    console.error('mizan-ssr worker: ignoring a request that is not JSON');
    return;
  }
  const id = message?.id;
  if (!Number.isSafeInteger(id)) {
    console.error('mizan-ssr worker: ignoring a request without a numeric id');
    return;
  }
  switch (message.method) {
    case 'ping':
      reply({ id, pong: true });
      return;
    case 'render': {
      const { component, props } = message.params ?? {};
      let html;
      try {
        html = renderComponent(registry, component, props);
      } catch (err) {
        console.error(`mizan-ssr worker: rendering ${JSON.stringify(component)} failed:`, err);
        reply({ id, error: errorMessage(err) });
        return;
      }
      reply({ id, html });
      return;
    }
    default:
      reply({ id, error: `unknown method ${JSON.stringify(message.method)}` });
  }
}

/**
 * Registers the components (name → React component), announces readiness and answers the
 * pool's requests until stdin closes.
 *
 * @param {Record<string, unknown>} components
 */
export function serve(components) {
  const registry = new Map(Object.entries(components));
  let buffered = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk) => {
    buffered += chunk;
    let newline = buffered.indexOf('\n');
    while (newline !== -1) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      handle(registry, line);
      newline = buffered.indexOf('\n');
    }
  });
  process.stdin.on('end', () => process.exit(0));
  reply({ id: 0, ready: true });
}
