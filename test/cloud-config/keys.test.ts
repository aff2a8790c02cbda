// Each key of the issue: read into the typed config when right, reported as coreos-cloudinit did
// when wrong (unknown keys, wrong types, deprecated keys, `valid:` values, discovery URL, /usr).
import assert from 'node:assert/strict';
import { formatReport, validateCloudConfig } from '../../cloud-config/validate.js';
import {
  CLOUD_CONFIG_SCHEMA,
  humanType,
  isCloudConfigValue,
  schemaErrors,
  type CloudConfig,
} from '../../cloud-config/schema.js';
import { ETCD2, LOCKSMITH, sectionEnvironment } from '../../cloud-config/schema-sections.js';

const report = (body: string) =>
  formatReport(validateCloudConfig(`#cloud-config\n${body}`).report)
    .split('\n')
    .filter(Boolean);

const EVERY_KEY = `#cloud-config
hostname: node1
ssh_authorized_keys:
  - ssh-ed25519 AAAA core@example
users:
  - name: alice
    passwd: $6$salt$hash
    gecos: Alice
    homedir: /home/alice
    no_create_home: false
    primary_group: alice
    groups: [wheel, docker]
    no_user_group: false
    system: false
    shell: /bin/bash
    ssh_authorized_keys: [ssh-ed25519 BBBB alice@example]
write_files:
  - path: /etc/motd
    content: hi
    owner: root:root
    permissions: '0644'
    encoding: ""
manage_etc_hosts: localhost
coreos:
  units:
    - name: hello.service
      content: "[Service]\\nExecStart=/bin/true\\n"
      runtime: true
      enable: true
      mask: false
      command: start
      drop_ins:
        - name: 10-env.conf
          content: "[Service]\\nEnvironment=A=1\\n"
  etcd2:
    name: node1
    advertise_client_urls: http://$private_ipv4:2379
    proxy: "off"
    heartbeat_interval: 100
  etcd:
    discovery: https://discovery.etcd.io/abc
  fleet:
    metadata: region=x
    verbosity: 1
  flannel:
    interface: eth0
    etcd_endpoints: http://127.0.0.1:2379
  locksmith:
    group: g
    window_start: Sun 5:00
    window_length: 1h
    endpoint: http://127.0.0.1:2379
    etcd_cafile: /etc/ssl/ca.pem
  update:
    reboot_strategy: reboot
    group: stable
    server: https://update.example/v1/update/
  oem:
    id: qemu
    name: QEMU
    version_id: "1.0"
    home_url: https://keel.example/
    bug_report_url: https://keel.example/bugs
`;

