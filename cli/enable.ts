// keel enable UNIT...: enable units (links under /etc/systemd/system), then reload PID 1's view.
import { fileVerb } from './file-verb.js';

export const verb = fileVerb('enable', 'Enable units.');
