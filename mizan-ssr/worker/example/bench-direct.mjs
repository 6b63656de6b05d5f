// The baseline of the SSR benchmark: renders `Greeting` N times in this one process, through the
// same function the worker uses, with no pool and no pipes, and prints the rate to stderr.
//
//     node worker/example/bench-direct.mjs [N]
import { renderComponent } from '../worker.mjs';
import * as components from './components.mjs';

const n = Number(process.argv[2] ?? 20000);
const registry = new Map(Object.entries(components));
const props = { name: 'Alice', items: ['one', 'two', 'three'] };
for (let i = 0; i < 1000; i += 1) renderComponent(registry, 'Greeting', props); // warm-up
const start = process.hrtime.bigint();
for (let i = 0; i < n; i += 1) renderComponent(registry, 'Greeting', props);
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
console.error(
  `direct: ${n} renders in ${seconds.toFixed(3)} s = ${Math.round(n / seconds)} renders/s ` +
    `(${((seconds / n) * 1e6).toFixed(2)} µs per render)`,
);
