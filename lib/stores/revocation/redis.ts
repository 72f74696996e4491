import { RedisBus } from '../../bus/redis.js'
import { redisOptions } from '../../redis/options.js'
import { tagOf, userTag } from '../../crypto/ids.js'
import type { OwnerKey } from '../../crypto/owner-key.js'
import { redisOwnerKey } from '../../redis/owner-key.js'
import { connection, type RedisConnection } from '../../redis/connection.js'
import type { RedisClientLike } from '../../redis/client.js'
import { revocationWrites, type RevocationWrites } from '../../redis/replicated.js'
import { script } from '../../redis/script.js'
import type { RevocationStore, StoreContext } from '../store.js'

// Revocation in Redis, for the cookie store. Keys carry the hash tag of their user, so the
// check of a user's session reads its two keys in one script on one slot, on a single Redis
// as on a Cluster:
//
//   <prefix>rg:{<tag>}           hash: g = generation, k:<id> = 1 for each id kept; PEXPIREAT
//   <prefix>rd:{<tag>}.<random>  a revoked session id of that user; PXAT its absolute deadline
//   <prefix>rd:{<id>}            a revoked anonymous session id
//   <prefix>owner-key            the owner key the ids are tagged with (lib/redis/owner-key.ts)
//
// `<tag>` is the user's tag under the owner key, as a user's session id starts with it.
//
// One round trip per request that carries a cookie: EVALSHA for a user's session, EXISTS for
// an anonymous one. Calls go through the Redis store's RedisConnection: bounded in time, failing
// at once while the connection is down (503), our own client closed with the app.

export interface RedisRevocationOptions {
  type: 'redis'
  /** The app's Redis client (ioredis, iovalkey or node-redis, as the Redis store's); never closed by the store. Give either `client` or `url`. */
  client?: RedisClientLike
  /** A Redis URL; the store makes its own client and closes it with the app. */
  url?: string
  /** Prepended to every key; must not hold `{` or `}`. @default 'sess:' */
  prefix?: string
  /** Milliseconds a call may wait for Redis (or for the connection) before it fails with a 503. @default 2000 */
  timeout?: number
  /** Replicas that must acknowledge each revocation (`WAIT`), as the Redis store's option. @default 0 */
  waitForReplicas?: number
}

// KEYS: user hash, deny key. ARGV: 'k:' .. id, the session's generation.
const IS_REVOKED = script(`
if redis.call('EXISTS', KEYS[2]) == 1 then return 1 end
local user = redis.call('HMGET', KEYS[1], 'g', ARGV[1])
if user[1] and tonumber(user[1]) > tonumber(ARGV[2]) and not user[2] then return 1 end
return 0`)

// KEYS: user hash. ARGV: now, until, kept ids...
const REVOKE_ALL = script(`
local g = tonumber(redis.call('HGET', KEYS[1], 'g') or '0') + 1
if tonumber(ARGV[1]) > g then g = tonumber(ARGV[1]) end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'g', string.format('%d', g))
for i = 3, #ARGV do redis.call('HSET', KEYS[1], 'k:' .. ARGV[i], '1') end
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1`)

const OPTION_KEYS = ['type', 'client', 'url', 'prefix', 'timeout', 'waitForReplicas']

export class RedisRevocation implements RevocationStore {
  readonly #redis: RedisConnection
  readonly #revocations: RevocationWrites
  readonly #prefix: string
  readonly #clock: () => number
  readonly #timeout: number
  readonly #log: StoreContext['log']
  readonly #ownerKey: OwnerKey
  #bus: RedisBus | undefined

  constructor (options: RedisRevocationOptions, context: StoreContext) {
    const { prefix, timeout, waitForReplicas } = redisOptions('storeOptions.revocation.', options, OPTION_KEYS)
    this.#prefix = prefix
    this.#clock = context.clock
    this.#timeout = timeout
    this.#log = context.log
    this.#redis = connection(options.client, options.url, timeout, context.log)
    this.#revocations = revocationWrites(this.#redis, waitForReplicas, timeout)
    this.#ownerKey = redisOwnerKey(this.#redis, this.#prefix)
  }

  /** Read (or created) once, then held. */
  async ownerKey (): Promise<Uint8Array> {
    return this.#ownerKey.loaded ?? await this.#ownerKey.get()
  }

  async #tag (userId: string): Promise<string> {
    return userTag(this.#ownerKey.loaded ?? await this.#ownerKey.get(), userId)
  }

  /** Once, at the app's ready(): an unreachable Redis is one warning line. */
  async ready (): Promise<void> {
    await this.#redis.ready('redis revocation store')
  }

  /** Redis pub/sub on the store's client (sharded on a Cluster); made on first use. */
  get bus (): RedisBus {
    this.#bus ??= new RedisBus({ client: this.#redis.client, prefix: this.#prefix, timeout: this.#timeout, log: this.#log, tag: async (userId) => await this.#tag(userId) })
    return this.#bus
  }

  #userKey (tag: string): string {
    return `${this.#prefix}rg:{${tag}}`
  }

  #denyKey (id: string): string {
    const tag = tagOf(id)
    return tag === undefined ? `${this.#prefix}rd:{${id}}` : `${this.#prefix}rd:{${tag}}${id.slice(tag.length)}`
  }

  async isRevoked (id: string, userId: string | undefined, generation: number): Promise<boolean> {
    const redis = this.#redis
    if (userId === undefined) return await redis.call(() => redis.send(['exists', this.#denyKey(id)])) === 1
    // The id of a user's session carries the user's tag (the plugin checked it): no hash to compute.
    return await redis.run(IS_REVOKED, [this.#userKey(tagOf(id) as string), this.#denyKey(id)], ['k:' + id, generation]) === 1
  }

  async generation (userId: string): Promise<number> {
    const redis = this.#redis
    const key = this.#userKey(await this.#tag(userId))
    const value = await redis.call(() => redis.send(['hget', key, 'g']))
    return value == null ? 0 : Number(value)
  }

  async revoke (id: string, until: number): Promise<boolean> {
    if (until <= this.#clock()) return false
    const set = (reply: unknown): boolean => reply === 'OK'
    return set(await this.#revocations.command(['set', this.#denyKey(id), '1', 'PXAT', until, 'NX'], set))
  }

  async revokeAll (userId: string, except: readonly string[], until: number): Promise<void> {
    await this.#revocations.run(REVOKE_ALL, [this.#userKey(await this.#tag(userId))], [this.#clock(), until, ...except])
  }

  async close (): Promise<void> {
    await this.#bus?.close()
    await Promise.all([this.#redis.close(), this.#revocations.close()])
  }
}
