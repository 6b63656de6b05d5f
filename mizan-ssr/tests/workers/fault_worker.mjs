// A worker for the fault tests of mizan-ssr: it speaks the pool's protocol in plain JS (no
// React, no npm install) and misbehaves on demand.
//
//   node fault_worker.mjs [mode]
//     modes: normal (default) | no-ready | exit-before-ready | noise-before-ready
//
// Each "component" is a behaviour; its props carry the parameters:
//   echo {text}            → html = text
//   pid                    → html = this process's pid
//   throw {message}        → a render error; the worker stays up
//   exit                   → writes half a reply, then exits with code 7
//   slow {ms, text}        → replies after ms milliseconds
//   hold {release, started, text}
//                          → creates the file `started` (if given), then replies once the
//                            file `release` exists
//   noisy {text}           → console.log and a partial line before the reply, and a
//                            partial line after it that the next reply continues
//   junk {text}            → malformed JSON, a string id, an unknown id, a duplicate of the
//                            previous reply, then the reply, then a duplicate of it
//   split {text}           → writes half the reply line, waits 100 ms, writes the rest
//   big {size}             → html of `size` bytes
import { existsSync, writeFileSync } from 'node:fs';

const mode = process.argv[2] ?? 'normal';
const write = (text) => process.stdout.write(text);
const reply = (message) => write(`${JSON.stringify(message)}\n`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let lastId = 0;

async function handle(message) {
  const { id } = message;
  if (message.method === 'ping') {
    reply({ id, pong: true });
    return;
  }
  const { component, props = {} } = message.params;
  switch (component) {
    case 'echo':
      reply({ id, html: props.text });
      break;
    case 'pid':
      reply({ id, html: String(process.pid) });
      break;
    case 'throw':
      try {
        throw new Error(props.message);
      } catch (err) {
        reply({ id, error: err.message });
      }
      break;
    case 'exit':
      write(`{"id":${id},"html":"half a rep`);
      process.exit(7);
      break;
    case 'slow':
      await sleep(props.ms);
      reply({ id, html: props.text });
      break;
    case 'hold':
      if (props.started) writeFileSync(props.started, '');
      while (!existsSync(props.release)) await sleep(10);
      reply({ id, html: props.text });
      break;
    case 'noisy':
      console.log('console.log on stdout, before the reply');
      write('a partial line');
      await sleep(50);
      write(' ends later\n');
      reply({ id, html: props.text });
      // Never ended: the next reply follows it on the same line.
      write('and a partial line after the reply, ');
      break;
    case 'junk':
      write('{"id":\n');
      write('not json at all\n');
      write('[1,2,3]\n');
      write(`{"id":"${id}","html":"a string id"}\n`);
      reply({ id: id + 1000, html: 'an unknown id' });
      if (lastId > 0) reply({ id: lastId, html: 'a duplicate of the previous reply' });
      reply({ id, html: props.text });
      reply({ id, html: 'a duplicate of this reply' });
      break;
    case 'split': {
      const line = `${JSON.stringify({ id, html: props.text })}\n`;
      const half = Math.floor(line.length / 2);
      write(line.slice(0, half));
      await sleep(100);
      write(line.slice(half));
      break;
    }
    case 'big':
      reply({ id, html: 'x'.repeat(props.size) });
      break;
    default:
      reply({ id, error: `unknown component ${component}` });
  }
  lastId = id;
}

if (mode === 'exit-before-ready') {
  console.error('fault worker: exiting before ready');
  process.exit(3);
}
if (mode === 'noise-before-ready') {
  write('a banner line before ready\n');
}
if (mode === 'no-ready') {
  console.error('fault worker: never ready');
} else {
  reply({ id: 0, ready: true });
}

let pending = Promise.resolve();
let buffered = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  buffered += chunk;
  let newline = buffered.indexOf('\n');
  while (newline !== -1) {
    const message = JSON.parse(buffered.slice(0, newline));
    buffered = buffered.slice(newline + 1);
    pending = pending.then(() => handle(message));
    newline = buffered.indexOf('\n');
  }
});
process.stdin.on('end', () => pending.then(() => process.exit(0)));
