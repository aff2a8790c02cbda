// The service sections under `coreos:` (etcd, etcd2, fleet, flannel, locksmith, update), field by
// field as coreos-cloudinit's config package had them: Go type, the environment variable the
// service reads, the `valid:` rule and the `deprecated:` note.

/** The Go types cloud-config fields have. */
export type GoType = 'string' | 'bool' | 'int' | 'float64';

/** One field: its Go type, its environment variable, and the rules on it. */
export interface FieldSpec {
  go: GoType;
  env: string;
  pattern?: string;
  deprecated?: string;
}

type Rules = Pick<FieldSpec, 'pattern' | 'deprecated'>;
const S = (env: string, x: Rules = {}) => ({ ...x, go: 'string' as const, env });
const B = (env: string, x: Rules = {}) => ({ ...x, go: 'bool' as const, env });
const I = (env: string, x: Rules = {}) => ({ ...x, go: 'int' as const, env });
const F = (env: string) => ({ go: 'float64' as const, env });

const ETCD2_ONLY = { deprecated: 'etcd2 options no longer work for etcd' };

/** coreos.etcd (etcd 0.4; the section itself is deprecated). */
export const ETCD = {
  addr: S('ETCD_ADDR'),
  advertise_client_urls: S('ETCD_ADVERTISE_CLIENT_URLS', ETCD2_ONLY),
  bind_addr: S('ETCD_BIND_ADDR'),
  ca_file: S('ETCD_CA_FILE'),
  cert_file: S('ETCD_CERT_FILE'),
  cluster_active_size: I('ETCD_CLUSTER_ACTIVE_SIZE'),
  cluster_remove_delay: F('ETCD_CLUSTER_REMOVE_DELAY'),
  cluster_sync_interval: F('ETCD_CLUSTER_SYNC_INTERVAL'),
  cors: S('ETCD_CORS'),
  data_dir: S('ETCD_DATA_DIR'),
  discovery: S('ETCD_DISCOVERY'),
  discovery_fallback: S('ETCD_DISCOVERY_FALLBACK', ETCD2_ONLY),
  discovery_srv: S('ETCD_DISCOVERY_SRV', ETCD2_ONLY),
  discovery_proxy: S('ETCD_DISCOVERY_PROXY', ETCD2_ONLY),
  election_timeout: I('ETCD_ELECTION_TIMEOUT', ETCD2_ONLY),
  force_new_cluster: B('ETCD_FORCE_NEW_CLUSTER', ETCD2_ONLY),
  graphite_host: S('ETCD_GRAPHITE_HOST'),
  heartbeat_interval: I('ETCD_HEARTBEAT_INTERVAL', ETCD2_ONLY),
  http_read_timeout: F('ETCD_HTTP_READ_TIMEOUT'),
  http_write_timeout: F('ETCD_HTTP_WRITE_TIMEOUT'),
  initial_advertise_peer_urls: S('ETCD_INITIAL_ADVERTISE_PEER_URLS', ETCD2_ONLY),
  initial_cluster: S('ETCD_INITIAL_CLUSTER', ETCD2_ONLY),
  initial_cluster_state: S('ETCD_INITIAL_CLUSTER_STATE', ETCD2_ONLY),
  initial_cluster_token: S('ETCD_INITIAL_CLUSTER_TOKEN', ETCD2_ONLY),
  key_file: S('ETCD_KEY_FILE'),
  listen_client_urls: S('ETCD_LISTEN_CLIENT_URLS', ETCD2_ONLY),
  listen_peer_urls: S('ETCD_LISTEN_PEER_URLS', ETCD2_ONLY),
  max_result_buffer: I('ETCD_MAX_RESULT_BUFFER'),
  max_retry_attempts: I('ETCD_MAX_RETRY_ATTEMPTS'),
  max_snapshots: I('ETCD_MAX_SNAPSHOTS', ETCD2_ONLY),
  max_wals: I('ETCD_MAX_WALS', ETCD2_ONLY),
  name: S('ETCD_NAME'),
  peer_addr: S('ETCD_PEER_ADDR'),
  peer_bind_addr: S('ETCD_PEER_BIND_ADDR'),
  peer_ca_file: S('ETCD_PEER_CA_FILE'),
  peer_cert_file: S('ETCD_PEER_CERT_FILE'),
  peer_election_timeout: I('ETCD_PEER_ELECTION_TIMEOUT'),
  peer_heartbeat_interval: I('ETCD_PEER_HEARTBEAT_INTERVAL'),
  peer_key_file: S('ETCD_PEER_KEY_FILE'),
  peers: S('ETCD_PEERS'),
  peers_file: S('ETCD_PEERS_FILE'),
  proxy: S('ETCD_PROXY', ETCD2_ONLY),
  retry_interval: F('ETCD_RETRY_INTERVAL'),
  snapshot: B('ETCD_SNAPSHOT'),
  snapshot_count: I('ETCD_SNAPSHOTCOUNT'),
  trace: S('ETCD_TRACE'),
  verbose: B('ETCD_VERBOSE'),
  very_verbose: B('ETCD_VERY_VERBOSE'),
  very_very_verbose: B('ETCD_VERY_VERY_VERBOSE'),
};

