// keel keys generate: the ed25519 key pair that signs updates (its public half is baked into images).
import type { Verb } from './main.js';
import { generateKeys } from '../builder/payload.js';

export const verb: Verb = {
  summary: 'Make the ed25519 key pair that signs update payloads.',
  usage: 'keel keys generate [--dir keys]',
  options: { dir: { type: 'string', default: 'keys' } },
  async run(v, [sub]) {
    if (sub !== 'generate')
      throw new TypeError(`keel keys: unknown subcommand ${JSON.stringify(sub ?? '')} (use: generate)`);
    const k = generateKeys(String(v.dir));
    process.stdout.write(`private key: ${k.privateKey} (keep it secret)\npublic key:  ${k.publicKey}\n`);
    return 0;
  },
};
