/**
 * HAProxy's and nginx's words, written where blitz-lb expects its own: an
 * operator converting a haproxy.cfg or an nginx `stream` block writes
 * `maxconn`, `inter` or `balance = "leastconn"` first. `check` then says which
 * key or value of ours is meant, rather than an edit-distance guess (docs/migrating.md
 * has the whole table). Words are matched in lower case with "-" and spaces
 * read as "_", so `timeout client`, `timeout-client` and `timeout_client` are one.
 */

interface Meaning {
  /** Whose word: "HAProxy", "nginx", or both. */
  readonly from: string;
  /** What to write here instead. */
  readonly write: string;
}

const H = 'HAProxy';
const N = 'nginx';
const HN = 'HAProxy and nginx';

/** Keys written in a file, by their foreign name. */
const KEYS: Readonly<Record<string, Meaning>> = {
  maxconn: {
    from: H,
    write: "max_connections (a service's open sessions; a backend table takes its own)",
  },
  fullconn: { from: H, write: 'max_connections (there is no dynamic per-backend limit)' },
  maxqueue: { from: H, write: 'queue_size (clients that may wait for a backend slot)' },
  timeout_client: { from: H, write: 'client_timeout (the client sent nothing for this long)' },
  timeout_server: { from: H, write: 'server_timeout (the backend sent nothing for this long)' },
  timeout_tunnel: {
    from: H,
    write: 'tunnel_timeout (both silent, once both have spoken; replaces the others then)',
  },
  timeout_connect: { from: H, write: 'connect_timeout' },
  timeout_queue: { from: H, write: 'queue_timeout' },
  timeout_check: { from: H, write: 'health.timeout' },
  timeout_client_fin: { from: H, write: 'idle_timeout (a half-closed session ends on it too)' },
  inter: { from: H, write: 'health.interval' },
  fastinter: { from: H, write: 'health.interval (one interval)' },
  downinter: { from: H, write: 'health.interval (one interval)' },
  fall: { from: H, write: 'health.fall (in [services.NAME.health])' },
  rise: { from: H, write: 'health.rise (in [services.NAME.health])' },
  check: {
    from: H,
    write: 'health.kind = "tcp" (checks are on by default; kind = "none" turns them off)',
  },
  server: { from: HN, write: 'backends = ["host:port", { address = "host:port", weight = 2 }]' },
  servers: { from: HN, write: 'backends' },
  bind: { from: H, write: 'listen = "host:port"' },
  frontend: { from: H, write: '[services.NAME] with listen = "host:port"' },
  backend: { from: H, write: '[services.NAME] with backends = [...]' },
  upstream: { from: N, write: '[services.NAME] with backends = [...]' },
  proxy_pass: { from: N, write: "backends (the upstream's servers, in the same service)" },
  use_backend: {
    from: H,
    write: 'sni = [...] on services sharing one listen address (routing by TLS server name)',
  },
  default_backend: { from: H, write: 'sni = ["*"] on the service that takes every other name' },
  acl: { from: H, write: 'allow = [...] / deny = [...] (CIDRs), or sni = [...] to route by name' },
  tcp_request: { from: H, write: 'allow / deny, max_connections_per_source, max_rate_per_source' },
  stick_table: {
    from: H,
    write: 'a [services.NAME.stick] table (on = "source", size, expire), under any balance',
  },
  retries: { from: H, write: 'max_retries' },
  redispatch: { from: H, write: 'max_retries (every retry goes to a backend not yet tried)' },
  slowstart: { from: H, write: 'slow_start (in a backend table)' },
  send_proxy: { from: H, write: 'send_proxy = "v1"' },
  send_proxy_v2: { from: H, write: 'send_proxy = "v2"' },
  accept_proxy: { from: H, write: 'accept_proxy = true, with trusted_proxies' },
  proxy_protocol: {
    from: N,
    write: 'send_proxy = "v1" (to backends) or accept_proxy = true (from clients)',
  },
  set_real_ip_from: { from: N, write: 'trusted_proxies' },
  ssl: {
    from: HN,
    write: '[services.NAME.tls] (terminate) or [services.NAME.backend_tls] (to backends)',
  },
  crt: { from: H, write: 'tls.cert and tls.key' },
  ssl_certificate: { from: N, write: 'tls.cert' },
  ssl_certificate_key: { from: N, write: 'tls.key' },
  ssl_preread: { from: N, write: 'sni = [...] (the ClientHello is read without decrypting)' },
  map: { from: N, write: 'sni = [...] on each service sharing the listen address' },
  least_conn: { from: N, write: 'balance = "least-connections"' },
  leastconn: { from: H, write: 'balance = "least-connections"' },
  roundrobin: { from: H, write: 'balance = "round-robin"' },
  hash: { from: N, write: 'balance = "ip-hash" (hash $remote_addr consistent)' },
  random: { from: N, write: 'balance = "random-two" (random two least_conn)' },
  max_fails: { from: N, write: 'health.fall (failed dials count as failed checks)' },
  fail_timeout: {
    from: N,
    write: 'health.interval (with health.kind = "none", a failed backend is tried again after it)',
  },
  proxy_timeout: { from: N, write: 'idle_timeout (no byte either way for this long)' },
  proxy_upload_rate: { from: N, write: 'upload_rate (bytes a second per session, "10MiB")' },
  proxy_download_rate: { from: N, write: 'download_rate (bytes a second per session, "10MiB")' },
  bwlim_in: {
    from: H,
    write: 'upload_rate, or upload_rate_per_source for a limit shared by a client address',
  },
  bwlim_out: {
    from: H,
    write: 'download_rate, or download_rate_per_source for a limit shared by a client address',
  },
  proxy_connect_timeout: { from: N, write: 'connect_timeout' },
  proxy_next_upstream_tries: { from: N, write: 'max_retries (tries beyond the first)' },
  proxy_next_upstream: { from: N, write: 'max_retries (on by default: 3)' },
  limit_conn: { from: N, write: 'max_connections_per_source' },
  allow_from: { from: N, write: 'allow' },
  listen_backlog: { from: N, write: 'nothing: the kernel default backlog is used' },
};

