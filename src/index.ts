export { type AdminOptions, AdminServer } from './admin/server.js';
export { Backend } from './backend/backend.js';
export { BackendSet } from './backend/backend-set.js';
export type { Clock } from './clock.js';
export type { DiscoveryConfig, DiscoveryKind } from './config/discovery.js';
export { loadConfig, parseToml } from './config/load.js';
export type {
  BackendConfig,
  Config,
  HealthConfig,
  PoolConfig,
  ServiceConfig,
} from './config/schema.js';
export { parseConfig } from './config/schema.js';
export * from './errors.js';
export type { ServiceDispatcher } from './http/dispatcher.js';
export type { HttpRequestOptions, HttpResponse } from './http/request.js';
export type { HttpBackendStats } from './http/stats.js';
export {
  type AddBackendOptions,
  LoadBalancer,
  type LoadBalancerOptions,
  type ReloadSummary,
} from './load-balancer.js';
export { createLogger, type Logger } from './logger.js';
export type { TerminationCause } from './proxy/session.js';
export { Service } from './service.js';
