// Running a Keel disk in QEMU: arguments (pure), a KVM probe with TCG fallback, and the launch.
import { spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { BuildError } from './errors.js';
import { requireHostFile, which } from './host-tools.js';

/** Paths of Debian's OVMF build (package ovmf). */
export const OVMF = { code: '/usr/share/OVMF/OVMF_CODE_4M.fd', vars: '/usr/share/OVMF/OVMF_VARS_4M.fd' };

/** What a QEMU run needs. */
export interface QemuOptions {
  disk: string; // the overlay (qcow2) QEMU writes to
  uefi?: boolean;
  varsFile?: string; // writable copy of OVMF_VARS for UEFI
  memoryMiB?: number;
  cpus?: number;
  accel: 'kvm' | 'tcg';
  sshPort?: number; // host loopback port forwarded to the guest's 22
  hostForwards?: { host: number; guest: number }[]; // more host loopback TCP ports forwarded to the guest
  userData?: string; // file handed to the guest as fw_cfg opt/keel/user-data
  interactive?: boolean; // serial + monitor on the terminal (Ctrl-A x quits) vs. serial on stdio pipes
  extra?: string[];
}

/** The qemu-system-x86_64 command line for `o`. */
export function qemuArgs(o: QemuOptions): string[] {
  const a = [
    '-machine',
    'q35',
    '-accel',
    o.accel,
    '-m',
    String(o.memoryMiB ?? 1024),
    '-smp',
    String(o.cpus ?? 2),
    '-nodefaults',
    '-no-user-config',
  ];
  if (o.accel === 'tcg') a.push('-cpu', 'max');
  else a.push('-cpu', 'host');
  a.push(
    ...(o.interactive
      ? ['-nographic', '-serial', 'mon:stdio']
      : ['-display', 'none', '-serial', 'stdio', '-monitor', 'none']),
  );
  if (o.uefi) {
    if (!o.varsFile) throw new TypeError('cannot boot UEFI: no writable OVMF vars file given');
    a.push(
      '-drive',
      `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF.code}`,
      '-drive',
      `if=pflash,format=raw,unit=1,file=${o.varsFile}`,
    );
  }
  a.push('-drive', `if=virtio,format=qcow2,file=${o.disk}`);
  const fwd = [...(o.sshPort ? [{ host: o.sshPort, guest: 22 }] : []), ...(o.hostForwards ?? [])]
    .map((f) => `,hostfwd=tcp:127.0.0.1:${f.host}-:${f.guest}`)
    .join('');
  a.push('-netdev', `user,id=n0${fwd}`, '-device', 'virtio-net-pci,netdev=n0');
  // A hardware watchdog for kernels that drive it; Debian's cloud kernel has no i6300esb driver,
  // so the initramfs arms softdog instead (builder/initramfs-plan.ts).
  a.push('-device', 'i6300esb');
  if (o.userData) a.push('-fw_cfg', `name=opt/keel/user-data,file=${resolve(o.userData)}`);
  return [...a, ...(o.extra ?? [])];
}

// A 512-byte boot sector: `mov al,1; out 0xf4,al; hlt`. With isa-debug-exit QEMU exits with 3.
function probeDisk(): Buffer {
  const b = Buffer.alloc(512);
  Buffer.from([0xb0, 0x01, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd]).copy(b);
  b.writeUInt16LE(0xaa55, 510);
  return b;
}

/**
 * Whether KVM works: boots a one-instruction disk under KVM and waits a few seconds. On these
 * machines /dev/kvm exists but KVM can hang, so "it started" is not enough: it must finish.
 */
export function probeKvm(timeoutMs = 4000): boolean {
  kvmWorks ??= runKvmProbe(timeoutMs);
  return kvmWorks;
}
let kvmWorks: boolean | undefined;

function runKvmProbe(timeoutMs: number): boolean {
  if (process.env.KEEL_ACCEL === 'tcg') return false;
  if (process.env.KEEL_ACCEL === 'kvm') return true;
  if (!existsSync('/dev/kvm')) return false;
  const dir = mkdtempSync(join(tmpdir(), 'keel-kvm-'));
  const disk = join(dir, 'probe.img');
  writeFileSync(disk, probeDisk());
  // The same CPU model as a real boot: KVM here passes a probe with the default CPU and still
  // asserts on the host CPU's MSRs (seen: "failed to set MSR 0x10a"). The probe uses the pc
  // machine because SeaBIOS boots its IDE disk fastest.
  try {
    return runProbe(disk, timeoutMs);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function runProbe(disk: string, timeoutMs: number): boolean {
  const r = spawnSync(
    which('qemu-system-x86_64'),
    [
      '-machine',
      'pc',
      '-accel',
      'kvm',
      '-cpu',
      'host',
      '-display',
      'none',
      '-nodefaults',
      '-no-user-config',
      '-device',
      'isa-debug-exit,iobase=0xf4,iosize=0x04',
      '-drive',
      `if=ide,format=raw,file=${disk}`,
    ],
    { timeout: timeoutMs, stdio: 'ignore' },
  );
  return r.status === 3;
}

/** Makes a copy-on-write overlay of `image` in `dir` (the built image stays clean). */
export function makeOverlay(image: string, dir: string): string {
  const overlay = join(dir, 'disk.qcow2');
  const r = spawnSync(which('qemu-img'), ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', resolve(image), overlay], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new BuildError('ETOOL', `cannot create an overlay of ${image}: ${r.stderr}`);
  return overlay;
}

/** Options of launchVm: the image and how to boot it. */
export interface LaunchOptions {
  image: string;
  uefi?: boolean;
  memoryMiB?: number;
  sshPort?: number;
  hostForwards?: QemuOptions['hostForwards'];
  userData?: string;
  interactive?: boolean;
  stateDir?: string;
  accel?: 'kvm' | 'tcg';
  extraDrives?: string[];
}

/** Starts QEMU on an overlay of `image`; returns the child (serial on its stdio). */
export function launchVm(o: LaunchOptions): {
  child: ChildProcess;
  args: string[];
  stateDir: string;
  accel: 'kvm' | 'tcg';
} {
  if (!existsSync(o.image))
    throw new BuildError('ENOIMAGE', `cannot boot ${o.image}: no such image (run keel build, or make image)`);
  const stateDir = o.stateDir ?? mkdtempSync(join(tmpdir(), 'keel-vm-'));
  mkdirSync(stateDir, { recursive: true });
  const disk = existsSync(join(stateDir, 'disk.qcow2')) ? join(stateDir, 'disk.qcow2') : makeOverlay(o.image, stateDir);
  let varsFile: string | undefined;
  if (o.uefi) {
    requireHostFile(OVMF.code);
    varsFile = join(stateDir, 'OVMF_VARS.fd');
    if (!existsSync(varsFile)) copyFileSync(OVMF.vars, varsFile);
  }
  if (o.userData) readFileSync(o.userData); // fail here, clearly, if it is unreadable
  const accel = o.accel ?? (probeKvm() ? 'kvm' : 'tcg');
  // Extra read-only disks (a config drive, say) come after the system disk, as vdb, vdc, ...
  const extra = (o.extraDrives ?? []).flatMap((f) => ['-drive', `if=virtio,format=raw,readonly=on,file=${resolve(f)}`]);
  const args = qemuArgs({
    disk,
    uefi: o.uefi,
    varsFile,
    memoryMiB: o.memoryMiB,
    accel,
    sshPort: o.sshPort,
    hostForwards: o.hostForwards,
    userData: o.userData,
    interactive: o.interactive,
    extra,
  });
  const stdio: StdioOptions = o.interactive ? 'inherit' : ['pipe', 'pipe', 'pipe'];
  const child = spawn(which('qemu-system-x86_64'), args, { stdio });
  // A state directory we made ourselves goes away with QEMU; one the caller named is kept.
  if (!o.stateDir) child.on('exit', () => rmSync(stateDir, { recursive: true, force: true }));
  return { child, args, stateDir, accel };
}
