import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { UNTRACKED, type SessionCore } from './core.js'
import { FST_SESSION_ID_COLLISION, FST_SESSION_NOT_FOUND } from '../errors.js'
import { hashSecret, isLegacyId, newSecret, parseToken, secretMatches } from '../crypto/ids.js'
import { decodePolicy, encodePolicy, MAX_LIFETIME, type Policy } from './policy.js'
import { emptyData } from '../stores/data.js'
import { announce } from '../bus/announce.js'
import type { RevocationBus, RevocationReason } from '../bus/bus.js'
import { localBus } from '../bus/local.js'
import { withStoreErrors } from './store-errors.js'
import type { SessionStore, StoredSession } from '../stores/store.js'
import type { Backend, DataChange, Issued, LoadResult, NewSession, Persisted, SessionRecord } from './backend.js'
import { SessionIds } from './owned.js'
import { DeviceBinding } from './dbsc.js'
import { decodeDbsc, isBound } from './dbsc-state.js'

// A server-side store (memory, Redis, PostgreSQL, a connect store): the cookie carries
// `<id>.<secret>`, the store keeps the session under its id with the SHA-256 of the secret,
// compared in constant time. The 256-bit secret is what authenticates the cookie, so it needs
// no signature of its own (the session-token design Lucia documents).

const MAX_INSERT_ATTEMPTS = 100 // as Plug's ETS store

/**
 * Whether `secret` authenticates a session that carries a dbsc field, once the app turned
 * DBSC off: by its hash while it was only offered binding; never once bound (its cookies
 * rotate, and the secret of its login must not come back to life).
 */
function unbound (record: StoredSession, secret: string): boolean {
  return decodeDbsc(record.dbsc as string)?.key === undefined && secretMatches(record.secretHash, secret)
}

function toRecord (s: StoredSession, policy: Policy, core: SessionCore): SessionRecord {
  return {
    id: s.id,
    userId: s.userId,
    data: s.data,
    createdAt: s.createdAt,
    lastSeenAt: s.lastSeenAt,
    expiresAt: s.expiresAt,
    authenticatedAt: s.authenticatedAt,
    ip: s.ip,
    userAgent: s.userAgent,
    ...core.settingsOf(policy),
    deviceBound: isBound(s.dbsc)
  }
}

export class ServerBackend implements Backend<StoredSession> {
  readonly core: SessionCore
  readonly maxAbsoluteTtl = MAX_LIFETIME
  readonly bus: RevocationBus
  readonly binding: DeviceBinding | undefined
  readonly #store: SessionStore
  readonly #ids: SessionIds
  readonly #log: FastifyBaseLogger
  /** The store tells the bus of what it deletes in bulk (deleteAll, evictions) itself. */
  readonly #storeAnnounces: boolean
  /** How a session with a dbsc field authenticates: decided once, by whether DBSC is on. */
  readonly #boundSecret: (record: StoredSession, secret: string, now: number) => boolean

  /** `prefix`: the prefix the plugin was registered under, for the DBSC routes. */
  constructor (core: SessionCore, store: SessionStore, log: FastifyBaseLogger, prefix = '') {
    this.core = core
    this.#store = store
    this.#ids = new SessionIds(store)
    this.#log = log
    const own = store.bus
    this.#storeAnnounces = own !== undefined
    this.bus = own ?? localBus(store, log)
    const dbsc = core.options.dbsc
    const binding = dbsc === undefined ? undefined : new DeviceBinding(core, dbsc, store, (log, raw) => this.load(log, raw, false), prefix)
    this.binding = binding
    this.#boundSecret = binding === undefined ? unbound : (record, secret, now) => binding.authenticates(record, secret, now)
  }

  #announce (sessionId: string, userId: string | undefined, reason: RevocationReason): void {
    announce(this.bus, this.#log, { ids: [sessionId], userId, reason, at: this.core.now() })
  }

