import type { FastifyBaseLogger } from 'fastify'
import type { RevocationBus } from '../bus/bus.js'

/**
 * A session as a server-side store keeps it. Times are milliseconds since the epoch,
 * all computed by the plugin on one clock (`StoreContext.clock`).
 *
 * The store never sees the cookie's secret, only `secretHash` (SHA-256, base64url);
 * the plugin compares it in constant time. A dump of the store yields no usable cookie.
 */
export interface StoredSession {
  /**
   * Public handle: safe to show on a devices page. A user's session id starts with the user's
   * tag under the store's owner key (`<userTag(ownerKey, userId)>.<random>`, see `ownerKey`),
   * which tells nothing about the user to whoever lacks the key.
   */
  id: string
  secretHash: string
  /** `undefined` for an anonymous session. */
  userId: string | undefined
  /** Plain JSON-compatible object; a store returns a fresh copy on every read. */
  data: Record<string, unknown>
  createdAt: number
  /** Moved by writes (to the minute, on a store that takes `SessionPatch.readLastSeenAt`). */
  lastSeenAt: number
  /** The effective deadline: the earlier of the idle deadline and the absolute one. */
  expiresAt: number
  authenticatedAt: number | undefined
  ip: string | undefined
  userAgent: string | undefined
  /**
   * The session's own settings from `login()` (its timeouts, a browser-session cookie, a bearer
   * transport), encoded by the plugin: a short ASCII string the store keeps as it is and gives
   * back unchanged. Absent for a session on the app's defaults, the common case.
   */
  policy?: string | undefined
  /**
   * What device-bound sessions (DBSC) keep with the session, encoded by the plugin: the
   * browser's public key, the hashes of its current cookies, pending challenges. An ASCII
   * string of at most a few KB, kept as it is and given back unchanged, changed only by a
   * patch that says so (`SessionPatch.dbsc`). Absent for a session that is not bound.
   */
  dbsc?: string | undefined
}

/** How stale a stored `lastSeenAt` may be (ms): see `SessionPatch.lastSeenAt`. */
export const LAST_SEEN_STEP = 60_000

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
  /**
   * Now. A store may keep the `lastSeenAt` it has while `readLastSeenAt` is less than
   * `LAST_SEEN_STEP` older than this (the Redis store does, to leave it out of a write of data):
   * last seen is kept to the minute.
   */
  lastSeenAt: number
  /** A new deadline, when the expiry is refreshed; otherwise the deadline stays. */
  expiresAt?: number | undefined
  /**
   * The deadline the session had when the request read it, when known. A store may take it
   * instead of reading the deadline again, while it is still ahead of the clock: a session
   * ended since then (deleted, or expired on the store's side) must still make the patch
   * resolve false, and one whose deadline passed since must be checked on what is stored.
   */
  readExpiresAt?: number | undefined
  /** `lastSeenAt` as the request read it, when known (see `lastSeenAt`). */
  readLastSeenAt?: number | undefined
  /**
   * The session's data as the request read it, when known: which keys it held then. Only a
   * hint: another request may have removed a key since.
   */
  readData?: Readonly<Record<string, unknown>> | undefined
  /**
   * A compare-and-set of `StoredSession.dbsc`: when the stored value is still `from`
   * (undefined: none), it becomes `to`, atomically with the rest of the patch; when it is not,
   * the patch changes nothing and resolves false. Absent: the field stays as it is.
   */
  dbsc?: { from: string | undefined, to: string } | undefined
}

export interface StoreContext {
  /** Milliseconds since the epoch; every deadline is computed on this clock. */
  clock: () => number
  log: FastifyBaseLogger
  /** The most sessions one user may hold; inserting one more evicts the user's least recently used. */
  maxSessionsPerUser: number
  /** The plugin's secrets, newest first, for a store that seals sessions into the cookie. */
  secrets?: ReadonlyArray<string | Buffer>
  /** The session cookie's name, which a sealing store binds into the sealed value. */
  cookieName?: string
  /**
   * Where register() gathers the problems of the options, to report them together (one restart
   * fixes them all): a store that can go on checking after one adds it here instead of throwing,
   * and the app does not start. Absent when a store is built outside the plugin: throw then.
   */
  problems?: { add: (err: Error) => void }
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
  /**
   * The store's owner key: 32 random bytes (`newOwnerKey()`) created once and kept in the store
   * itself, so that every instance sharing the store reads the same key (Redis: one key set with
   * NX; a table: one row). The plugin reads it once and names each user's sessions
   * `<userTag(ownerKey, userId)>.<random>`: the store finds the user's slot or index from
   * `tagOf(id)`, and the plugin checks that an id is a user's without a round trip. Absent, a
   * user's session ids are plain random ones and that check reads the session.
   */
  ownerKey? (): Promise<Uint8Array>
  /**
   * How every instance sharing the store hears that sessions ended (see lib/bus/bus.ts). Opens
   * nothing until first subscribed to; closed by the store's `close`. A store without one is
   * heard by the instance that revokes only.
   */
  readonly bus?: RevocationBus
  /**
   * Checks, once at the app's ready(), what only the store's server can tell before traffic
   * comes (a missing table): rejects with a typed error for a mistake that will not heal, and
   * resolves, after a warning, when the server cannot be reached (it may come up later).
   */
  ready? (): Promise<void>
  /** Releases what the store opened (clients, timers); called from the app's onClose. */
  close? (): Promise<void>
}

