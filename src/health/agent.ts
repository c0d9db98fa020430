import type { Backend } from '../backend/backend.js';
import type { BackendSet } from '../backend/backend-set.js';
import type { AgentConfig } from '../config/health.js';
import type { Logger } from '../logger.js';
import type { Connector } from '../upstream/connector.js';
import { thrown } from './exchange.js';
import { BackendLoop } from './loop.js';

/** The Service operations an agent's word maps to: the same ones the admin API calls. */
export interface AgentTarget {
  readonly backends: BackendSet;
  /** The service's connector (its plain form: the agent speaks TCP), read at each check. */
  readonly connector: Connector;
  drainBackend(address: string): Backend;
  disableBackend(address: string): Backend;
  enableBackend(address: string): Backend;
  setWeight(address: string, weight: number): Backend;
  /** The weight the agent's percentages are of (the configured one). */
  baseWeight(b: Backend): number;
}

/** What one reply says, by kind of word; null where it said nothing of that kind. */
export interface AgentReply {
  /** up / down (fail, stopped): health, held until the agent says up. */
  health: 'up' | 'down' | null;
  /** ready / drain / maint: administrative state. */
  admin: 'ready' | 'drain' | 'maint' | null;
  /** "75%": a share of the configured weight. */
  percent: number | null;
  /** Text after '#', HAProxy's way of giving a reason. */
  reason: string | null;
}

const MAX_LINE = 1024;

/** Parses one agent line ("up 75%", "drain", "down#disk full"); unknown words are ignored, as HAProxy does. */
export function parseAgentReply(line: string): AgentReply {
  const hash = line.indexOf('#');
  const words = (hash < 0 ? line : line.slice(0, hash)).toLowerCase().split(/[\s,]+/);
  const r: AgentReply = {
    health: null,
    admin: null,
    percent: null,
    reason:
      hash < 0
        ? null
        : line
            .slice(hash + 1)
            .trim()
            .slice(0, 120) || null,
  };
  for (const w of words) {
    if (w === 'up') r.health = 'up';
    else if (w === 'down' || w === 'fail' || w === 'stopped') r.health = 'down';
    else if (w === 'ready' || w === 'drain' || w === 'maint') r.admin = w;
    else if (/^\d{1,3}%$/.test(w)) {
      const n = Number(w.slice(0, -1));
      if (n <= 100) r.percent = n;
    }
  }
  return r;
}

/** Reads the agent's line: up to a newline, or what it wrote before closing. */
function askAgent(
  via: Connector,
  host: string,
  port: number,
  timeoutMs: number,
): Promise<string | { error: string }> {
  return new Promise((resolve) => {
    via.check({ host, port }, timeoutMs, (failure, sock) => {
      if (failure !== null) return resolve({ error: failure.detail });
      let text = '';
      let done = false;
      const finish = (r: string | { error: string }): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        sock.destroy();
        resolve(r);
      };
      const timer = setTimeout(() => finish({ error: `timeout ${timeoutMs}ms` }), timeoutMs);
      sock.on('error', (err: NodeJS.ErrnoException) => finish({ error: err.code ?? err.message }));
      sock.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        const nl = text.indexOf('\n');
        if (nl >= 0) finish(text.slice(0, nl).replace(/\r$/, ''));
        else if (text.length > MAX_LINE) finish({ error: 'reply line too long' });
      });
      sock.on('end', () =>
        finish(text.trim().length > 0 ? text.trim() : { error: 'closed without a reply' }),
      );
    });
  });
}

/**
 * HAProxy's agent-check: every agent_interval, connect to the backend's agent
 * and read one line. Each kind of word applies when it changes from the
 * agent's previous reply, so an operator's drain or disable between two
 * replies stands until the agent says something new. An agent that cannot be
 * reached changes nothing (it is not a health check), and is shown.
 */
export class AgentChecker {
  private readonly loop: BackendLoop;
  private readonly last = new Map<Backend, AgentReply>();
  /** Set by stop(): a reply still on its way is dropped (a reload may have released every hold). */
  private stopped = false;
  /** A removed backend's last reply goes with it (a backend churned by discovery would pile up here). */
  private readonly onRemoved = (b: Backend): void => {
    this.last.delete(b);
  };

  constructor(
    private readonly cfg: AgentConfig,
    private readonly timeoutMs: number,
    private readonly target: AgentTarget,
    private readonly log: Logger,
  ) {
    this.loop = new BackendLoop(target.backends, cfg.intervalMs, (b) => this.check(b));
  }

  start(): void {
    if (this.stopped) return;
    this.target.backends.on('removed', this.onRemoved);
    this.loop.start();
  }

  stop(): void {
    this.stopped = true;
    this.target.backends.off('removed', this.onRemoved);
    this.last.clear();
    this.loop.stop();
  }

  checkAll(): Promise<void> {
    return this.loop.runAll();
  }

  private async check(b: Backend): Promise<void> {
    if (this.stopped) return;
    let reply: string | { error: string };
    try {
      reply = await askAgent(
        this.target.connector.plain,
        this.cfg.host ?? b.host,
        this.cfg.port,
        this.timeoutMs,
      );
    } catch (err) {
      // Never an exception past the checker: the agent is shown as unreachable, and why.
      reply = { error: `agent check failed (${thrown(err)})` };
    }
    // Paused by an operator (admin API): the agent's word waits until checks resume.
    if (this.stopped || b.removed || b.checksPaused) return;
    const set = this.target.backends;
    if (typeof reply !== 'string') {
      set.reportAgent(b, false, reply.error);
      return;
    }
    set.reportAgent(b, true, reply.slice(0, 120));
    try {
      this.apply(b, parseAgentReply(reply));
    } catch (err) {
      // A backend removed between the reply and now: nothing to apply.
      this.log.debug({ backend: b.address, err }, 'agent reply not applied');
    }
  }

  private apply(b: Backend, r: AgentReply): void {
    const prev = this.last.get(b);
    this.last.set(b, r);
    const t = this.target;
    if (r.health !== null && r.health !== prev?.health) {
      const why = `agent: down${r.reason ? ` (${r.reason})` : ''}`;
      t.backends.holdDown(b, r.health === 'down' ? why : null);
      this.log.info({ backend: b.address, agent: r.health }, 'agent says');
    }
    if (r.admin !== null && r.admin !== prev?.admin) {
      if (r.admin === 'drain') t.drainBackend(b.address);
      else if (r.admin === 'maint') t.disableBackend(b.address);
      else t.enableBackend(b.address);
      this.log.info({ backend: b.address, agent: r.admin }, 'agent says');
    }
    if (r.percent !== null && r.percent !== prev?.percent) {
      // 0 % is HAProxy's weight 0: no new sessions. A weight here is at least 1, so it drains.
      if (r.percent === 0) t.drainBackend(b.address);
      else {
        if (prev?.percent === 0 && r.admin === null) t.enableBackend(b.address);
        t.setWeight(b.address, Math.max(1, Math.round((t.baseWeight(b) * r.percent) / 100)));
      }
    }
  }
}