describe('cloud-config keys', () => {
  it('reads every key of the issue into the typed config, warning only about deprecated sections', () => {
    const v = validateCloudConfig(EVERY_KEY);
    assert.deepEqual(formatReport(v.report).split('\n').filter(Boolean), [
      'line 35: warning: deprecated key "etcd2" (etcd2 is no longer shipped in Container Linux)',
      'line 40: warning: deprecated key "etcd" (etcd is no longer shipped in Container Linux)',
      'line 42: warning: deprecated key "fleet" (fleet is no longer shipped in Container Linux)',
    ]);
    const want: CloudConfig = {
      hostname: 'node1',
      ssh_authorized_keys: ['ssh-ed25519 AAAA core@example'],
      users: [
        {
          name: 'alice',
          passwd: '$6$salt$hash',
          gecos: 'Alice',
          homedir: '/home/alice',
          no_create_home: false,
          primary_group: 'alice',
          groups: ['wheel', 'docker'],
          no_user_group: false,
          system: false,
          shell: '/bin/bash',
          ssh_authorized_keys: ['ssh-ed25519 BBBB alice@example'],
        },
      ],
      write_files: [{ path: '/etc/motd', content: 'hi', owner: 'root:root', permissions: '0644', encoding: '' }],
      manage_etc_hosts: 'localhost',
      coreos: {
        units: [
          {
            name: 'hello.service',
            content: '[Service]\nExecStart=/bin/true\n',
            runtime: true,
            enable: true,
            mask: false,
            command: 'start',
            drop_ins: [{ name: '10-env.conf', content: '[Service]\nEnvironment=A=1\n' }],
          },
        ],
        etcd2: {
          name: 'node1',
          advertise_client_urls: 'http://$private_ipv4:2379',
          proxy: 'off',
          heartbeat_interval: 100,
        },
        etcd: { discovery: 'https://discovery.etcd.io/abc' },
        fleet: { metadata: 'region=x', verbosity: 1 },
        flannel: { interface: 'eth0', etcd_endpoints: 'http://127.0.0.1:2379' },
        locksmith: {
          group: 'g',
          window_start: 'Sun 5:00',
          window_length: '1h',
          endpoint: 'http://127.0.0.1:2379',
          etcd_cafile: '/etc/ssl/ca.pem',
        },
        update: { reboot_strategy: 'reboot', group: 'stable', server: 'https://update.example/v1/update/' },
        oem: {
          id: 'qemu',
          name: 'QEMU',
          version_id: '1.0',
          home_url: 'https://keel.example/',
          bug_report_url: 'https://keel.example/bugs',
        },
      },
    };
    assert.deepEqual(v.config, want);
    assert.deepEqual(schemaErrors(v.config), []);
  });

  const wrong: [string, string, string[]][] = [
    ['hostname', 'hostname: [a]\n', ['line 2: warning: incorrect type for "hostname" (want string)']],
    ['hostname: null', 'hostname:\n', ['line 2: warning: incorrect type for "hostname" (want string)']],
    [
      'ssh_authorized_keys',
      'ssh_authorized_keys: key\n',
      ['line 2: warning: incorrect type for "ssh_authorized_keys" (want []string)'],
    ],
    [
      'users[].groups',
      'users:\n  - name: a\n    groups: wheel\n',
      ['line 4: warning: incorrect type for "groups" (want []string)'],
    ],
    [
      'users[].system',
      'users:\n  - name: a\n    system: maybe\n',
      ['line 4: warning: incorrect type for "system" (want bool)'],
    ],
    ['users[] unknown', 'users:\n  - name: a\n    sudo: ALL\n', ['line 4: warning: unrecognized key "sudo"']],
    [
      'users[] deprecated',
      'users:\n  - name: a\n    coreos-ssh-import-github-users: [x]\n',
      [
        'line 4: warning: deprecated key "coreos_ssh_import_github_users" (trying to fetch ' +
          'from a remote endpoint introduces too many intermittent errors)',
      ],
    ],
    [
      'write_files',
      'write_files:\n  path: /x\n',
      ['line 2: warning: incorrect type for "write_files" (want []struct)'],
    ],
    [
      'write_files[].permissions',
      'write_files:\n  - path: /x\n    permissions: 0999\n',
      ['line 4: error: invalid value 0999'],
    ],
    [
      'write_files[].permissions rwx',
      'write_files:\n  - path: /x\n    permissions: rw-r--r--\n',
      ['line 4: error: invalid value rw-r--r--'],
    ],
    [
      'write_files under /usr',
      'write_files:\n  - path: /usr/share/x\n  - path: /usr\n',
      ['line 3: error: file cannot be written to a read-only filesystem'],
    ],
    [
      'manage_etc_hosts',
      'manage_etc_hosts: [localhost]\n',
      ['line 2: warning: incorrect type for "manage_etc_hosts" (want string)'],
    ],
    ['coreos', 'coreos: [x]\n', ['line 2: warning: incorrect type for "coreos" (want struct)']],
    [
      'coreos.units[].enable',
      'coreos:\n  units:\n    - name: a\n      enable: 1\n',
      ['line 5: warning: incorrect type for "enable" (want bool)'],
    ],
    [
      'coreos.units[].command',
      'coreos:\n  units:\n    - name: a\n      command: bounce\n',
      ['line 5: error: invalid value bounce'],
    ],
    [
      'coreos.units[].drop_ins',
      'coreos:\n  units:\n    - name: a\n      drop_ins: x\n',
      ['line 5: warning: incorrect type for "drop_ins" (want []struct)'],
    ],
    [
      'coreos.units[].drop_ins[]',
      'coreos:\n  units:\n    - name: a\n      drop_ins: [x]\n',
      ['line 5: warning: incorrect type for "drop_ins[0]" (want struct)'],
    ],
    [
      'coreos.update.reboot_strategy',
      'coreos:\n  update:\n    reboot_strategy: always\n',
      ['line 4: error: invalid value always'],
    ],
    [
      'coreos.update unknown',
      'coreos:\n  update:\n    channel: beta\n',
      ['line 4: warning: unrecognized key "channel"'],
    ],
    [
      'coreos.locksmith.window_start',
      'coreos:\n  locksmith:\n    window_start: Noon 25:00\n',
      ['line 4: error: invalid value Noon 25:00'],
    ],
    [
      'coreos.locksmith.window_length',
      'coreos:\n  locksmith:\n    window_length: "10"\n',
      ['line 4: error: invalid value 10'],
    ],
    ['coreos.oem unknown', 'coreos:\n  oem:\n    vendor: x\n', ['line 4: warning: unrecognized key "vendor"']],
    ['coreos.flannel unknown', 'coreos:\n  flannel:\n    iface: eth0\n', ['line 4: warning: unrecognized key "iface"']],
    [
      'coreos.fleet.verbosity',
      'coreos:\n  fleet:\n    verbosity: loud\n',
      [
        'line 3: warning: deprecated key "fleet" (fleet is no longer shipped in Container Linux)',
        'line 4: warning: incorrect type for "verbosity" (want int)',
      ],
    ],
    [
      'coreos.etcd2.proxy',
      'coreos:\n  etcd2:\n    proxy: maybe\n',
      [
        'line 3: warning: deprecated key "etcd2" (etcd2 is no longer shipped in Container Linux)',
        'line 4: error: invalid value maybe',
      ],
    ],
    [
      'coreos.etcd float and int',
      'coreos:\n  etcd:\n    cluster_remove_delay: 1\n    peer_election_timeout: 1.5\n',
      [
        'line 3: warning: deprecated key "etcd" (etcd is no longer shipped in Container Linux)',
        'line 5: warning: incorrect type for "peer_election_timeout" (want int)',
      ],
    ],
    [
      'coreos.etcd.discovery',
      'coreos:\n  etcd:\n    discovery: discovery.etcd.io/abc\n',
      [
        'line 3: warning: deprecated key "etcd" (etcd is no longer shipped in Container Linux)',
        'line 4: warning: discovery URL is not valid',
      ],
    ],
    [
      'write_files under coreos',
      'coreos:\n  write-files: []\n',
      ["line 3: info: write_files doesn't belong under coreos", 'line 3: warning: unrecognized key "write_files"'],
    ],
    [
      'unknown keys quoted as Go does',
      'a"b: 1\n"tab\\tkey": 2\n',
      ['line 2: warning: unrecognized key "a\\"b"', 'line 3: warning: unrecognized key "tab\\tkey"'],
    ],
  ];
  for (const [what, body, want] of wrong) it(`reports a wrong ${what}`, () => assert.deepEqual(report(body), want));

  it('leaves values of the wrong type out of the typed config (Go kept the zero value)', () => {
    const v = validateCloudConfig(
      '#cloud-config\nhostname: [a]\nusers:\n  - true\n  - name: b\n' +
        '    system: maybe\nssh_authorized_keys: [k, {a: 1}, 7]\n',
    );
    assert.deepEqual(v.config, { users: [{ name: 'b' }], ssh_authorized_keys: ['k', '7'] });
  });

  it('gives users, files, units and drop-ins a name even when the document has none', () => {
    const v = validateCloudConfig(
      '#cloud-config\nusers: [{}]\nwrite_files: [{}]\ncoreos:\n  units:\n    - drop_ins: [{}]\n',
    );
    assert.deepEqual(v.config, {
      users: [{ name: '' }],
      write_files: [{ path: '' }],
      coreos: { units: [{ name: '', drop_ins: [{ name: '', content: '' }] }] },
    });
  });
});

