// keel reload UNIT...: reload units through PID 1 and wait for the job's result.
import { jobVerb } from './job-verb.js';

export const verb = jobVerb('reload', 'Reload units.');
