import type { StrategyName } from '../strategy-names.js';
import type { AdminListen } from './admin.js';
import type { BackendConfig } from './backend-settings.js';
import type { BackendTlsConfig } from './backend-tls.js';
import type { ClusterConfig } from './cluster.js';
import type { DiscoveryConfig } from './discovery.js';
import type { HealthConfig } from './health.js';
import type { ListenAddress } from './listen.js';
import type { LogOutputConfig } from './log-output.js';
import type { MirrorConfig } from './mirror.js';
import type { ProcessConfig } from './process.js';
import type { RouteConfig } from './route.js';
import type { StickConfig } from './stick.js';
import type { TlsConfig } from './tls.js';
import type { TrafficConfig } from './traffic.js';

export type { BackendConfig } from './backend-settings.js';

/*
 * The validated config's types, apart from the schema that builds them
 * (schema.ts), so the table parsers that return parts of it (backend
 * settings, discovery, SNI) import these without importing the schema.
 */

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const ALL_DOWN_POLICIES = ['try-all', 'refuse'] as const;
export type AllDownPolicy = (typeof ALL_DOWN_POLICIES)[number];

/**
 * A cluster worker's share of a limit that was set but is smaller than the
 * number of workers, in the workers that get none of it (see cluster/share.ts):
 * take no session under that limit. Never read from a file, where limits are
 * >= 0 and 0 means "no limit". Negative, so `count >= limit` checks refuse it
 * as they stand; checks that skip a limit of 0 test `!== 0`.
 */
export const NO_SHARE = -1;

export interface PoolConfig {
  readonly minIdle: number;
  readonly maxIdle: number;
  readonly idleTtlMs: number;
}

export interface ServiceConfig extends TrafficConfig {
  readonly name: string;
  /** "host:port" to bind, or a passed socket ("systemd:NAME", "fd:N"): see config/listen.ts. */
  readonly listen: ListenAddress;
  /** The rest of a `listen` list (empty: one address): each its own listener, all feeding this service. */
  readonly alsoListen: readonly ListenAddress[];
  readonly balance: StrategyName;
  readonly backends: readonly BackendConfig[];
  readonly connectTimeoutMs: number;
  /** 0 disables the idle deadline. */
  readonly idleTimeoutMs: number;
  readonly maxRetries: number;
  readonly retryDelayMs: number;
  /** Open sessions of this service (>= 1 in a file; NO_SHARE: none in this worker). */
  readonly maxConnections: number;
  readonly allDown: AllDownPolicy;
  /** Sessions older than this are closed, busy or not (0: off). Defeats slowloris-style trickles. */
  readonly maxLifetimeMs: number;
  /** Write a PROXY protocol header to the backend before the client's bytes. */
  readonly sendProxy: 'v1' | 'v2' | null;
  /** Expect a PROXY protocol header (v1 or v2) from clients in trusted_proxies; refuse everyone else. */
  readonly acceptProxy: boolean;
  /** CIDRs ("10.0.0.0/8", "127.0.0.1", "::1/128") allowed to send PROXY headers. */
  readonly trustedProxies: readonly string[];
  /** Clients allowed in (CIDRs; empty: everyone not denied). */
  readonly allow: readonly string[];
  /** Clients refused (CIDRs); deny wins over allow. */
  readonly deny: readonly string[];
  /** A reload that changes allow/deny ends the open sessions of clients now refused. */
  readonly applyToOpen: boolean;
  /** Open sessions per client address (0: no limit; NO_SHARE: none). */
  readonly maxConnectionsPerSource: number;
  /** New sessions a second per client address (0: no limit; NO_SHARE: none). */
  readonly maxRatePerSource: number;
  /** Clients that may wait for a backend slot when every backend is at its cap (0 or NO_SHARE: refuse at once). */
  readonly queueSize: number;
  readonly queueTimeoutMs: number;
  readonly health: HealthConfig;
  readonly pool: PoolConfig;
  /** TLS to the backends (null: plain TCP). */
  readonly backendTls: BackendTlsConfig | null;
  /** Names this service takes on a listen address it may share (see config/sni.ts); null: no ClientHello is read. */
  readonly sni: readonly string[] | null;
  /** With sni: only hellos offering one of these protocols (null: any). */
  readonly alpn: readonly string[] | null;
  /** How long a client has to send its whole ClientHello (and, when terminating, to finish the handshake). */
  readonly helloTimeoutMs: number;
  /** Terminate TLS here; null: bytes pass through untouched. */
  readonly tls: TlsConfig | null;
  /** Backends found at run time besides `backends` (null: none). */
  readonly discovery: DiscoveryConfig | null;
  /** lb.request(): the whole request, retries and body included, must finish within this. */
  readonly requestTimeoutMs: number;
  /** HTTP requests (lb.request, lb.dispatcher): a 5xx answer counts as a passive health failure. */
  readonly passiveHttp5xx: boolean;
  /** [services.NAME.stick]; null: no stick table. */
  readonly stick: StickConfig | null;
  /** ip-hash with bounded loads: a backend takes at most this % of the average load (0: off). */
  readonly hashBalanceFactor: number;
  /** Per-source limits held across instances through [cluster] redis (false without [cluster]). */
  readonly shareLimits: boolean;
  /** [[services.NAME.route]], in order (empty: every client uses every backend). */
  readonly routes: readonly RouteConfig[];
  /** least-latency: the time constant (ms) over which a measured latency decays. */
  readonly latencyDecayMs: number;
  /** [services.NAME.mirror]; null: no mirroring. */
  readonly mirror: MirrorConfig | null;
}

export interface Config {
  /** Where the config came from, for messages ("config.toml", "<inline>"). */
  readonly source: string;
  readonly process: ProcessConfig;
  readonly log: { readonly level: LogLevel; readonly access: boolean } & LogOutputConfig;
  readonly admin: {
    /** "host:port", or a Unix socket ("unix:PATH", with its file mode). */
    readonly listen: AdminListen;
    /** The write token: every call that changes something needs it (and it reads too). */
    readonly token: string | null;
    /** When set, reads (/metrics, GET /api/*) need this token or the write token. */
    readonly readToken: string | null;
    /** Host header values the admin server accepts besides its listen address and loopback names. */
    readonly allowedHosts: readonly string[];
  } | null;
  readonly services: readonly ServiceConfig[];
  /** [cluster]: shared state through Redis; null: none, every instance on its own. */
  readonly cluster: ClusterConfig | null;
}

export interface ParseOptions {
  /** Name used in error messages. */
  source?: string;
  /** Allow `listen` on port 0 (an OS-chosen port): for tests and embedding, never from a file. */
  allowEphemeralListen?: boolean;
  /** Where relative file names (certificates, a discovery `path`) are taken from: the config file's directory; default the working directory. */
  baseDir?: string;
}
