// Hostnames as keel run --hostname and Quadlet's HostName= take them (pure, for both).

const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const HOSTNAME = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`);

/**
 * RFC 1123: letters, digits and '-' inside labels of at most 63, '.' between them; at most 64 bytes (sethostname's
 * limit).
 */
export function isHostname(s: string): boolean {
  return s.length <= 64 && HOSTNAME.test(s);
}

/** What a bad one is told. */
export const HOSTNAME_RULE = "use letters, digits and '-', labels separated by '.', at most 64 characters";
