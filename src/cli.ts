#!/usr/bin/env node
// First: on a Node.js too old, one line and exit 1 before anything else loads.
import './runtime-check.js';
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CommanderError } from 'commander';
import { ReloadLog } from './admin/reload-log.js';
import { AdminServer } from './admin/server.js';
import { checkJson, runCheck } from './check.js';
import { buildProgram, type CheckOpts, EXIT_CONFIG, type RunOpts } from './cli-program.js';
import { ClusterPrimary } from './cluster/primary.js';
import { loadConfig } from './config/load.js';
import { sameConfig } from './config/same.js';
import type { Config } from './config/schema.js';
import { toToml } from './config/toml-write.js';
import { startDemoBackends } from './demo.js';
import { LbError } from './errors.js';
import { Lifecycle } from './lifecycle/lifecycle.js';
import { adminKey, PassedSockets } from './lifecycle/passed-sockets.js';
import { removePidFile, writePidFile } from './lifecycle/pid-file.js';
import { SystemdNotifier } from './lifecycle/sd-notify.js';
import { announceServing, reportStartFailure } from './lifecycle/successor.js';
import { LoadBalancer, type ReloadSummary } from './load-balancer.js';
import { createLogger, type Logger } from './logger.js';
import { logOutputChanged } from './logging/changed.js';
import { openLogOutput } from './logging/output.js';
import { certificateReport } from './proxy/tls/certificates.js';

const EXIT_OK = 0;
const EXIT_RUNTIME = 1;

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const version = (
  JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }
).version;

/**
 * `check`: exit 0 valid, 2 invalid. --json prints one object either way (for tools);
 * --print shows the effective config as TOML after the summary's checks pass.
 */
function check(opts: CheckOpts): void {
  const r = runCheck(opts.config);
  if (opts.json) {
    process.stdout.write(checkJson(r));
    process.exit(r.valid ? EXIT_OK : EXIT_CONFIG);
  }
  if (!r.valid) {
    process.stderr.write(`${r.messages.join('\n')}\n`);
    process.exit(EXIT_CONFIG);
  }
  const warnings = r.warnings.map((w) => `warning: ${w.path ? `${w.path}: ` : ''}${w.message}`);
  if (opts.print) {
    // stdout stays TOML a tool can parse; the warnings go to stderr.
    if (warnings.length > 0) process.stderr.write(`${warnings.join('\n')}\n`);
    process.stdout.write(
      `# ${opts.config}: the effective config, every default filled in\n${toToml(r.config ?? {})}`,
    );
    return;
  }
  process.stdout.write(`${[`${opts.config}: valid`, ...r.summary, ...warnings].join('\n')}\n`);
}

/** Exits with `message` on stderr; an upgrade's new process also tells the old one why it did not start. */
function exitWith(code: number, message: string): never {
  process.stderr.write(`${message}\n`);
  reportStartFailure(message);
  process.exit(code);
}

function fail(code: number, message: string): never {
  exitWith(code, `blitz-lb: ${message}`);
}

function load(file: string): Config {
  try {
    return loadConfig(file);
  } catch (err) {
    if (err instanceof LbError && err.code === 'LB_ERR_CONFIG') exitWith(EXIT_CONFIG, err.message);
    throw err;
  }
}

/** Certificates that cannot be used stop `run` as a config error would (exit 2), before anything binds. */
function checkCertificatesOrExit(config: Config): void {
  const report = certificateReport(config.services, config.source);
  if (report.errors.length > 0) exitWith(EXIT_CONFIG, report.errors.join('\n'));
}

