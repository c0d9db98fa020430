import type { AddressInfo, Socket } from 'node:net';
import type { Dispatcher } from 'undici';
import type { Backend } from './backend/backend.js';
import { parseHostPort } from './config/address.js';
import { type BackendOptions, backendFromOptions } from './config/backend-settings.js';
import type { HttpRequestOptions, HttpResponse } from './http/request.js';
import type { Service } from './service.js';

export type AddBackendOptions = BackendOptions;

/**
 * The library's calls on one service by its name (LoadBalancer's, which
 * says how a name is found): its address, a socket or an HTTP request to a
 * backend, and the operator's backend operations, each a line to its Service.
 */
export abstract class ServiceCalls {
  /** The service of that name; LB_ERR_UNKNOWN_SERVICE when there is none. */
  abstract service(name: string): Service;

  /** Every service in service order. */
  abstract get allServices(): Service[];

  /** The bound address of a service's listener (useful with port 0). */
  address(service: string): AddressInfo {
    return this.service(service).address();
  }

  /**
   * Adds a backend at run time; it takes traffic at once. Its settings are
   * checked as the config file's are (LB_ERR_INVALID_ARGUMENT names each bad one).
   */
  addBackend(service: string, address: string, opts: AddBackendOptions = {}): Backend {
    const cfg = backendFromOptions(address, opts);
    return this.service(service).addBackend(cfg);
  }

  /**
   * A connected socket to one of the service's backends, chosen by its
   * strategy: a warm pooled socket when there is one, else a fresh connect,
   * retried with backoff on another backend like a client session. Counted in
   * the same metrics. Rejects with LbError (LB_ERR_DIAL, LB_ERR_NO_BACKEND,
   * LB_ERR_UNKNOWN_SERVICE, LB_ERR_ABORTED). The socket is the caller's.
   */
  connect(service: string, opts: { signal?: AbortSignal; key?: string } = {}): Promise<Socket> {
    return this.service(service).connect(opts);
  }

  /**
   * An undici Dispatcher on the service's backends: `fetch(url, { dispatcher })`
   * and `undici.request(url, { dispatcher })` go to the backend its strategy
   * picks, over keep-alive connections kept per backend (HTTP/2 where a TLS
   * backend offers it), retried elsewhere like lb.request (see src/http/).
   * One per service, made at the first call; closed with the balancer.
   */
  dispatcher(service: string): Dispatcher {
    return this.service(service).dispatcher;
  }

  /**
   * One HTTP request to one of the service's backends, read to the end:
   * `{ statusCode, headers, body, text(), json() }`. The service's
   * request_timeout (or `timeout`) bounds all of it; a failed connect, or a
   * reset before any answer on an idempotent request, is retried on another
   * backend with the service's backoff; anything else is never sent twice.
   */
  request(service: string, opts: HttpRequestOptions = {}): Promise<HttpResponse> {
    return this.service(service).request(opts);
  }

  /** Runs one round of health probes on every service now; resolves when all verdicts are in. */
  async performHealthCheck(): Promise<void> {
    await Promise.all(this.allServices.map((s) => s.probeNow()));
  }

  /** Reaps idle pooled sockets older than idle_ttl now (refill replaces them). Also runs on a timer. */
  cleanupConnections(): void {
    for (const s of this.allServices) s.reapPool();
  }

  /** Changes a backend's weight now; strategies rebuild at once. */
  setWeight(service: string, address: string, weight: number): Backend {
    return this.service(service).setWeight(canonical(address), weight);
  }

  /** Takes a backend out for maintenance: out of rotation, warm pool closed, its open sessions ended now. */
  disableBackend(service: string, address: string): Backend {
    return this.service(service).disableBackend(canonical(address));
  }

  /** Drains a backend: no new sessions go to it; its open sessions continue to their end. */
  drainBackend(service: string, address: string): Backend {
    return this.service(service).drainBackend(canonical(address));
  }

  /** Ends a drain or a disable: the backend takes new sessions again (if healthy). */
  enableBackend(service: string, address: string): Backend {
    return this.service(service).enableBackend(canonical(address));
  }

  /** Sets a backend's health now (an operator's override); probes decide again unless paused. */
  forceHealth(service: string, address: string, up: boolean): Backend {
    return this.service(service).forceHealth(canonical(address), up);
  }

  /** Pauses or resumes a backend's health probes and agent checks. */
  pauseChecks(service: string, address: string, paused: boolean): Backend {
    return this.service(service).pauseChecks(canonical(address), paused);
  }

  /** Ends one open session by the id the admin API lists it under; false when none is open with it. */
  endSession(service: string, id: number): boolean {
    return this.service(service).endSession(id);
  }

  /** Removes a backend: no new sessions go to it; its open sessions run to their end. */
  removeBackend(service: string, address: string): void {
    this.service(service).removeBackend(canonical(address));
  }
}

/** "localhost:80" and "[::1]:80" as the set stores them; anything unparsable is looked up as given. */
function canonical(address: string): string {
  const hp = parseHostPort(address);
  return 'error' in hp ? address : hp.address;
}
