// keel serve DIR: serve update payloads over HTTP (with Range) for tests and small setups.
import type { Verb } from './main.js';
import { serveDirectory } from '../builder/serve.js';

export const verb: Verb = {
  summary: 'Serve a directory of update payloads over HTTP (Range supported).',
  usage: 'keel serve [DIR] [--port 8080] [--host 127.0.0.1]',
  options: { port: { type: 'string', default: '8080' }, host: { type: 'string', default: '127.0.0.1' } },
  async run(v, [dir = 'out/update']) {
    const port = Number(v.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw new TypeError(`--port must be a port number, received ${JSON.stringify(v.port)}`);
    await serveDirectory(dir, port, String(v.host));
    process.stderr.write(`keel serve: ${dir} on http://${v.host}:${port}/\n`);
    return new Promise<number>(() => {});
  },
};
