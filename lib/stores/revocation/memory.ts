import type { FastifyBaseLogger } from 'fastify'
import { MemoryBus } from '../../bus/memory.js'
import { knownKeys, positiveInteger } from '../../util/check.js'
import { FST_SESSION_OPTION_INVALID } from '../../errors.js'
import { createHmac } from 'node:crypto'
import { newOwnerKey } from '../../crypto/ids.js'
import { assertRevocation } from '../registry.js'
import { RedisRevocation, type RedisRevocationOptions } from './redis.js'
import type { RevocationStore, StoreContext } from '../store.js'

// The revocation stores of the cookie store: what a stateless session needs to remember on
// the server so that logging out means something (CVE-2024-31999). Per user, a generation
// and the ids kept by the last `deleteAll`; per revoked session, its id until its absolute
// deadline. Entries expire on their own: nothing outlives the sessions it revokes.

export interface MemoryRevocationOptions {
  type: 'memory'
  /**
   * Most entries (revoked ids plus users whose sessions were all revoked) held; past it, the
   * oldest entry is dropped, with a warning, and what it revoked works again until its
   * deadline. @default 1000000
   */
  maxEntries?: number
  /** Milliseconds between sweeps of expired entries. @default 60000 */
  sweepInterval?: number
}

/** `storeOptions.revocation` of the cookie store. */
export type RevocationOption = 'memory' | MemoryRevocationOptions | RedisRevocationOptions | RevocationStore

interface UserEntry {
  generation: number
  keep: ReadonlySet<string>
  until: number
}

const WARN_INTERVAL = 60_000

/** In-process revocation: for a single process; forgotten on restart (use Redis to share and keep it). */
export class MemoryRevocation implements RevocationStore {
  readonly #denied = new Map<string, number>()
  readonly #users = new Map<string, UserEntry>()
  readonly #clock: () => number
  readonly #log: FastifyBaseLogger
  readonly #maxEntries: number
  readonly #timer: NodeJS.Timeout
  #dropped = 0
  #lastWarning = -Infinity
  #bus: MemoryBus | undefined
  readonly #ownerKey: Buffer

  constructor (options: MemoryRevocationOptions, context: StoreContext) {
    const o = options as unknown as Record<string, unknown>
    knownKeys(o, ['type', 'maxEntries', 'sweepInterval'], 'storeOptions.revocation.')
    this.#maxEntries = positiveInteger('storeOptions.revocation.maxEntries', o.maxEntries, 1_000_000)
    const sweepInterval = positiveInteger('storeOptions.revocation.sweepInterval', o.sweepInterval, 60_000)
    this.#clock = context.clock
    this.#log = context.log
    this.#timer = setInterval(() => this.sweep(), sweepInterval).unref()
    // Sealed sessions outlive a restart, which this store does not: its owner key comes from the
    // oldest of the plugin's secrets, the same in every process and after a restart.
    const oldest = context.secrets?.at(-1)
    this.#ownerKey = oldest === undefined ? newOwnerKey() : createHmac('sha256', oldest).update('fastify-user-sessions owner key').digest()
  }

  async ownerKey (): Promise<Uint8Array> {
    return this.#ownerKey
  }

  #user (userId: string, now: number): UserEntry | undefined {
    const entry = this.#users.get(userId)
    return entry === undefined || entry.until <= now ? undefined : entry
  }

  /** In-process: the plugin instance using this store hears its own revocations. */
  get bus (): MemoryBus {
    this.#bus ??= new MemoryBus(this.#log)
    return this.#bus
  }

  async isRevoked (id: string, userId: string | undefined, generation: number): Promise<boolean> {
    const now = this.#clock()
    const until = this.#denied.get(id)
    if (until !== undefined && until > now) return true
    if (userId === undefined) return false
    const user = this.#user(userId, now)
    return user !== undefined && generation < user.generation && !user.keep.has(id)
  }

  async generation (userId: string): Promise<number> {
    return this.#user(userId, this.#clock())?.generation ?? 0
  }

  async revoke (id: string, until: number): Promise<boolean> {
    const now = this.#clock()
    const current = this.#denied.get(id)
    if (until <= now || (current !== undefined && current > now)) return false
    this.#denied.delete(id)
    this.#makeRoom(now)
    this.#denied.set(id, until)
    return true
  }

  async revokeAll (userId: string, except: readonly string[], until: number): Promise<void> {
    const now = this.#clock()
    const previous = this.#user(userId, now)?.generation ?? 0
    this.#users.delete(userId)
    this.#makeRoom(now)
    // Above every generation handed out before, even one whose entry expired meanwhile.
    this.#users.set(userId, { generation: Math.max(previous + 1, now), keep: new Set(except), until })
  }

  /** Counts for monitoring. */
  stats (): { denied: number, users: number, dropped: number } {
    return { denied: this.#denied.size, users: this.#users.size, dropped: this.#dropped }
  }

  #makeRoom (now: number): void {
    if (this.#denied.size + this.#users.size < this.#maxEntries) return
    this.sweep()
    let dropped = 0
    while (this.#denied.size + this.#users.size >= this.#maxEntries) {
      const map: Map<string, unknown> = this.#denied.size > 0 ? this.#denied : this.#users
      map.delete(map.keys().next().value as string)
      dropped++
    }
    this.#dropped += dropped
    if (dropped > 0 && now - this.#lastWarning >= WARN_INTERVAL) {
      this.#lastWarning = now
      this.#log.warn({ maxEntries: this.#maxEntries, dropped: this.#dropped }, 'memory revocation store full: dropped the oldest entries')
    }
  }

  /** Removes expired entries now. */
  sweep (): void {
    const now = this.#clock()
    for (const [id, until] of this.#denied) if (until <= now) this.#denied.delete(id)
    for (const [userId, entry] of this.#users) if (entry.until <= now) this.#users.delete(userId)
  }

  async close (): Promise<void> {
    clearInterval(this.#timer)
    await this.#bus?.close()
    this.#denied.clear()
    this.#users.clear()
  }
}

/** Builds the revocation store that `storeOptions.revocation` names, once, at register(). */
export function resolveRevocation (option: unknown, context: StoreContext): RevocationStore | undefined {
  if (option === undefined) return undefined
  if (option === 'memory') return new MemoryRevocation({ type: 'memory' }, context)
  if (option !== null && typeof option === 'object') {
    const type = (option as { type?: unknown }).type
    if (type === 'memory') return new MemoryRevocation(option as MemoryRevocationOptions, context)
    if (type === 'redis') return new RedisRevocation(option as RedisRevocationOptions, context)
    if (type === undefined) return assertRevocation(option, 'storeOptions.revocation')
  }
  throw new FST_SESSION_OPTION_INVALID('storeOptions.revocation',
    "must be 'memory', { type: 'memory' }, { type: 'redis', client or url } or a revocation store object")
}