/** Values written for an enum key, by the key and the foreign value. */
const VALUES: Readonly<Record<string, Readonly<Record<string, Meaning>>>> = {
  balance: {
    roundrobin: { from: H, write: '"round-robin"' },
    static_rr: { from: H, write: '"round-robin" (weights change without a restart here)' },
    leastconn: { from: H, write: '"least-connections"' },
    least_conn: { from: N, write: '"least-connections"' },
    source: { from: H, write: '"ip-hash"' },
    hash: { from: N, write: '"ip-hash"' },
    ip_hash: { from: N, write: '"ip-hash"' },
    random: { from: HN, write: '"random-two" (two random backends, the less loaded one)' },
    first: { from: H, write: 'nothing yet: "least-connections" comes closest' },
    least_time: { from: 'nginx Plus', write: '"least-latency" (peak-EWMA of connect times)' },
    leasttime: { from: 'Traefik', write: '"least-latency" (peak-EWMA of connect times)' },
  },
  kind: {
    check: { from: H, write: '"tcp"' },
    tcp_check: { from: H, write: '"tcp", or "send-expect" with steps' },
    httpchk: { from: H, write: '"http" with path' },
    redis_check: { from: H, write: '"redis"' },
    mysql_check: { from: H, write: '"mysql"' },
    pgsql_check: { from: H, write: '"postgres"' },
    smtpchk: { from: H, write: '"smtp"' },
  },
  send_proxy: {
    'send-proxy': { from: H, write: '"v1"' },
    send_proxy: { from: H, write: '"v1"' },
    'send-proxy-v2': { from: H, write: '"v2"' },
    send_proxy_v2: { from: H, write: '"v2"' },
  },
};

function norm(word: string): string {
  return word
    .trim()
    .toLowerCase()
    .replace(/[-\s]+/g, '_');
}

/** "; maxconn is HAProxy's word: here write max_connections (…)", or undefined for no foreign word. */
export function foreignKey(key: string): string | undefined {
  const m = KEYS[norm(key)];
  return m ? `; "${key}" is ${m.from}'s word: here write ${m.write}` : undefined;
}

/** The same for a value of an enum key (the last part of its path: balance, kind, send_proxy). */
export function foreignValue(path: string, value: string): string | undefined {
  const key = path.slice(path.lastIndexOf('.') + 1);
  const m = VALUES[key]?.[norm(value)] ?? VALUES[key]?.[value.trim().toLowerCase()];
  return m ? `; "${value}" is ${m.from}'s word: here write ${key} = ${m.write}` : undefined;
}
