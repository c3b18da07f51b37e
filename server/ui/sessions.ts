/**
 * Web interface sessions, in memory: logging in with the admin token (or the read token)
 * makes a session with a random 256-bit id (the HttpOnly, SameSite=Strict cookie) and its
 * own random CSRF token (the synchronizer-token pattern: every state-changing request must
 * carry it, in a form field or the X-CSRF-Token header, compared in constant time). The
 * token itself is never kept, only the role it gave. A session ends at logout, after
 * `idleMs` without a request, or `maxAgeMs` after login; a restarted server forgets them
 * all. At most MAX_SESSIONS live at once (the oldest goes first).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Role } from '../auth.ts';

export interface Session {
  id: string;
  role: Role;
  csrf: string;
  created: number;
  seen: number;
}

export interface SessionLimits {
  /** Ends a session this long after its last request (default 1 hour). */
  idleMs?: number;
  /** Ends a session this long after login (default 12 hours). */
  maxAgeMs?: number;
}

export const MAX_SESSIONS = 10_000;

const newSecret = () => randomBytes(32).toString('base64url');

export function sameSecret(given: string | undefined, kept: string): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(kept);
  return a.length === b.length && timingSafeEqual(a, b);
}

export class Sessions {
  private readonly byId = new Map<string, Session>();
  readonly idleMs: number;
  readonly maxAgeMs: number;

  constructor(limits: SessionLimits = {}) {
    this.idleMs = limits.idleMs ?? 60 * 60_000;
    this.maxAgeMs = limits.maxAgeMs ?? 12 * 60 * 60_000;
  }

  create(role: Role, now = Date.now()): Session {
    this.sweep(now);
    // Map order is insertion order: the first key is the oldest session.
    while (this.byId.size >= MAX_SESSIONS) this.byId.delete(this.byId.keys().next().value!);
    const session = { id: newSecret(), role, csrf: newSecret(), created: now, seen: now };
    this.byId.set(session.id, session);
    return session;
  }

  /** The live session of a cookie value (and marks it used), or null. */
  get(id: string | undefined, now = Date.now(), touch = true): Session | null {
    if (!id) return null;
    const session = this.byId.get(id);
    if (!session) return null;
    if (this.expired(session, now)) {
      this.byId.delete(id);
      return null;
    }
    if (touch) session.seen = now;
    return session;
  }

  expired(session: Session, now = Date.now()): boolean {
    return now - session.seen > this.idleMs || now - session.created > this.maxAgeMs || this.byId.get(session.id) !== session;
  }

  end(id: string): void {
    this.byId.delete(id);
  }

  sweep(now = Date.now()): void {
    for (const s of this.byId.values()) if (this.expired(s, now)) this.byId.delete(s.id);
  }
}