describe('cloud-config schema (ajv)', () => {
  it('accepts typed configs and refuses wrong ones, naming the path', () => {
    assert.ok(isCloudConfigValue({ hostname: 'a', coreos: { update: { reboot_strategy: 'off' } } }));
    assert.deepEqual(schemaErrors({ hostname: 5 }), ['/hostname: must be string']);
    assert.deepEqual(schemaErrors({ coreos: { update: { reboot_strategy: 'always' } } }), [
      '/coreos/update/reboot_strategy: must match pattern "^$|^(best-effort|etcd-lock|reboot|off)$"',
    ]);
    assert.deepEqual(schemaErrors({ bogus: 1 }), ['/: must NOT have additional properties']);
  });

  it('names types as Go did', () => {
    const p = CLOUD_CONFIG_SCHEMA.properties!;
    assert.deepEqual(
      [
        p.hostname,
        p.users,
        p.ssh_authorized_keys,
        p.coreos,
        p.coreos.properties!.fleet.properties!.verbosity,
        p.coreos.properties!.etcd.properties!.retry_interval,
      ].map(humanType),
      ['string', '[]struct', '[]string', 'struct', 'int', 'float64'],
    );
  });

  it('knows the environment each service section sets, leaving zero values out', () => {
    assert.deepEqual(
      sectionEnvironment(ETCD2, { name: 'n1', heartbeat_interval: 100, debug: false, proxy: 'off', wal_dir: '' }),
      [
        ['ETCD_HEARTBEAT_INTERVAL', '100'],
        ['ETCD_NAME', 'n1'],
        ['ETCD_PROXY', 'off'],
      ],
    );
    assert.deepEqual(sectionEnvironment(LOCKSMITH, { window_start: 'Sun 5:00', window_length: '1h' }), [
      ['LOCKSMITHD_REBOOT_WINDOW_START', 'Sun 5:00'],
      ['LOCKSMITHD_REBOOT_WINDOW_LENGTH', '1h'],
    ]);
  });
});