/**
 * A session as a stateless store seals it into the cookie. Times are milliseconds since the
 * epoch; the plugin checks every deadline on its own clock when the cookie comes back.
 */
export interface SealedSession {
  /** Public handle, as for server-side sessions; what revocation deny-lists. */
  id: string
  userId: string | undefined
  data: Record<string, unknown>
  createdAt: number
  /** The idle deadline, never past `absoluteAt`. */
  expiresAt: number
  /** The absolute deadline: `createdAt + absoluteTtl` when it was sealed. */
  absoluteAt: number
  authenticatedAt: number | undefined
  /** The user's revocation generation when the session was issued (see `RevocationStore`); 0 for none. */
  generation: number
  /** Its own settings from `login()`, as for `StoredSession.policy`; sealed with it. */
  policy?: string | undefined
}

/**
 * Where a stateless store remembers what it revoked. Each user has a generation: revoking
 * all of a user's sessions raises it, and a session sealed under a lower one stops
 * authenticating unless it was kept. One session is revoked by deny-listing its id.
 */
export interface RevocationStore {
  /** Denied id, or issued under an older generation of its user and not kept. At most one round trip. */
  isRevoked (id: string, userId: string | undefined, generation: number): Promise<boolean>
  /** The user's current generation, sealed into each new session of the user; 0 when never raised. */
  generation (userId: string): Promise<number>
  /** Deny-lists one id until `until` (ms since the epoch); resolves whether it was not denied already. */
  revoke (id: string, until: number): Promise<boolean>
  /**
   * Raises the user's generation, so that every session issued before stops authenticating,
   * but those in `except` (ids of that user). The generation must stay above every earlier
   * one, even after the user's entry expired at `until`.
   */
  revokeAll (userId: string, except: readonly string[], until: number): Promise<void>
  /** The owner key the stateless store's ids are tagged with, kept here as `SessionStore.ownerKey`. */
  ownerKey? (): Promise<Uint8Array>
  /** How every instance sharing the revocation store hears of revocations, as `SessionStore.bus`. */
  readonly bus?: RevocationBus
  /** As `SessionStore.ready`: called once, at the app's ready(). */
  ready? (): Promise<void>
  close? (): Promise<void>
}

/**
 * The contract of a stateless store: the whole session travels in the cookie, sealed. The
 * store seals and opens; the plugin checks deadlines and asks `revocation`. The plugin refuses
 * a stateless store without one at register(): nothing could be revoked before its deadline.
 */
export interface StatelessStore {
  readonly stateless: true
  /** The cookie value for `session`, sealed with the newest key. May throw only on a programming error. */
  seal (session: SealedSession): string
  /** The session sealed in `value`, or undefined when it does not authenticate; never throws. `renew`: sealed with an older key. */
  open (value: string): { session: SealedSession, renew: boolean } | undefined
  readonly revocation?: RevocationStore | undefined
  /** Releases what the store opened; called from the app's onClose. */
  close? (): Promise<void>
}

/** Builds a store from the plugin's `storeOptions`; called once, at register(). */
export type StoreFactory<O = any> = (options: O, context: StoreContext) => SessionStore | StatelessStore

export const storeMethods = ['get', 'insert', 'patch', 'delete', 'getAll', 'deleteAll'] as const
export const statelessMethods = ['seal', 'open'] as const
export const revocationMethods = ['isRevoked', 'generation', 'revoke', 'revokeAll'] as const

export function isStateless (store: SessionStore | StatelessStore): store is StatelessStore {
  return (store as Partial<StatelessStore>).stateless === true
}
