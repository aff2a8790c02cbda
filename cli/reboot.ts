// keel reboot: stop every unit in order, then reboot the machine.
import { shutdownVerb } from './shutdown-verb.js';

export const verb = shutdownVerb('reboot');
