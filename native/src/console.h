/* console.h: spawn()'s `console` option, runc's console socket: the child opens a pseudo-terminal
 * in its own root (a container's devpts, after pivot_root or after entering a running container),
 * so that inside `tty` names it; the master travels back over a unix socket (SCM_RIGHTS) and the
 * slave becomes 0-2 (those not given) and the controlling terminal. */
#ifndef KEEL_CONSOLE_H
#define KEEL_CONSOLE_H

#include "spawn.h"

/* Its steps, reported like spawn.c's ST_* and container.h's CT_*. */
enum { CS_FIRST = 200, CS_DUP = CS_FIRST, CS_OPEN, CS_UNLOCK, CS_PEER, CS_SIZE, CS_SEND, CS_CTTY, CS_DUP2 };

/* Child, in its final root, after setsid: the pty, the master sent over `sock` (then closed). */
void console_setup(const spawn_opts *o, int errfd, int sock);

/* Parent: throws the error of a CS_* step; false when `r` is not one. */
bool console_throw(napi_env env, const spawn_opts *o, const child_report *r);

#endif
