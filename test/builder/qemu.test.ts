// qemuArgs: the QEMU command line for BIOS and UEFI, user-data, SSH forwarding and accelerators.
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { OVMF, qemuArgs, type QemuOptions } from '../../builder/qemu.js';

/** Values following each occurrence of `flag`. */
const valuesOf = (args: string[], flag: string) => args.flatMap((a, i) => (a === flag ? [args[i + 1]] : []));
const base: QemuOptions = { disk: '/state/disk.qcow2', accel: 'kvm' };

describe('builder/qemu qemuArgs', () => {
  it('boots BIOS from the disk alone: no pflash', () => {
    const args = qemuArgs(base);
    assert.deepEqual(valuesOf(args, '-drive'), ['if=virtio,format=qcow2,file=/state/disk.qcow2']);
    assert.deepEqual(valuesOf(args, '-machine'), ['q35']);
    assert.deepEqual(valuesOf(args, '-m'), ['1024']);
    assert.deepEqual(valuesOf(args, '-smp'), ['2']);
    assert.ok(args.includes('-nodefaults') && args.includes('-no-user-config'));
  });

  it('boots UEFI with read-only OVMF code and writable vars, before the disk', () => {
    const args = qemuArgs({ ...base, uefi: true, varsFile: '/state/OVMF_VARS.fd' });
    assert.deepEqual(valuesOf(args, '-drive'), [
      `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF.code}`,
      'if=pflash,format=raw,unit=1,file=/state/OVMF_VARS.fd',
      'if=virtio,format=qcow2,file=/state/disk.qcow2',
    ]);
    assert.equal(OVMF.code, '/usr/share/OVMF/OVMF_CODE_4M.fd');
    assert.ok(!valuesOf(args, '-drive')[1].includes('readonly'));
  });

  it('refuses UEFI without a writable vars file with a TypeError', () => {
    assert.throws(
      () => qemuArgs({ ...base, uefi: true }),
      (e: any) => e instanceof TypeError && /OVMF vars/.test(e.message),
    );
  });

  it('hands user-data over fw_cfg as opt/keel/user-data with an absolute path', () => {
    const args = qemuArgs({ ...base, userData: 'examples/user-data.yaml' });
    assert.deepEqual(valuesOf(args, '-fw_cfg'), [`name=opt/keel/user-data,file=${resolve('examples/user-data.yaml')}`]);
    assert.ok(valuesOf(args, '-fw_cfg')[0].includes('file=/'));
    assert.deepEqual(valuesOf(qemuArgs(base), '-fw_cfg'), []);
  });

  it('forwards SSH from the host loopback only', () => {
    const args = qemuArgs({ ...base, sshPort: 2222 });
    assert.deepEqual(valuesOf(args, '-netdev'), ['user,id=n0,hostfwd=tcp:127.0.0.1:2222-:22']);
    assert.deepEqual(
      valuesOf(args, '-device').filter((d) => d.startsWith('virtio-net')),
      ['virtio-net-pci,netdev=n0'],
    );
    assert.deepEqual(valuesOf(qemuArgs(base), '-netdev'), ['user,id=n0']);
    assert.deepEqual(
      valuesOf(qemuArgs({ ...base, sshPort: 2222, hostForwards: [{ host: 18080, guest: 8080 }] }), '-netdev'),
      ['user,id=n0,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=tcp:127.0.0.1:18080-:8080'],
    );
  });

  it('uses -cpu max under TCG and -cpu host under KVM', () => {
    const tcg = qemuArgs({ ...base, accel: 'tcg' });
    assert.deepEqual(valuesOf(tcg, '-accel'), ['tcg']);
    assert.deepEqual(valuesOf(tcg, '-cpu'), ['max']);
    const kvm = qemuArgs(base);
    assert.deepEqual(valuesOf(kvm, '-accel'), ['kvm']);
    assert.deepEqual(valuesOf(kvm, '-cpu'), ['host']);
  });

  it('puts the serial console on stdio, with the monitor only when interactive', () => {
    const piped = qemuArgs(base);
    assert.deepEqual(valuesOf(piped, '-serial'), ['stdio']);
    assert.deepEqual(valuesOf(piped, '-monitor'), ['none']);
    assert.deepEqual(valuesOf(piped, '-display'), ['none']);
    const tty = qemuArgs({ ...base, interactive: true });
    assert.deepEqual(valuesOf(tty, '-serial'), ['mon:stdio']);
    assert.ok(tty.includes('-nographic'));
    assert.deepEqual(valuesOf(tty, '-monitor'), []);
  });

  it('adds the watchdog, memory, cpus and extra arguments last', () => {
    const args = qemuArgs({ ...base, memoryMiB: 2048, cpus: 4, extra: ['-s', '-S'] });
    assert.ok(valuesOf(args, '-device').includes('i6300esb'));
    assert.deepEqual(valuesOf(args, '-m'), ['2048']);
    assert.deepEqual(valuesOf(args, '-smp'), ['4']);
    assert.deepEqual(args.slice(-2), ['-s', '-S']);
  });
});
