// keel payload: turn a built image into a signed update (USR image + manifest + signature).
import { closeSync, openSync, readSync } from 'node:fs';
import type { Verb } from './main.js';
import { makePayload } from '../builder/payload.js';
import { parseGpt } from '../builder/gpt.js';

export const verb: Verb = {
  summary: 'Make a signed update payload from a built image.',
  usage: 'keel payload [--image out/keel.img] --key keys/keel-update.key [--out out/update] [--version V]',
  options: {
    image: { type: 'string', default: 'out/keel.img' },
    key: { type: 'string' },
    out: { type: 'string', default: 'out/update' },
    version: { type: 'string' },
  },
  async run(v) {
    if (!v.key) throw new TypeError('keel payload: --key is required (make one with keel keys generate)');
    const image = String(v.image);
    const head = Buffer.alloc(34 * 512);
    const fd = openSync(image, 'r');
    try {
      readSync(fd, head, 0, head.length, 0);
    } finally {
      closeSync(fd);
    }
    const usrA = parseGpt(head).partitions.find((p) => p.name === 'USR-A');
    if (!usrA) throw new Error(`cannot make a payload: ${image} has no USR-A partition`);
    const r = makePayload({
      image,
      key: String(v.key),
      outDir: String(v.out),
      version: v.version as string | undefined,
      usrOffset: Number(usrA.firstLba) * 512,
    });
    process.stdout.write(`update ${r.version}: ${r.image}\nmanifest: ${r.manifest} (+ .sig)\n`);
    return 0;
  },
};
