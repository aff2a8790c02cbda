// [Socket] settings for the socket file itself: SocketUser=, SocketGroup= (its owner) and
// DirectoryMode= (the mode of the directories made for it), as systemd.socket(5).
import { expand, parseOr, type Handler } from './interpret-common.js';
import { isUserGroupName, parseMode } from './values.js';

const owner =
  (field: 'socketUser' | 'socketGroup'): Handler =>
  (a, it) => {
    if (a.value === '') {
      it.unit.socket![field] = null;
      return;
    }
    const v = expand(it, a, a.value);
    if (v === null) return;
    if (!isUserGroupName(v)) {
      it.report(a, 'error', `Invalid user/group name or numeric ID, ignoring: ${v}`);
      return;
    }
    it.unit.socket![field] = v;
  };

/** The socket-file directives of [Socket]. */
export const SOCKET_OWNER_HANDLERS: Record<string, Handler> = {
  SocketUser: owner('socketUser'),
  SocketGroup: owner('socketGroup'),
  DirectoryMode: (a, it) => {
    const m = a.value === '' ? 0o755 : parseOr(it, a, () => parseMode(a.value));
    if (m !== undefined) it.unit.socket!.directoryMode = m;
  },
};
