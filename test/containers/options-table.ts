// The values both `keel run` and a .container unit must agree on (containers/options.ts): each
// row is a [Container] key, the keel run option it becomes, a value, and whether keel takes it.
// Used by the pure test (units/quadlet) and the CLI test (the real keel run).

export interface OptionRow {
  key: string;
  option: string;
  value: string;
  ok: boolean;
}

const rows = (key: string, option: string, good: string[], bad: string[]): OptionRow[] => [
  ...good.map((value) => ({ key, option, value, ok: true })),
  ...bad.map((value) => ({ key, option, value, ok: false })),
];

/** Accepted and refused values per option; CPUs=0 (no limit) was once refused and PublishPort=70000:80 accepted. */
export const OPTION_TABLE: OptionRow[] = [
  ...rows('CPUs', '--cpus', ['0', '0.5', '2', '0.01'], ['abc', '0.001', '-1', '1e3']),
  ...rows('Memory', '--memory', ['64m', '1g', '1048576', '1.5g'], ['lots', '64x', '-1m']),
  ...rows('PidsLimit', '--pids-limit', ['0', '-1', '100'], ['x', '-2', '1.5']),
  ...rows('HostName', '--hostname', ['web', 'a.example'], ['bad host!', `${'a'.repeat(60)}.example`, '-lead']),
  ...rows(
    'PublishPort',
    '-p',
    ['8080:80', '127.0.0.1:8080:80/udp'],
    ['70000:80', '80', '8080:80/sctp', '1-2:3', '999.1.1.1:80:80', '0:80'],
  ),
  ...rows('Network', '--network', ['bridge', 'none', 'host'], ['mynet', 'container:x']),
  ...rows('UserNS', '--userns', ['host', 'remap'], ['keep-id', 'nomap']),
  ...rows('Volume', '-v', ['/tmp:/data', '/tmp:/data:ro', '/tmp:/data:rw'], ['/tmp:/data:z', '/a:/b:ro:x']),
];
