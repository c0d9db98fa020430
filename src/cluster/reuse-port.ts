/** Set to "0" to turn SO_REUSEPORT off: workers then share each socket through node:cluster. */
export const REUSE_PORT_ENV = 'BLITZ_LB_REUSE_PORT';

/**
 * Whether workers bind their own listening sockets with SO_REUSEPORT
 * (`reusePort`, Node >= 22.12): on Linux, unless BLITZ_LB_REUSE_PORT=0.
 * Linux spreads new connections over the sockets of a port by a hash of the
 * 4-tuple, so no process sits on the accept path and no worker takes more
 * than its share. Elsewhere SO_REUSEPORT does not balance (BSD and macOS
 * give every connection to one socket), so workers share one socket.
 */
export function reusePortWanted(env: NodeJS.ProcessEnv = process.env): boolean {
  return process.platform === 'linux' && env[REUSE_PORT_ENV] !== '0';
}
