import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { waitFor } from './servers.js';

/**
 * What systemd does with $NOTIFY_SOCKET, as a stand-in: a Unix datagram socket
 * (Node cannot bind one; python3 can) printing each message with its sender's
 * PID (SCM_CREDENTIALS), one line each, fields joined by "|". It closes the
 * descriptors systemd-notify passes with BARRIER=1, as systemd does, so the
 * sender does not wait for its barrier in vain.
 */
const LISTENER = `
import array, os, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
print("listening", flush=True)
while True:
    msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(64))
    pid = 0
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iII", data[:12])[0]
        elif level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(data[: len(data) - len(data) % 4])
            for fd in fds:
                os.close(fd)
    print(f"{pid} {msg.decode().replace(chr(10), '|')}", flush=True)
`;

export interface NotifyMessage {
  /** The sender's PID as the kernel reports it. */
  pid: number;
  /** "READY=1" -> { READY: "1" }. */
  fields: Record<string, string>;
}

export interface NotifySocket {
  path: string;
  /** Every message so far, BARRIER=1 left out. */
  messages(): NotifyMessage[];
  /** Waits for the nth message (from 0) that has `key` and returns it. */
  next(key: string, after?: number): Promise<NotifyMessage>;
}

export async function notifySocket(t: TestContext): Promise<NotifySocket> {
  const dir = mkdtempSync(join(tmpdir(), 'blitz-lb-notify-'));
  const path = join(dir, 'notify');
  const py = spawn('python3', ['-c', LISTENER, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => {
    py.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  let out = '';
  py.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  await waitFor(() => out.startsWith('listening\n'), 10_000, 'the stand-in notify socket');
  const messages = (): NotifyMessage[] =>
    out
      .split('\n')
      .slice(1)
      .filter((l) => l !== '' && !l.endsWith(' BARRIER=1'))
      .map((l) => {
        const [pid, rest] = [l.slice(0, l.indexOf(' ')), l.slice(l.indexOf(' ') + 1)];
        const fields = Object.fromEntries(
          rest.split('|').map((f) => [f.slice(0, f.indexOf('=')), f.slice(f.indexOf('=') + 1)]),
        );
        return { pid: Number(pid), fields };
      });
  return {
    path,
    messages,
    async next(key, after = 0) {
      const find = () => messages().filter((m) => key in m.fields)[after];
      await waitFor(() => find() !== undefined, 15_000, `notify message ${key} #${after}`);
      return find() as NotifyMessage;
    },
  };
}
