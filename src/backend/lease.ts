import { type Backend, entryOf } from './backend.js';

/*
 * Part of the backend state owner: BackendSet.reserve() alone makes a lease,
 * and a lease changes only the backend it was made for.
 */

/**
 * One of a backend's max_connections slots, held from the pick until the
 * session on it ends or its dial fails (or, for an HTTP request, until the
 * request ends). Whoever holds it gives the slot back with `end()`, and only
 * that; a second `end()` does nothing, so a slot can never be given back twice.
 */
export class SlotLease {
  private held = true;

  constructor(readonly backend: Backend) {}

  /** Gives the slot back (once), adding what crossed on it to the backend's byte counts. */
  end(bytesFromBackend = 0, bytesToBackend = 0): void {
    if (!this.held) return;
    this.held = false;
    const b = entryOf(this.backend);
    b.active--;
    b.bytesFromBackend += bytesFromBackend;
    b.bytesToBackend += bytesToBackend;
  }
}
