import { withStoreErrors, type SessionCore } from './core.js'
import {
  FST_SESSION_NOT_FOUND, FST_SESSION_OPTION_INVALID, FST_SESSION_STORE_UNSUPPORTED, FST_SESSION_VALUE_INVALID
} from './errors.js'
import { isSessionId, normalizeUserId, ownerKeyOf, userKey } from './ids.js'
import type { SessionData } from './session-data.js'
import { isStateless, type RevocationStore, type StatelessStore, type StoredSession } from './stores/store.js'

/** A session as `app.sessions` shows it: everything but the secret's hash. Times in ms since the epoch. */
export interface SessionRecord {
  id: string
  userId: string | undefined
  data: Partial<SessionData> & Record<string, unknown>
  createdAt: number
  lastSeenAt: number
  expiresAt: number
  authenticatedAt: number | undefined
  ip: string | undefined
  userAgent: string | undefined
}

export interface SessionUpdate {
  id: string
  /** When given, the session must belong to this user. */
  userId?: string | number
  data: Record<string, unknown>
}

export interface DeleteAllOptions {
  /** Session id(s) to keep, e.g. the current one for "log out other devices". */
  except?: string | readonly string[]
}

function toRecord (s: StoredSession): SessionRecord {
  return {
    id: s.id,
    userId: s.userId,
    data: s.data,
    createdAt: s.createdAt,
    lastSeenAt: s.lastSeenAt,
    expiresAt: s.expiresAt,
    authenticatedAt: s.authenticatedAt,
    ip: s.ip,
    userAgent: s.userAgent
  }
}

const SERVER_STORE = 'use a server-side store such as "memory" or "redis"'

/** What a stateless store cannot do: it keeps no session on the server to read or change. */
function unlisted (what: string): Error {
  return new FST_SESSION_STORE_UNSUPPORTED(what, `a stateless store keeps no session on the server; ${SERVER_STORE}`)
}

function exceptions (options: DeleteAllOptions): string[] {
  const except = options.except
  return except === undefined ? [] : typeof except === 'string' ? [except] : [...except]
}

function revocationOf (store: StatelessStore, what: string): RevocationStore {
  if (store.revocation !== undefined) return store.revocation
  throw new FST_SESSION_STORE_UNSUPPORTED(`${what} without a revocation store`,
    `set storeOptions.revocation ('memory' or { type: 'redis', client }), or ${SERVER_STORE}`)
}

/**
 * `app.sessions`: the per-user model (after YipyipExAuth's SessionStore). Every call costs
 * O(that user's sessions) in the built-in stores, whatever the number of sessions stored.
 */
export class UserSessions {
  readonly #core: SessionCore

  /** @internal */
  constructor (core: SessionCore) {
    this.#core = core
  }

  /** True when `id` can belong to `userId` (the id carries the user's key); no store round trip. */
  #owned (id: string, userId: string | number | undefined): boolean {
    if (typeof id !== 'string' || !isSessionId(id)) return false
    return userId === undefined || ownerKeyOf(id) === userKey(normalizeUserId(userId))
  }

  /** One live session, or undefined; with `userId`, only if it belongs to that user. */
  async get (sessionId: string, userId?: string | number): Promise<SessionRecord | undefined> {
    const store = this.#core.store
    if (isStateless(store)) throw unlisted('get')
    if (!this.#owned(sessionId, userId)) return undefined
    const s = await withStoreErrors(store.get(sessionId))
    return s === undefined || s.expiresAt <= this.#core.now() ? undefined : toRecord(s)
  }

  /**
   * Replaces the data of a live session and pushes its idle deadline to `ttl` seconds from now
   * (never past its absolute deadline). Throws `FST_SESSION_NOT_FOUND` when it does not exist.
   */
  async upsert (session: SessionUpdate, ttl: number = this.#core.options.ttl): Promise<SessionRecord> {
    if (session === null || typeof session !== 'object' || session.data === null || typeof session.data !== 'object') {
      throw new FST_SESSION_OPTION_INVALID('session', 'must be an object with an id and a data object')
    }
    if (!Number.isSafeInteger(ttl) || ttl <= 0) throw new FST_SESSION_OPTION_INVALID('ttl', 'must be a positive integer')
    const core = this.#core
    const store = core.store
    if (isStateless(store)) throw unlisted('upsert')
    const current = await this.get(session.id, session.userId)
    if (current === undefined) throw new FST_SESSION_NOT_FOUND()
    const now = core.now()
    const expiresAt = core.deadline(current.createdAt, now, ttl * 1000)
    let data: Record<string, unknown>
    try {
      data = JSON.parse(JSON.stringify(session.data)) as Record<string, unknown>
    } catch (err) {
      throw new FST_SESSION_VALUE_INVALID('data', (err as Error).message)
    }
    const set = Object.assign(Object.create(null) as Record<string, unknown>, data)
    const ok = await withStoreErrors(store.patch(session.id, { clear: true, set, unset: [], lastSeenAt: now, expiresAt }))
    if (!ok) throw new FST_SESSION_NOT_FOUND()
    return { ...current, data, lastSeenAt: now, expiresAt }
  }

  /** Deletes one session; with `userId`, only if it belongs to that user. Resolves whether it existed. */
  async delete (sessionId: string, userId?: string | number): Promise<boolean> {
    const core = this.#core
    const store = core.store
    if (isStateless(store)) {
      // Its absolute deadline is in the cookie, not here: deny-list the id as long as any session can live.
      const revocation = revocationOf(store, 'delete')
      if (!this.#owned(sessionId, userId)) return false
      return await withStoreErrors(revocation.revoke(sessionId, core.now() + core.absoluteTtlMs))
    }
    if (!this.#owned(sessionId, userId)) return false
    return await withStoreErrors(store.delete(sessionId))
  }

  /** Every live session of the user, oldest first; none for `undefined` (an anonymous visitor). */
  async getAll (userId: string | number | undefined): Promise<SessionRecord[]> {
    const store = this.#core.store
    if (isStateless(store)) throw unlisted('getAll')
    if (userId === undefined) return []
    const all = await withStoreErrors(store.getAll(normalizeUserId(userId)))
    const now = this.#core.now()
    return all.filter((s) => s.expiresAt > now).map(toRecord).sort((a, b) => a.createdAt - b.createdAt)
  }

  /**
   * Deletes every session of the user but `except`, in one atomic step; resolves how many it
   * deleted (0 for `undefined`). A stateless store cannot count the cookies it revoked: it resolves 0.
   */
  async deleteAll (userId: string | number | undefined, options: DeleteAllOptions = {}): Promise<number> {
    const store = this.#core.store
    if (isStateless(store)) return await this.#revokeAll(store, userId, options)
    if (userId === undefined) return 0
    return await withStoreErrors(store.deleteAll(normalizeUserId(userId), exceptions(options)))
  }

  async #revokeAll (store: StatelessStore, userId: string | number | undefined, options: DeleteAllOptions): Promise<number> {
    const revocation = revocationOf(store, 'deleteAll')
    if (userId === undefined) return 0
    const id = normalizeUserId(userId)
    const key = userKey(id)
    const kept = exceptions(options).filter((s) => typeof s === 'string' && isSessionId(s) && ownerKeyOf(s) === key)
    const core = this.#core
    await withStoreErrors(revocation.revokeAll(id, kept, core.now() + core.absoluteTtlMs))
    return 0
  }
}
