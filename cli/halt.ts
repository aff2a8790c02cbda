// keel halt: stop every unit in order, then halt the machine.
import { shutdownVerb } from './shutdown-verb.js';

export const verb = shutdownVerb('halt');
