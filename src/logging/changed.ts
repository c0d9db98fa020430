import type { Config } from '../config/schema.js';

/** The [log] keys a reload cannot change (the output is opened once at start), or null when none changed. */
export function logOutputChanged(from: Config['log'], to: Config['log']): string | null {
  const keys: string[] = [];
  if (from.destination !== to.destination) keys.push('destination');
  if (from.file !== to.file) keys.push('file');
  if (JSON.stringify(from.syslog) !== JSON.stringify(to.syslog)) keys.push('syslog');
  if (from.facility !== to.facility) keys.push('facility');
  if (from.format !== to.format) keys.push('format');
  if (from.hostname !== to.hostname) keys.push('hostname');
  return keys.length > 0 ? keys.join(', ') : null;
}
