// The shipped worker with the example components, plus one that writes to stdout in every way
// it can while rendering: the worker must keep all of it off the protocol channel.
import { serve } from '../../worker/worker.mjs';
import * as examples from '../../worker/example/components.mjs';

function Chatty({ text }) {
  console.log('console.log while rendering');
  console.info('console.info');
  console.debug('console.debug');
  console.table([{ a: 1 }]);
  process.stdout.write('a direct write to process.stdout, without a newline');
  return text;
}

serve({ ...examples, Chatty });
