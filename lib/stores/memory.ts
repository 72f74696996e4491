import type { FastifyBaseLogger } from 'fastify'
import { announce } from '../bus/announce.js'
import type { Revocation } from '../bus/bus.js'
import { MemoryBus } from '../bus/memory.js'
import { knownKeys, nonEmptyString, optionsObject, positiveInteger } from '../util/check.js'
import { parseData } from '../util/json.js'
import { newOwnerKey } from '../crypto/ids.js'
import type { SessionPatch, SessionStore, StoreContext, StoredSession } from './store.js'

// The in-memory store, after Plug.Session's ETS store: a named table shared by every
// plugin instance in the process that names it, the last-seen timestamp refreshed on every
// read and write. Unlike ETS it cleans up: expired entries are swept on an unref'd timer, and
// the table is bounded, evicting the least recently used session first.

export interface MemoryStoreOptions {
  /** Name of a table shared by every plugin instance of the process that names it. @default a private table */
  table?: string
  /** Most sessions the table holds; one more evicts the least recently used. @default 100000 */
  maxSessions?: number
  /** Milliseconds between sweeps of expired sessions. @default 60000 */
  sweepInterval?: number
}

export interface MemoryStoreStats {
  sessions: number
  users: number
  evictions: number
}

interface Entry {
  secretHash: string
  userId: string | undefined
  data: string
  createdAt: number
  lastSeenAt: number
  expiresAt: number
  authenticatedAt: number | undefined
  ip: string | undefined
  userAgent: string | undefined
  policy: string | undefined
  dbsc: string | undefined
}

const SWEEP_CHUNK = 10_000
const INTERN_LIMIT = 10_000
const EVICTION_LOG_INTERVAL = 60_000
const LRU_RESOLUTION = 1000
const EMPTY_DATA = '{}'

/**
 * `value`, made a flat string for the garbage collector to keep. An id built by
 * concatenation (`tag + '.' + random`) is a tree of three strings and two cons cells,
 * about 80 bytes more than its flat copy; reading a character flattens it in place, and the
 * collector then keeps only the flat string.
 */
function flat (value: string): string {
  value.charCodeAt(0)
  return value
}

/** The JSON of a session's data; the empty object's is one shared string. */
function stringify (data: Record<string, unknown>): string {
  const json = JSON.stringify(data)
  return json === EMPTY_DATA ? EMPTY_DATA : json
}

class Table {
  readonly sessions = new Map<string, Entry>()
  // A user's session id, or a Set of them when the user has several: most users have one,
  // and a Set costs about 150 bytes.
  readonly users = new Map<string, string | Set<string>>()
  readonly #interned = new Map<string, string>()
  /** The owner key of the table: every store sharing it tags ids alike; it lives as long as the sessions. */
  readonly ownerKey = newOwnerKey()
  evictions = 0
  refs = 0
  #unloggedEvictions = 0
  #lastEvictionLog = -Infinity
  #timer: NodeJS.Timeout
  #sweep: NodeJS.Immediate | undefined
  #bus: MemoryBus | undefined
  readonly maxSessions: number
  readonly #clock: () => number
  readonly #log: FastifyBaseLogger

  constructor (maxSessions: number, sweepInterval: number, context: StoreContext) {
    this.maxSessions = maxSessions
    this.#clock = context.clock
    this.#log = context.log
    this.#timer = setInterval(() => this.sweep(), sweepInterval).unref()
  }