  async load (log: FastifyBaseLogger, raw: string, bearer: boolean | undefined): Promise<LoadResult<StoredSession>> {
    const core = this.core
    const token = parseToken(raw)
    if (token === undefined) return core.reject(log, 'malformed')
    let record: StoredSession | undefined
    try {
      record = await this.#store.get(token.id)
    } catch (err) {
      return core.unavailable(log, err)
    }
    const now = core.now()
    if (record === undefined || record.expiresAt <= now) return core.reject(log, 'unknown or expired')
    // A user's session of the format before 0.2, its id the user id in clear, that a store still holds.
    if (record.userId !== undefined && isLegacyId(record.id, record.userId)) return core.reject(log, 'unknown or expired')
    // A session never offered device binding (the common case) has no dbsc field: one property read.
    if (record.dbsc === undefined) {
      if (!secretMatches(record.secretHash, token.secret)) return core.reject(log, 'secret mismatch')
    } else if (!this.#boundSecret(record, token.secret, now)) {
      return core.reject(log, 'not a current cookie of its device-bound session')
    }
    const policy = core.policyFor(record.policy, bearer)
    if (policy === undefined) return core.reject(log, 'other transport or unreadable settings')
    return { kind: 'loaded', state: record, secret: token.secret, renew: false, policy }
  }

  record (state: StoredSession, policy: Policy): SessionRecord {
    return toRecord(state, policy, this.core)
  }

