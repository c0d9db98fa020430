/** The one do-nothing listener: an 'error' handler for a socket that is being destroyed anyway. */
export function noop(): void {}
