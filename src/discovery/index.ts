import type { Clock } from '../clock.js';
import type { DiscoveryConfig, DiscoveryKind } from '../config/discovery.js';
import type { BackendConfig } from '../config/schema.js';
import type { Logger } from '../logger.js';
import { dnsSource } from './dns.js';
import { fileSource } from './file.js';
import { httpSource } from './http.js';
import { kubernetesSource } from './kubernetes.js';
import { DiscoveryRunner } from './runner.js';
import type { Source } from './source.js';
import { srvSource } from './srv.js';

export { DiscoveryDriver } from './driver.js';
export type { DiscoveryStatus } from './runner.js';
export { DiscoveryRunner } from './runner.js';

const SOURCES: Readonly<Record<DiscoveryKind, (cfg: DiscoveryConfig, clock: Clock) => Source>> = {
  dns: dnsSource,
  srv: srvSource,
  file: fileSource,
  http: httpSource,
  kubernetes: (cfg, clock) => kubernetesSource(cfg, clock),
};

/** A runner for `cfg`'s kind, feeding `onList`; not started. */
export function createDiscovery(
  cfg: DiscoveryConfig,
  onList: (list: readonly BackendConfig[]) => void,
  log: Logger,
  clock: Clock,
): DiscoveryRunner {
  return new DiscoveryRunner(cfg, SOURCES[cfg.kind](cfg, clock), onList, log, clock);
}