  /** Inserts with insert-new semantics; on the (astronomically rare) collision, draws a new id and secret. */
  async create (request: FastifyRequest, init: NewSession): Promise<Issued<StoredSession>> {
    const core = this.core
    const now = core.now()
    // Kept for a devices page, which lists a user's sessions: an anonymous one keeps neither
    // (nothing lists it, and its login makes a new session, which does).
    const { ip, userAgent } = init.userId === undefined ? UNTRACKED : core.client(request)
    let secret = newSecret()
    let record: StoredSession = {
      id: init.id ?? await this.#ids.newId(init.userId),
      secretHash: hashSecret(secret),
      userId: init.userId,
      data: init.data,
      createdAt: init.createdAt,
      lastSeenAt: now,
      expiresAt: core.deadline(init.createdAt, now, init.policy),
      authenticatedAt: init.authenticatedAt,
      ip,
      userAgent
    }
    const policy = encodePolicy(init.policy)
    if (policy !== undefined) record.policy = policy
    // login() and regenerate() of a user's session, over https: offered device binding, in the insert itself.
    const offer = init.userId === undefined ? undefined : this.binding?.offer(request, init.policy, now)
    if (offer !== undefined) record.dbsc = offer.field
    let attempts = 1
    while (!await this.#store.insert(record)) {
      if (attempts++ === MAX_INSERT_ATTEMPTS) throw new FST_SESSION_ID_COLLISION(MAX_INSERT_ATTEMPTS)
      request.log.warn('session id collision; drawing a new id')
      secret = newSecret()
      record = { ...record, id: await this.#ids.newId(record.userId), secretHash: hashSecret(secret) }
    }
    return { state: record, secret, registration: offer?.registration }
  }

  async persist (state: StoredSession, change: DataChange | undefined, _data: Record<string, unknown>, now: number,
    expiresAt: number | undefined): Promise<Persisted<StoredSession> | undefined> {
    const ok = await this.#store.patch(state.id, {
      clear: change?.clear ?? false,
      set: change?.set ?? emptyData(),
      unset: change?.unset ?? [],
      lastSeenAt: now,
      expiresAt,
      readExpiresAt: state.expiresAt,
      readLastSeenAt: state.lastSeenAt,
      readData: state.data
    })
    if (!ok) return undefined
    // A bound session's cookie lives `dbsc.cookieTtl` and is renewed by the browser's refresh,
    // never by a rolling deadline: sent again with the session's Max-Age, it would outlive
    // what the server accepts, and the browser would not refresh it in time.
    const resend = expiresAt !== undefined && (state.dbsc === undefined || !isBound(state.dbsc))
    return { state: { ...state, lastSeenAt: now, expiresAt: expiresAt ?? state.expiresAt }, resend }
  }

  async drop (state: StoredSession, reason: 'destroy' | 'replaced'): Promise<boolean> {
    const live = await this.#store.delete(state.id)
    if (live) this.#announce(state.id, state.userId, reason)
    return live
  }

  async alive (state: StoredSession): Promise<number | undefined> {
    const s = await this.#store.get(state.id)
    return s === undefined || s.secretHash !== state.secretHash ? undefined : s.expiresAt
  }

  cookieValue (_request: FastifyRequest, state: StoredSession, secret: string): string {
    return state.id + '.' + secret
  }

  async get (sessionId: string, userId: string | undefined): Promise<SessionRecord | undefined> {
    const owned = await withStoreErrors(this.#ids.owned(sessionId, userId))
    if (owned === false) return undefined
    const s = await withStoreErrors(this.#store.get(sessionId))
    // A store without an owner key: its record says whose the session is.
    if (owned === undefined && s?.userId !== userId) return undefined
    return s === undefined || s.expiresAt <= this.core.now() ? undefined : this.#toRecord(s)
  }

  /** The record of a stored session; undefined when its settings or its binding cannot be read (it never authenticates). */
  #toRecord (s: StoredSession): SessionRecord | undefined {
    const policy = decodePolicy(s.policy)
    return policy === undefined || (s.dbsc !== undefined && decodeDbsc(s.dbsc) === undefined) ? undefined : toRecord(s, policy, this.core)
  }

  async upsert (sessionId: string, userId: string | undefined, data: Record<string, unknown>, ttlMs: number): Promise<SessionRecord> {
    const current = await this.get(sessionId, userId)
    if (current === undefined) throw new FST_SESSION_NOT_FOUND()
    const core = this.core
    const now = core.now()
    const expiresAt = Math.min(now + ttlMs, current.createdAt + current.absoluteTtl * 1000)
    const ok = await withStoreErrors(this.#store.patch(sessionId, { clear: true, set: data, unset: [], lastSeenAt: now, expiresAt }))
    if (!ok) throw new FST_SESSION_NOT_FOUND()
    return { ...current, data: { ...data }, lastSeenAt: now, expiresAt }
  }

  async delete (sessionId: string, userId: string | undefined): Promise<boolean> {
    const owned = await withStoreErrors(this.#ids.owned(sessionId, userId))
    if (owned === false) return false
    // A store without an owner key: its record says whose the session is, at the cost of a read.
    if (owned === undefined && (await withStoreErrors(this.#store.get(sessionId)))?.userId !== userId) return false
    const live = await withStoreErrors(this.#store.delete(sessionId))
    // The user, when the caller named one: an id no longer says whose it is.
    if (live) this.#announce(sessionId, userId, 'delete')
    return live
  }

  async getAll (userId: string | undefined): Promise<SessionRecord[]> {
    if (userId === undefined) return []
    const all = await withStoreErrors(this.#store.getAll(userId))
    const now = this.core.now()
    const records: SessionRecord[] = []
    for (const s of all) {
      // A session of the format before 0.2 (see load) is listed by no devices page: its id names its user.
      const record = s.expiresAt > now && !isLegacyId(s.id, userId) ? this.#toRecord(s) : undefined
      if (record !== undefined) records.push(record)
    }
    return records.sort((a, b) => a.createdAt - b.createdAt)
  }

  async deleteAll (userId: string | undefined, except: readonly string[]): Promise<number> {
    if (userId === undefined) return 0
    const deleted = await withStoreErrors(this.#store.deleteAll(userId, except))
    // A store without a bus of its own cannot say which: the message names the user, and each
    // instance checks the sessions it follows.
    if (deleted > 0 && !this.#storeAnnounces) announce(this.bus, this.#log, { ids: [], userId, except, reason: 'deleteAll', at: this.core.now() })
    return deleted
  }

  async close (): Promise<void> {
    await this.#store.close?.()
  }
}
