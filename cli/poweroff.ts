// keel poweroff: stop every unit in order, then poweroff the machine.
import { shutdownVerb } from './shutdown-verb.js';

export const verb = shutdownVerb('poweroff');
