// Worker entry for the example components: `node worker/example/server.mjs`.
// The worker module comes first, so its stdout guard runs before the components load.
import { serve } from '../worker.mjs';
import * as components from './components.mjs';

serve(components);
