import { DEFAULT_TIMEOUT_MS, knownKeys, optionsObject, positiveInteger } from '../util/check.js'
import { FST_SESSION_OPTION_INVALID, FST_SESSION_STORE_UNSUPPORTED } from '../errors.js'
import { newOwnerKey, tagOf, userTag } from '../crypto/ids.js'
import { OwnerKey } from '../crypto/owner-key.js'
import { parseData } from '../util/json.js'
import type { SessionPatch, SessionStore, StoreContext, StoredSession } from './store.js'

// An adapter that lets a connect-style store (connect-redis, connect-pg-simple, connect-mongo,
// express-session's MemoryStore, ...) back the plugin. Such stores only get, set and destroy
// whole sessions, so:
// - insert and patch are read-modify-write. Within this process they are serialized per
//   session id, so concurrent requests keep each other's changes and a deleted session is not
//   brought back; across processes the store gives no such guarantee.
// - per-user operations list every session with the store's all() (O(all sessions)); a store
//   without all() does not support them, and its users have no per-user cap.

type Callback<T = unknown> = (err?: unknown, value?: T) => void

/** The part of express-session's Store this adapter uses (methods, so that its Store types fit). */
export interface ExpressStoreLike {
  get (sid: string, callback: (err: any, session?: any) => void): void
  set (sid: string, session: any, callback?: (err?: any) => void): void
  destroy (sid: string, callback?: (err?: any) => void): void
  all? (callback: (err: any, sessions?: any) => void): void
}

export interface ExpressStoreOptions {
  /** The connect-style store. */
  store: ExpressStoreLike
  /** Milliseconds a call may take before it fails with a 503. @default 2000 */
  timeout?: number
}

/** What this adapter keeps in the store's session object, beside the `cookie` connect stores read their TTL from. */
interface Envelope {
  cookie: { expires: string, originalMaxAge: number }
  fus: {
    h: string
    u: string | null
    d: Record<string, unknown>
    c: number
    l: number
    e: number
    a: number | null
    i: string | null
    g: string | null
    /** Absent for a session on the app's settings (and in records written before 0.2). */
    o?: string
    /** Absent for a session that is not device-bound. */
    b?: string
  }
}

function toEnvelope (s: StoredSession, now: number): Envelope {
  return {
    cookie: { expires: new Date(s.expiresAt).toISOString(), originalMaxAge: Math.max(0, s.expiresAt - now) },
    fus: {
      h: s.secretHash,
      u: s.userId ?? null,
      d: s.data,
      c: s.createdAt,
      l: s.lastSeenAt,
      e: s.expiresAt,
      a: s.authenticatedAt ?? null,
      i: s.ip ?? null,
      g: s.userAgent ?? null,
      ...(s.policy === undefined ? undefined : { o: s.policy }),
      ...(s.dbsc === undefined ? undefined : { b: s.dbsc })
    }
  }
}

/**
 * The session id under which the adapter keeps its owner key: not the shape of a session id, so
 * never looked up as one; its record has no `fus`, so `all()` skips it. Its `cookie.expires` is
 * as far as a Date goes, so that no connect store expires it.
 */
const OWNER_KEY_SID = 'fastify-user-sessions-owner-key'
const NEVER = new Date(8_640_000_000_000_000).toISOString()

const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
const isText = (v: unknown): v is string | null => v === null || typeof v === 'string'

/** The session in a store's object, or undefined when any field is not what `toEnvelope` writes. */
function fromEnvelope (id: string, value: unknown, ownerKey: Uint8Array): StoredSession | undefined {
  const f = (value as Partial<Envelope> | null | undefined)?.fus
  if (f === null || typeof f !== 'object' || typeof f.h !== 'string' || !isTime(f.e) || !isTime(f.c) || !isTime(f.l)) return undefined
  if (!(f.a === null || isTime(f.a)) || !isText(f.i) || !isText(f.g) || !isText(f.u)) return undefined
  if ((f.o !== undefined && typeof f.o !== 'string') || (f.b !== undefined && typeof f.b !== 'string')) return undefined
  // The id carries its user's tag: a record of another user (or none) under this id is not ours,
  // nor one of the format before 0.2, whose id carries the user id in clear.
  if (tagOf(id) !== (f.u === null ? undefined : userTag(ownerKey, f.u))) return undefined
  if (f.d === null || typeof f.d !== 'object' || Array.isArray(f.d)) return undefined
  return {
    id,
    secretHash: f.h,
    userId: f.u ?? undefined,
    // Stores parse JSON with JSON.parse; read the data again with prototype-poisoning protection.
    data: parseData(JSON.stringify(f.d)),
    createdAt: f.c,
    lastSeenAt: f.l,
    expiresAt: f.e,
    authenticatedAt: f.a ?? undefined,
    ip: f.i ?? undefined,
    userAgent: f.g ?? undefined,
    policy: f.o,
    dbsc: f.b
  }
}

