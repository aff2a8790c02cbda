// keel images: the images in the store, as `docker images` lists them.
import type { Verb } from './main.js';
import { imageRows, ROOT_OPTION, storeAt, table } from './container-common.js';

export const verb: Verb = {
  summary: 'List the container images in the store.',
  usage: 'keel images [--format json] [--root DIR]',
  options: { ...ROOT_OPTION, format: { type: 'string' }, quiet: { type: 'boolean', short: 'q', default: false } },
  async run(v) {
    const images = storeAt(v).list();
    if (v.format === 'json') {
      process.stdout.write(JSON.stringify(images, null, 2) + '\n');
      return 0;
    }
    if (v.format) throw new TypeError(`keel images: unknown --format ${JSON.stringify(v.format)} (use: json)`);
    if (v.quiet) {
      process.stdout.write(images.map((i) => i.id.replace(/^sha256:/, '').slice(0, 12) + '\n').join(''));
      return 0;
    }
    process.stdout.write(
      table(
        ['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'],
        images.flatMap((i) => imageRows(i)),
      ),
    );
    return 0;
  },
};