  /** Tells the table's subscribers; nothing to do while nobody made the bus (nobody listens in this process). */
  announce (revocation: Revocation): void {
    if (this.#bus !== undefined) announce(this.#bus, this.#log, revocation)
  }

  /** The table's bus: every store sharing the table shares it. */
  get bus (): MemoryBus {
    this.#bus ??= new MemoryBus(this.#log)
    return this.#bus
  }

  /** One string instance per distinct user agent or address, so that they cost once. */
  intern (value: string | undefined): string | undefined {
    if (value === undefined) return undefined
    const known = this.#interned.get(value)
    if (known !== undefined) return known
    if (this.#interned.size >= INTERN_LIMIT) this.#interned.clear()
    this.#interned.set(value, value)
    return value
  }

  /** The ids of a user's sessions, a copy that removals do not disturb. */
  idsOf (userId: string): string[] {
    const ids = this.users.get(userId)
    if (ids === undefined) return []
    return typeof ids === 'string' ? [ids] : [...ids]
  }

  remove (id: string, entry: Entry): void {
    this.sessions.delete(id)
    const userId = entry.userId
    if (userId === undefined) return
    const ids = this.users.get(userId) as string | Set<string>
    if (typeof ids === 'string') {
      this.users.delete(userId)
      return
    }
    ids.delete(id)
    if (ids.size === 1) this.users.set(userId, ids.values().next().value as string)
  }

  add (id: string, entry: Entry): void {
    this.sessions.set(id, entry)
    const userId = entry.userId
    if (userId === undefined) return
    const ids = this.users.get(userId)
    if (ids === undefined) this.users.set(userId, id)
    else if (typeof ids === 'string') this.users.set(userId, new Set([ids, id]))
    else ids.add(id)
  }

  /** The user id string the table already holds for this user, so that it is kept once. */
  userIdOf (userId: string): string {
    const ids = this.users.get(userId)
    if (ids === undefined) return flat(userId)
    const first = typeof ids === 'string' ? ids : ids.values().next().value as string
    return (this.sessions.get(first) as Entry).userId as string
  }

  evict (id: string, entry: Entry): void {
    this.remove(id, entry)
    this.evictions++
    this.#unloggedEvictions++
    const now = this.#clock()
    this.announce({ ids: [id], userId: entry.userId, reason: 'evicted', at: now })
    if (now - this.#lastEvictionLog >= EVICTION_LOG_INTERVAL) {
      this.#log.warn({ evicted: this.#unloggedEvictions, maxSessions: this.maxSessions },
        'memory session store full: evicted least recently used sessions')
      this.#lastEvictionLog = now
      this.#unloggedEvictions = 0
    }
  }

  /** Removes expired entries, in chunks, so that a large table never blocks the loop for long. */
  sweep (): void {
    if (this.#sweep !== undefined) return
    const now = this.#clock()
    const entries = this.sessions.entries()
    const step = (): void => {
      let n = 0
      for (let next = entries.next(); next.done !== true; next = entries.next()) {
        const [id, entry] = next.value
        if (entry.expiresAt <= now) this.remove(id, entry)
        if (++n === SWEEP_CHUNK) {
          this.#sweep = setImmediate(step).unref()
          return
        }
      }
      this.#sweep = undefined
    }
    step()
  }

  close (): void {
    clearInterval(this.#timer)
    if (this.#sweep !== undefined) clearImmediate(this.#sweep)
    this.#sweep = undefined
    this.sessions.clear()
    this.users.clear()
    this.#interned.clear()
    this.#bus?.close()
  }
}

const namedTables = new Map<string, Table>()

function openTable (options: MemoryStoreOptions, context: StoreContext): { table: Table, name: string | undefined } {
  const name = nonEmptyString('storeOptions.table', options.table)
  const maxSessions = positiveInteger('storeOptions.maxSessions', options.maxSessions, 100_000)
  const sweepInterval = positiveInteger('storeOptions.sweepInterval', options.sweepInterval, 60_000)
  let table = name === undefined ? undefined : namedTables.get(name)
  if (table === undefined) {
    table = new Table(maxSessions, sweepInterval, context)
    if (name !== undefined) namedTables.set(name, table)
  }
  table.refs++
  return { table, name }
}

function toStored (id: string, entry: Entry): StoredSession {
  return {
    id,
    secretHash: entry.secretHash,
    userId: entry.userId,
    data: parseData(entry.data),
    createdAt: entry.createdAt,
    lastSeenAt: entry.lastSeenAt,
    expiresAt: entry.expiresAt,
    authenticatedAt: entry.authenticatedAt,
    ip: entry.ip,
    userAgent: entry.userAgent,
    policy: entry.policy,
    dbsc: entry.dbsc
  }
}

export class MemoryStore implements SessionStore {
  readonly #table: Table
  readonly #name: string | undefined
  readonly #clock: () => number
  readonly #maxPerUser: number
  #closed = false

  constructor (options: MemoryStoreOptions, context: StoreContext) {
    optionsObject('storeOptions', options)
    knownKeys(options, ['table', 'maxSessions', 'sweepInterval'], 'storeOptions.')
    const { table, name } = openTable(options, context)
    this.#table = table
    this.#name = name
    this.#clock = context.clock
    this.#maxPerUser = context.maxSessionsPerUser
  }

  /** A live entry (moved to the most recently used end, to the second), or undefined; expired entries are removed. */
  #live (id: string, now: number): Entry | undefined {
    const table = this.#table
    const entry = table.sessions.get(id)
    if (entry === undefined) return undefined
    if (entry.expiresAt <= now) {
      table.remove(id, entry)
      return undefined
    }
    // The LRU order moves at most once per second of the clock: a Map delete and set on every
    // read of a hot session cost more than the read itself. The order is exact to the second.
    if (Math.floor(now / LRU_RESOLUTION) !== Math.floor(entry.lastSeenAt / LRU_RESOLUTION)) {
      table.sessions.delete(id)
      table.sessions.set(id, entry)
    }
    entry.lastSeenAt = now
    return entry
  }

  /** Random, made with the table: its sessions live no longer than the process. */
  async ownerKey (): Promise<Uint8Array> {
    return this.#table.ownerKey
  }

  async get (id: string): Promise<StoredSession | undefined> {
    const entry = this.#live(id, this.#clock())
    return entry === undefined ? undefined : toStored(id, entry)
  }

  async insert (session: StoredSession): Promise<boolean> {
    const table = this.#table
    const now = this.#clock()
    if (this.#live(session.id, now) !== undefined) return false
    if (session.userId !== undefined) this.#makeRoomForUser(session.userId, now)
    for (const [id, entry] of table.sessions) {
      if (table.sessions.size < table.maxSessions) break
      table.evict(id, entry)
    }
    table.add(flat(session.id), {
      secretHash: session.secretHash,
      userId: session.userId === undefined ? undefined : table.userIdOf(session.userId),
      data: stringify(session.data),
      createdAt: session.createdAt,
      lastSeenAt: session.lastSeenAt,
      expiresAt: session.expiresAt,
      authenticatedAt: session.authenticatedAt,
      ip: table.intern(session.ip),
      userAgent: table.intern(session.userAgent),
      policy: table.intern(session.policy),
      dbsc: session.dbsc
    })
    return true
  }

  /** At the per-user cap, evicts the user's least recently used sessions. */
  #makeRoomForUser (userId: string, now: number): void {
    const table = this.#table
    for (const id of table.idsOf(userId)) {
      const entry = table.sessions.get(id) as Entry
      if (entry.expiresAt <= now) table.remove(id, entry)
    }
    for (let ids = table.idsOf(userId); ids.length >= this.#maxPerUser; ids = table.idsOf(userId)) {
      let oldestId = ''
      let oldest: Entry | undefined
      for (const id of ids) {
        const entry = table.sessions.get(id) as Entry
        if (oldest === undefined || entry.lastSeenAt < oldest.lastSeenAt) {
          oldest = entry
          oldestId = id
        }
      }
      table.evict(oldestId, oldest as Entry)
    }
  }

  async patch (id: string, patch: SessionPatch): Promise<boolean> {
    const entry = this.#live(id, this.#clock())
    if (entry === undefined || (patch.dbsc !== undefined && entry.dbsc !== patch.dbsc.from)) return false
    if (patch.dbsc !== undefined) entry.dbsc = patch.dbsc.to
    const data = patch.clear ? {} : parseData(entry.data)
    for (const key of patch.unset) delete data[key]
    Object.assign(data, patch.set)
    entry.data = stringify(data)
    entry.lastSeenAt = patch.lastSeenAt
    if (patch.expiresAt !== undefined) entry.expiresAt = patch.expiresAt
    return true
  }

  async delete (id: string): Promise<boolean> {
    const entry = this.#table.sessions.get(id)
    if (entry === undefined) return false
    this.#table.remove(id, entry)
    return entry.expiresAt > this.#clock()
  }

  async getAll (userId: string): Promise<StoredSession[]> {
    const table = this.#table
    const now = this.#clock()
    const sessions: StoredSession[] = []
    for (const id of table.idsOf(userId)) {
      const entry = table.sessions.get(id) as Entry
      if (entry.expiresAt <= now) table.remove(id, entry)
      else sessions.push(toStored(id, entry))
    }
    return sessions
  }

  async deleteAll (userId: string, except: readonly string[]): Promise<number> {
    const table = this.#table
    const now = this.#clock()
    const deleted: string[] = []
    for (const id of table.idsOf(userId)) {
      if (except.includes(id)) continue
      const entry = table.sessions.get(id) as Entry
      table.remove(id, entry)
      if (entry.expiresAt > now) deleted.push(id)
    }
    if (deleted.length > 0) table.announce({ ids: deleted, userId, except, reason: 'deleteAll', at: now })
    return deleted.length
  }

  /** In-process: every plugin instance sharing the table hears the others. */
  get bus (): MemoryBus {
    return this.#table.bus
  }

  /** Counts for monitoring: live and not yet swept sessions, users indexed, evictions so far. */
  stats (): MemoryStoreStats {
    const table = this.#table
    return { sessions: table.sessions.size, users: table.users.size, evictions: table.evictions }
  }

  /** Sweeps expired sessions now, rather than on the next tick of the timer. */
  sweep (): void {
    this.#table.sweep()
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    const table = this.#table
    if (--table.refs > 0) return
    table.close()
    if (this.#name !== undefined) namedTables.delete(this.#name)
  }
}

export function memoryStore (options: MemoryStoreOptions, context: StoreContext): MemoryStore {
  return new MemoryStore(options, context)
}