/** coreos.etcd2 (deprecated too: Container Linux stopped shipping etcd2). */
export const ETCD2 = {
  advertise_client_urls: S('ETCD_ADVERTISE_CLIENT_URLS'),
  ca_file: S('ETCD_CA_FILE', { deprecated: 'ca_file obsoleted by trusted_ca_file and client_cert_auth' }),
  cert_file: S('ETCD_CERT_FILE'),
  client_cert_auth: B('ETCD_CLIENT_CERT_AUTH'),
  cors: S('ETCD_CORS'),
  data_dir: S('ETCD_DATA_DIR'),
  debug: B('ETCD_DEBUG'),
  discovery: S('ETCD_DISCOVERY'),
  discovery_fallback: S('ETCD_DISCOVERY_FALLBACK'),
  discovery_srv: S('ETCD_DISCOVERY_SRV'),
  discovery_proxy: S('ETCD_DISCOVERY_PROXY'),
  election_timeout: I('ETCD_ELECTION_TIMEOUT'),
  enable_pprof: B('ETCD_ENABLE_PPROF'),
  force_new_cluster: B('ETCD_FORCE_NEW_CLUSTER'),
  heartbeat_interval: I('ETCD_HEARTBEAT_INTERVAL'),
  initial_advertise_peer_urls: S('ETCD_INITIAL_ADVERTISE_PEER_URLS'),
  initial_cluster: S('ETCD_INITIAL_CLUSTER'),
  initial_cluster_state: S('ETCD_INITIAL_CLUSTER_STATE'),
  initial_cluster_token: S('ETCD_INITIAL_CLUSTER_TOKEN'),
  key_file: S('ETCD_KEY_FILE'),
  listen_client_urls: S('ETCD_LISTEN_CLIENT_URLS'),
  listen_peer_urls: S('ETCD_LISTEN_PEER_URLS'),
  log_package_levels: S('ETCD_LOG_PACKAGE_LEVELS'),
  max_snapshots: I('ETCD_MAX_SNAPSHOTS'),
  max_wals: I('ETCD_MAX_WALS'),
  name: S('ETCD_NAME'),
  peer_ca_file: S('ETCD_PEER_CA_FILE', {
    deprecated: 'peer_ca_file obsoleted peer_trusted_ca_file and peer_client_cert_auth',
  }),
  peer_cert_file: S('ETCD_PEER_CERT_FILE'),
  peer_key_file: S('ETCD_PEER_KEY_FILE'),
  peer_client_cert_auth: B('ETCD_PEER_CLIENT_CERT_AUTH'),
  peer_trusted_ca_file: S('ETCD_PEER_TRUSTED_CA_FILE'),
  proxy: S('ETCD_PROXY', { pattern: '^(on|off|readonly)$' }),
  proxy_dial_timeout: I('ETCD_PROXY_DIAL_TIMEOUT'),
  proxy_failure_wait: I('ETCD_PROXY_FAILURE_WAIT'),
  proxy_read_timeout: I('ETCD_PROXY_READ_TIMEOUT'),
  proxy_refresh_interval: I('ETCD_PROXY_REFRESH_INTERVAL'),
  proxy_write_timeout: I('ETCD_PROXY_WRITE_TIMEOUT'),
  snapshot_count: I('ETCD_SNAPSHOT_COUNT'),
  strict_reconfig_check: B('ETCD_STRICT_RECONFIG_CHECK'),
  trusted_ca_file: S('ETCD_TRUSTED_CA_FILE'),
  wal_dir: S('ETCD_WAL_DIR'),
};

