// The shape of a unit's status as PID 1 reports it over the control socket.
import type { JournalEntry } from './journal.js';

/** One unit as the control socket describes it. */
export interface UnitStatus {
  name: string;
  description: string;
  loadState: 'loaded' | 'not-found' | 'masked' | 'bad-setting';
  activeState: 'active' | 'reloading' | 'inactive' | 'failed' | 'activating' | 'deactivating';
  subState: string;
  result: string;
  enabled: string;
  fragmentPath: string | null;
  dropIns: string[];
  mainPid: number | null;
  since: number | null;
  memory: number | null;
  tasks: number | null;
  statusText?: string;
  /** A Condition*= that skipped the last start, or an Assert*= that failed it. */
  condition?: string;
  logs?: JournalEntry[];
}
