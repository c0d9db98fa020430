/**
 * The one place blitz-lb reads Node's private `_handle`: the OS socket under
 * a listening net.Server (or a net.Socket opened on a passed descriptor), as
 * the object that child_process gives a child (stdio) and that IPC carries
 * (`send(message, handle)`) without anyone accepting on it meanwhile.
 *
 * Node 24 has no public equivalent for a socket that is already listening:
 * `subprocess.send(m, server)` (public) makes the receiver listen and accept
 * on its copy, which would take clients from the workers during an upgrade;
 * `net.BoundSocket#fd()` (24.x) gives the descriptor only until a server
 * adopts it; `server.listen(handle)` documents "anything with an underlying
 * `_handle` member" as the way in, but there is no way out. Checked on every
 * Node this supports by the upgrade, socket-activation and cluster tests.
 */
export function socketHandle(owner: object): object | null {
  const h = (owner as { _handle?: unknown })._handle;
  return typeof h === 'object' && h !== null ? h : null;
}