export class ExpressStoreAdapter implements SessionStore {
  readonly #store: ExpressStoreLike
  readonly #timeout: number
  readonly #clock: () => number
  readonly #maxPerUser: number
  readonly #locks = new Map<string, Promise<unknown>>()
  readonly #ownerKey = new OwnerKey(async () => await this.#readOwnerKey())

  constructor (options: ExpressStoreOptions, context: Pick<StoreContext, 'clock' | 'maxSessionsPerUser'>) {
    optionsObject('storeOptions', options)
    knownKeys(options, ['store', 'timeout'], 'storeOptions.')
    const store = options.store
    if (store === null || typeof store !== 'object' || typeof store.get !== 'function' ||
      typeof store.set !== 'function' || typeof store.destroy !== 'function') {
      throw new FST_SESSION_OPTION_INVALID('storeOptions.store', 'must be a connect-style store with get, set and destroy')
    }
    const timeout = positiveInteger('storeOptions.timeout', options.timeout, DEFAULT_TIMEOUT_MS)
    this.#store = store
    this.#timeout = timeout
    this.#clock = context.clock
    this.#maxPerUser = context.maxSessionsPerUser
  }

  /** Calls a callback-style method, bounded by the timeout. */
  #call<T> (method: 'get' | 'set' | 'destroy' | 'all', ...args: unknown[]): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the ${method} call timed out after ${this.#timeout} ms`)), this.#timeout)
      const done: Callback<T> = (err, value) => {
        clearTimeout(timer)
        if (err !== undefined && err !== null) reject(err)
        else resolve(value as T)
      }
      try {
        (this.#store[method] as (...a: unknown[]) => void).apply(this.#store, [...args, done])
      } catch (err) {
        done(err)
      }
    })
  }

  /** Runs `fn` after every earlier operation on the same id of this process has settled. */
  async #locked<T> (id: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(id)
    const run = (previous === undefined ? fn() : previous.then(fn, fn))
    const settled = run.then(() => {}, () => {})
    this.#locks.set(id, settled)
    settled.then(() => { if (this.#locks.get(id) === settled) this.#locks.delete(id) }, () => {})
    return await run
  }

  /** Read, or created when the store has none; read back after the write, so that two instances racing agree. */
  async #readOwnerKey (): Promise<Uint8Array> {
    const read = async (): Promise<string | undefined> => {
      const value = await this.#call<{ fusOwnerKey?: unknown } | null | undefined>('get', OWNER_KEY_SID).catch((err: unknown) => {
        if ((err as { code?: unknown } | null)?.code !== 'ENOENT') throw err
      })
      return typeof value?.fusOwnerKey === 'string' ? value.fusOwnerKey : undefined
    }
    let key = await read()
    if (key === undefined) {
      await this.#call('set', OWNER_KEY_SID, { cookie: { expires: NEVER, originalMaxAge: null }, fusOwnerKey: newOwnerKey().toString('base64url') })
      key = await read()
    }
    if (key === undefined) throw new Error('the connect store does not keep the owner key')
    return Buffer.from(key, 'base64url')
  }

  async ownerKey (): Promise<Uint8Array> {
    return this.#ownerKey.loaded ?? await this.#ownerKey.get()
  }

  async #live (id: string, now: number): Promise<StoredSession | undefined> {
    let value: unknown
    try {
      value = await this.#call('get', id)
    } catch (err) {
      // As express-session: file-based stores (session-file-store) report a missing session so.
      if ((err as { code?: unknown } | null)?.code !== 'ENOENT') throw err
    }
    const s = fromEnvelope(id, value, await this.ownerKey())
    return s !== undefined && s.expiresAt > now ? s : undefined
  }

  async get (id: string): Promise<StoredSession | undefined> {
    return await this.#live(id, this.#clock())
  }

  async insert (session: StoredSession): Promise<boolean> {
    return await this.#locked(session.id, async () => {
      const now = this.#clock()
      if (await this.#live(session.id, now) !== undefined) return false
      if (session.userId !== undefined && typeof this.#store.all === 'function') await this.#makeRoom(session.userId, now)
      await this.#call('set', session.id, toEnvelope(session, now))
      return true
    })
  }

  async patch (id: string, patch: SessionPatch): Promise<boolean> {
    return await this.#locked(id, async () => {
      const now = this.#clock()
      const s = await this.#live(id, now)
      if (s === undefined || (patch.dbsc !== undefined && s.dbsc !== patch.dbsc.from)) return false
      const data = patch.clear ? {} : s.data
      for (const key of patch.unset) delete data[key]
      Object.assign(data, patch.set)
      const dbsc = patch.dbsc === undefined ? s.dbsc : patch.dbsc.to
      await this.#call('set', id, toEnvelope({ ...s, data, lastSeenAt: patch.lastSeenAt, expiresAt: patch.expiresAt ?? s.expiresAt, dbsc }, now))
      return true
    })
  }

  async delete (id: string): Promise<boolean> {
    return await this.#locked(id, async () => {
      const live = await this.#live(id, this.#clock())
      await this.#call('destroy', id)
      return live !== undefined
    })
  }

  /** Every session the store lists, with its id; O(all sessions). */
  async #all (): Promise<StoredSession[]> {
    if (typeof this.#store.all !== 'function') {
      throw new FST_SESSION_STORE_UNSUPPORTED('listing sessions (the connect store has no all())',
        "per-user operations need a store with all(), or a native store such as 'redis' or 'postgres'")
    }
    const ownerKey = await this.ownerKey()
    const listed = await this.#call<unknown>('all')
    // connect-redis lists an array of sessions carrying their id; MemoryStore an object by id.
    const entries: Array<[string, unknown]> = Array.isArray(listed)
      ? listed.map((s) => [(s as { id?: unknown } | null)?.id as string, s])
      : Object.entries((listed ?? {}) as Record<string, unknown>)
    const sessions: StoredSession[] = []
    for (const [id, value] of entries) {
      const s = typeof id === 'string' ? fromEnvelope(id, value, ownerKey) : undefined
      if (s !== undefined) sessions.push(s)
    }
    return sessions
  }

  /** At the per-user cap, deletes the user's least recently used sessions (O(all sessions), as every per-user operation here). */
  async #makeRoom (userId: string, now: number): Promise<void> {
    const mine = (await this.#all()).filter((s) => s.userId === userId && s.expiresAt > now)
    mine.sort((a, b) => a.lastSeenAt - b.lastSeenAt)
    for (let i = 0; mine.length - i >= this.#maxPerUser; i++) {
      const id = (mine[i] as StoredSession).id
      await this.#call('destroy', id)
    }
  }

  async getAll (userId: string): Promise<StoredSession[]> {
    const now = this.#clock()
    return (await this.#all()).filter((s) => s.userId === userId && s.expiresAt > now)
  }

  async deleteAll (userId: string, except: readonly string[]): Promise<number> {
    const now = this.#clock()
    const mine = (await this.#all()).filter((s) => s.userId === userId && !except.includes(s.id))
    const deleted = await Promise.all(mine.map(async (s) => await this.#locked(s.id, async () => {
      await this.#call('destroy', s.id)
      return s.expiresAt > now
    })))
    return deleted.filter(Boolean).length
  }
}

/**
 * Wraps a connect-style store (`connect-redis`, `connect-pg-simple`, ...) as a session store:
 * `store: fromExpressStore(new RedisStore({ client }))`. Equivalent to
 * `store: 'express', storeOptions: { store }`, which also takes the plugin's clock and `maxSessionsPerUser`.
 */
export function fromExpressStore (store: ExpressStoreLike,
  options: Omit<ExpressStoreOptions, 'store'> & { clock?: () => number, maxSessionsPerUser?: number } = {}): ExpressStoreAdapter {
  return new ExpressStoreAdapter({ store, timeout: options.timeout },
    { clock: options.clock ?? Date.now, maxSessionsPerUser: options.maxSessionsPerUser ?? 100 })
}

export function expressStore (options: ExpressStoreOptions, context: StoreContext): ExpressStoreAdapter {
  return new ExpressStoreAdapter(options, context)
}