/** coreos.fleet (deprecated: fleet is gone from Container Linux; kept as a drop-in). */
export const FLEET = {
  agent_ttl: S('FLEET_AGENT_TTL'),
  authorized_keys_file: S('FLEET_AUTHORIZED_KEYS_FILE'),
  disable_engine: B('FLEET_DISABLE_ENGINE'),
  engine_reconcile_interval: F('FLEET_ENGINE_RECONCILE_INTERVAL'),
  etcd_cafile: S('FLEET_ETCD_CAFILE'),
  etcd_certfile: S('FLEET_ETCD_CERTFILE'),
  etcd_keyfile: S('FLEET_ETCD_KEYFILE'),
  etcd_key_prefix: S('FLEET_ETCD_KEY_PREFIX'),
  etcd_request_timeout: F('FLEET_ETCD_REQUEST_TIMEOUT'),
  etcd_servers: S('FLEET_ETCD_SERVERS'),
  etcd_username: S('FLEET_ETCD_USERNAME'),
  etcd_password: S('FLEET_ETCD_PASSWORD'),
  metadata: S('FLEET_METADATA'),
  public_ip: S('FLEET_PUBLIC_IP'),
  token_limit: I('FLEET_TOKEN_LIMIT'),
  verbosity: I('FLEET_VERBOSITY'),
  verify_units: B('FLEET_VERIFY_UNITS'),
};

/** coreos.flannel. */
export const FLANNEL = {
  etcd_endpoints: S('FLANNELD_ETCD_ENDPOINTS'),
  etcd_cafile: S('FLANNELD_ETCD_CAFILE'),
  etcd_certfile: S('FLANNELD_ETCD_CERTFILE'),
  etcd_keyfile: S('FLANNELD_ETCD_KEYFILE'),
  etcd_prefix: S('FLANNELD_ETCD_PREFIX'),
  etcd_username: S('FLANNELD_ETCD_USERNAME'),
  etcd_password: S('FLANNELD_ETCD_PASSWORD'),
  ip_masq: S('FLANNELD_IP_MASQ'),
  subnet_file: S('FLANNELD_SUBNET_FILE'),
  interface: S('FLANNELD_IFACE'),
  public_ip: S('FLANNELD_PUBLIC_IP'),
};

/** coreos.locksmith: the reboot window rules are Go's, `(?i:...)` spelled out for JavaScript. */
export const LOCKSMITH = {
  endpoint: S('LOCKSMITHD_ENDPOINT'),
  etcd_cafile: S('LOCKSMITHD_ETCD_CAFILE'),
  etcd_certfile: S('LOCKSMITHD_ETCD_CERTFILE'),
  etcd_keyfile: S('LOCKSMITHD_ETCD_KEYFILE'),
  etcd_username: S('LOCKSMITHD_ETCD_USERNAME'),
  etcd_password: S('LOCKSMITHD_ETCD_PASSWORD'),
  group: S('LOCKSMITHD_GROUP'),
  window_start: S('LOCKSMITHD_REBOOT_WINDOW_START', {
    pattern:
      '^(([Ss][Uu][Nn]|[Mm][Oo][Nn]|[Tt][Uu][Ee]|[Ww][Ee][Dd]|[Tt][Hh][Uu]|[Ff][Rr][Ii]|[Ss][Aa][Tt]) ' +
      ')?0*([0-9]|1[0-9]|2[0-3]):0*([0-9]|[1-5][0-9])$',
  }),
  // Go's ^[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+$, rewritten without nested quantifiers (same strings, linear time).
  window_length: S('LOCKSMITHD_REBOOT_WINDOW_LENGTH', {
    pattern: '^[-+]?[0-9]*(\\.[0-9]*)?[a-z]([a-z]|[0-9]+(\\.[0-9]*)?[a-z]|\\.[0-9]*[a-z])*$',
  }),
};

/** coreos.update, written to the update agent's configuration. */
export const UPDATE = {
  reboot_strategy: S('REBOOT_STRATEGY', { pattern: '^(best-effort|etcd-lock|reboot|off)$' }),
  group: S('GROUP'),
  server: S('SERVER'),
};

type TsOf<G> = G extends 'string' ? string : G extends 'bool' ? boolean : number;
/** The typed values of a section table. */
export type SectionOf<T extends Record<string, { go: GoType }>> = { [K in keyof T]?: TsOf<T[K]['go']> };

/**
 * The environment variables a section sets, in table order, as coreos-cloudinit wrote them into a
 * `20-cloudinit.conf` drop-in: unset and zero values left out, everything else printed with %v.
 */
export function sectionEnvironment(
  table: Record<string, FieldSpec>,
  values: Record<string, unknown>,
): [string, string][] {
  const out: [string, string][] = [];
  for (const [key, spec] of Object.entries(table)) {
    const v = values[key];
    if (v === undefined || v === null || v === '' || v === false || v === 0) continue;
    out.push([spec.env, String(v)]);
  }
  return out;
}