async function run(opts: RunOpts, demoServers: Server[] = []): Promise<void> {
  // Sockets handed over by an upgrade or by systemd, read (and their variables cleared) first.
  const sockets = PassedSockets.fromEnv(process.env, process.pid);
  const config = load(opts.config);
  checkCertificatesOrExit(config);
  const logLevel = opts.logLevel ?? config.log.level;
  const output = openLogOutput(config.log);
  const logger = createLogger(logLevel, output.stream, config.log);
  const systemd = SystemdNotifier.fromEnv(process.env, logger.child({ component: 'systemd' }));
  // workers > 1: this process is the primary; lb is its control plane (probes, state, no listeners).
  // --log-level wins over the file for good; without it, a reload applies the file's [log] level.
  const fixedLogLevel = opts.logLevel ?? null;
  const primary =
    config.process.workers > 1
      ? new ClusterPrimary(config, { logger, fixedLogLevel, sockets })
      : null;
  const lb = primary
    ? primary.lb
    : new LoadBalancer(config, { logger, followConfigLogLevel: fixedLogLevel === null, sockets });
  const runner: { close(timeoutMs?: number): Promise<void> } = primary ?? lb;
  try {
    await (primary ?? lb).start();
  } catch (err) {
    for (const s of demoServers) s.close();
    if (err instanceof LbError) fail(EXIT_RUNTIME, err.message);
    throw err;
  }
  let pidFile = config.process.pidFile;
  // Every reload, SIGHUP's and the admin API's, is recorded for /api/info and /metrics.
  const reloads = new ReloadLog();
  const reload = reloads.track(async (): Promise<ReloadSummary> => {
    void systemd.reloading();
    // Serving again whether the reload applies or fails (the old config keeps running).
    return applyReload().finally(() => void systemd.ready());
  });
  const applyReload = async (): Promise<ReloadSummary> => {
    const next = loadConfig(opts.config);
    if (!sameConfig(next.admin, lb.config.admin)) {
      logger.warn('reload: [admin] changes take effect at the next restart');
    }
    const logChanged = logOutputChanged(lb.config.log, next.log);
    if (logChanged)
      logger.warn(`reload: [log] ${logChanged} changes take effect at the next restart`);
    if (next.process.workers !== lb.config.process.workers) {
      logger.warn('reload: [process] workers changes take effect at the next restart');
    }
    const summary = await (primary ? primary.reload(next) : lb.reload(next));
    pidFile = movePidFile(pidFile, next.process.pidFile, logger);
    return summary;
  };
  let admin: AdminServer | null = null;
  const lifecycle = new Lifecycle(
    () => lb.config.process,
    async () => {
      const got = primary
        ? await primary.listeningHandles()
        : { sockets: new Map<string, object>(lb.listeningServers(true)), release: () => {} };
      if (admin && config.admin)
        got.sockets.set(adminKey(config.admin.listen.address), admin.listeningServer);
      return got;
    },
    logger.child({ component: 'lifecycle' }),
  );
  let stop: (why: NodeJS.Signals | 'upgrade') => void = () => {};
  /** The new process serves: this one stops accepting and drains, as for SIGTERM without drain_delay. */
  const upgrade = async (): Promise<number> => {
    const pid = await lifecycle.upgrade();
    void systemd.mainPid(pid);
    // After the caller's answer is out (an API response): retiring closes the admin server.
    setImmediate(() => stop('upgrade'));
    return pid;
  };
  if (config.admin) {
    admin = new AdminServer(lb, {
      listen: config.admin.listen,
      token: config.admin.token,
      readToken: config.admin.readToken,
      allowedHosts: config.admin.allowedHosts,
      reload,
      reloads,
      log: logger.child({ component: 'admin' }),
      cluster: primary,
      lifecycle: {
        notReadyBecause: () => lifecycle.notReadyBecause(),
        get draining() {
          return lifecycle.draining;
        },
        drain: () => lifecycle.drain(),
        undrain: () => lifecycle.undrain(),
        upgrade,
      },
      fd: sockets.takeHanded(adminKey(config.admin.listen.address)),
    });
    try {
      await admin.start();
    } catch (err) {
      await runner.close(0);
      fail(EXIT_RUNTIME, (err as Error).message);
    }
  }
  if (pidFile) {
    try {
      writePidFile(pidFile, process.pid);
    } catch (err) {
      await Promise.all([runner.close(0), admin?.close()]);
      fail(EXIT_RUNTIME, `pid_file ${pidFile}: ${(err as Error).message}`);
    }
  }
  // An upgrade's new process: sockets the old config had and this one has not are closed
  // (clients are refused there, not left waiting), then the old one stops accepting.
  const unused = sockets.closeUnused();
  if (unused.length > 0)
    logger.info({ closed: unused }, 'upgrade: closed sockets this config does not use');
  announceServing();
  void systemd.ready();
  logger.info(
    {
      config: opts.config,
      services: lb.serviceNames,
      admin: config.admin?.listen.address,
      workers: config.process.workers,
      version,
    },
    'blitz-lb started',
  );

  let stopping = false;
  let now: () => void = () => {};
  const skip = new Promise<void>((resolve) => {
    now = resolve;
  });
  stop = (why): void => {
    if (stopping) {
      if (why === 'upgrade') return;
      logger.warn({ signal: why }, 'second signal: closing open sessions now');
      now();
      void runner.close(0);
      return;
    }
    stopping = true;
    // After an upgrade systemd follows the new process: this one's stop is not the service's.
    if (why !== 'upgrade') void systemd.stopping();
    // After an upgrade the new process accepts already: no drain_delay, and the PID file is its.
    const hold = why === 'upgrade' ? Promise.resolve() : lifecycle.holdBeforeStop(skip);
    void hold.then(() => {
      logger.info(
        { signal: why, timeoutMs: lb.config.process.shutdownTimeoutMs },
        'stopping: no new sessions, draining',
      );
      for (const s of demoServers) s.close();
      return Promise.all([runner.close(), admin?.close(), systemd.sent()]).then(() => {
        if (pidFile) removePidFile(pidFile, process.pid);
        logger.info('stopped');
        logger.flush();
        process.exitCode = EXIT_OK;
        // Anything still holding the loop (a demo backend's keep-alive socket) must not keep us alive.
        setImmediate(() => process.exit(EXIT_OK));
      });
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', () => {
    logger.info('SIGHUP: reloading config');
    reload().catch((err: Error) => {
      logger.error({ reason: err.message }, 'reload failed; the old config keeps running');
    });
  });
  process.on('SIGUSR1', () => {
    // logrotate moved the file: write to a new one by the same name (workers too).
    output.reopen();
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGUSR1');
    logger.info({ destination: config.log.destination }, 'SIGUSR1: log reopened');
  });
  process.on('SIGUSR2', () => {
    logger.info('SIGUSR2: upgrading');
    upgrade().catch((err: LbError) => {
      // A failed start is logged by the lifecycle; this is one that could not begin.
      if (err.code === 'LB_ERR_STATE') logger.warn({ reason: err.message }, 'upgrade refused');
    });
  });
}

/** A reload that changes pid_file: the new file is written and the old one removed (kept if the new one cannot be written). */
function movePidFile(from: string | null, to: string | null, log: Logger): string | null {
  if (from === to) return to;
  if (to) {
    try {
      writePidFile(to, process.pid);
    } catch (err) {
      log.error(
        { pidFile: to, reason: (err as Error).message },
        'reload: cannot write the new pid_file; keeping the old one',
      );
      return from;
    }
  }
  if (from) removePidFile(from, process.pid);
  return to;
}

async function demo(opts: RunOpts): Promise<void> {
  const config = load(opts.config);
  let servers: Server[];
  try {
    servers = await startDemoBackends(config);
  } catch (err) {
    fail(EXIT_RUNTIME, (err as Error).message);
  }
  const first = config.services[0];
  process.stderr.write(
    `demo: ${servers.length} backends up; try: curl http://${first?.listen.address ?? '127.0.0.1:8080'}/${config.admin ? `  status page: http://${config.admin.listen.address}/` : ''}  (Ctrl-C stops)\n`,
  );
  await run(opts, servers);
}

async function main(): Promise<void> {
  const program = buildProgram(version, join(root, 'config.toml'), { run, check, demo, fail });
  for (const c of program.commands) c.exitOverride();
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit 0; every usage error is exit 2, as the contract says.
      process.exit(err.exitCode === 0 ? EXIT_OK : EXIT_CONFIG);
    }
    fail(EXIT_RUNTIME, (err as Error).stack ?? String(err));
  }
}

void main();
