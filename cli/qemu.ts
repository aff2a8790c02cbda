// keel qemu: boot a built image in QEMU with the serial console on this terminal.
import type { Verb } from './main.js';
import { launchVm } from '../builder/qemu.js';
import { checkUserDataFile } from '../cloud-config/check-file.js';

export const verb: Verb = {
  summary: 'Boot out/keel.img in QEMU on a copy-on-write overlay (Ctrl-A x quits).',
  usage: 'keel qemu [--image out/keel.img] [--uefi] [--memory MiB] [--ssh-port N] [--user-data FILE] [--state DIR]',
  options: {
    image: { type: 'string', default: 'out/keel.img' },
    uefi: { type: 'boolean', default: false },
    memory: { type: 'string', default: '1024' },
    'ssh-port': { type: 'string', default: '2222' },
    'user-data': { type: 'string' },
    state: { type: 'string' },
  },
  async run(v) {
    const memoryMiB = Number(v.memory);
    const sshPort = Number(v['ssh-port']);
    if (!Number.isInteger(memoryMiB) || memoryMiB < 128)
      throw new TypeError(`--memory must be a number of MiB >= 128, received ${JSON.stringify(v.memory)}`);
    if (!Number.isInteger(sshPort) || sshPort < 1 || sshPort > 65535)
      throw new TypeError(`--ssh-port must be a port number, received ${JSON.stringify(v['ssh-port'])}`);
    const userData = v['user-data'] as string | undefined;
    if (userData) {
      // Check before booting: a bad document would only be reported inside the machine.
      const check = checkUserDataFile(userData);
      for (const l of check.lines) process.stderr.write(`${l}\n`);
      if (!check.ok) {
        process.stderr.write(`keel qemu: not booting: fix ${userData} first (keel validate ${userData})\n`);
        return 1;
      }
    }
    const vm = launchVm({
      image: String(v.image),
      uefi: !!v.uefi,
      memoryMiB,
      sshPort,
      userData: v['user-data'] as string | undefined,
      interactive: true,
      stateDir: v.state as string | undefined,
    });
    process.stderr.write(
      `keel qemu: ${vm.accel.toUpperCase()}, ${v.uefi ? 'UEFI' : 'BIOS'}, ssh on ` +
        `127.0.0.1:${sshPort}, state in ${vm.stateDir}; Ctrl-A x quits\n`,
    );
    return new Promise((resolve) => vm.child.on('exit', (code) => resolve(code ?? 1)));
  },
};
