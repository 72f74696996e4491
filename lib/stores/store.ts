import type { FastifyBaseLogger } from 'fastify'

/**
 * A session as a server-side store keeps it. Times are milliseconds since the epoch,
 * all computed by the plugin on one clock (`StoreContext.clock`).
 *
 * The store never sees the cookie's secret, only `secretHash` (SHA-256, base64url);
 * the plugin compares it in constant time. A dump of the store yields no usable cookie.
 */
export interface StoredSession {
  /** Public handle: safe to show on a devices page. Embeds the user key for bound sessions (see `ownerKeyOf`). */
  id: string
  secretHash: string
  /** `undefined` for an anonymous session. */
  userId: string | undefined
  /** Plain JSON-compatible object; a store returns a fresh copy on every read. */
  data: Record<string, unknown>
  createdAt: number
  lastSeenAt: number
  /** The effective deadline: the earlier of the idle deadline and the absolute one. */
  expiresAt: number
  authenticatedAt: number | undefined
  ip: string | undefined
  userAgent: string | undefined
}

/**
 * A change to one session, applied atomically by the store, so that two requests that
 * change different keys of one session both keep their change.
 */
export interface SessionPatch {
  /** Drop every data key before applying `set` (session.clear()). */
  clear: boolean
  /** Keys to set; values are JSON-compatible. A null-prototype object. */
  set: Record<string, unknown>
  /** Keys to remove. */
  unset: string[]
  lastSeenAt: number
  /** A new deadline, when the expiry is refreshed; otherwise the deadline stays. */
  expiresAt?: number | undefined
}

export interface StoreContext {
  /** Milliseconds since the epoch; every deadline is computed on this clock. */
  clock: () => number
  log: FastifyBaseLogger
  /** The most sessions one user may hold; inserting one more evicts the user's least recently used. */
  maxSessionsPerUser: number
}

/**
 * The contract of a server-side session store. Every method may reject; the plugin turns
 * a rejection into a `FST_SESSION_STORE_UNAVAILABLE` (503) error, never a crash.
 *
 * - `get` never returns a session whose `expiresAt` has passed (by `context.clock`).
 * - `insert` has insert-new semantics: it resolves `false`, and changes nothing, when the id is taken.
 * - `patch` resolves `false`, and changes nothing, when the session is gone: a deleted session
 *   is never brought back by a request that was in flight when it was deleted.
 * - `getAll` and `deleteAll` cost O(that user's sessions), not O(all sessions).
 */
export interface SessionStore {
  get (id: string): Promise<StoredSession | undefined>
  insert (session: StoredSession): Promise<boolean>
  patch (id: string, patch: SessionPatch): Promise<boolean>
  delete (id: string): Promise<boolean>
  getAll (userId: string): Promise<StoredSession[]>
  /** Deletes every session of the user but those in `except`; resolves how many it deleted. */
  deleteAll (userId: string, except: readonly string[]): Promise<number>
  /** Releases what the store opened (clients, timers); called from the app's onClose. */
  close? (): Promise<void>
}

/** Builds a store from the plugin's `storeOptions`; called once, at register(). */
export type StoreFactory<O = any> = (options: O, context: StoreContext) => SessionStore

export const storeMethods = ['get', 'insert', 'patch', 'delete', 'getAll', 'deleteAll'] as const
