// The keel command's entry in the image: /usr/bin/keel (and systemctl, journalctl) run this bundle.
import { main } from './main.js';

main(process.argv.slice(2), process.env.KEEL_PROGRAM || undefined).then(
  (code) => {
    process.exitCode = code ?? 0;
  },
  (err) => {
    process.stderr.write(`keel: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
