import type { FastifyBaseLogger } from 'fastify'
import { DEFAULT_TIMEOUT_MS } from '../util/check.js'
import { adapt, RedisConnection } from '../redis/connection.js'
import type { ChannelSubscriber, ClusterView, RedisClient, RedisClientLike } from '../redis/client.js'
import type { BusSubscriber, Revocation, RevocationBus, Unsubscribe } from './bus.js'
import { encode, fitted, MAX_MESSAGE_BYTES, revocationKey, sessionKey } from './codec.js'
import { ShardedSubscription } from './redis-sharded.js'
import { noop, Subscribers } from './subscribers.js'

// The Redis bus. On a single server (or Sentinel), one channel, `<prefix>revoked`: PUBLISH on
// the store's client, SUBSCRIBE on one connection duplicated from it when the first subscriber
// comes. On a Cluster, sharded pub/sub (Redis 7): one channel per user, `<prefix>r:{<tag>}` (the user's tag, see
// lib/crypto/ids.ts),
// on the slot of that user's keys, so that a message stays on its user's shard; see
// redis-sharded.ts for the subscriber.

export interface RedisBusOptions {
  /** The store's client (ioredis, iovalkey or node-redis); publishes go through it, the subscriber is duplicated from it. Never closed by the bus. */
  client: RedisClientLike
  /** The store's key prefix. */
  prefix: string
  log: FastifyBaseLogger
  /** Milliseconds a publish may wait for Redis. @default 2000 */
  timeout?: number
  /** Largest message; a larger revocation is sent user-wide (see `fitted`). @default 7999 */
  maxBytes?: number
  /** The user's tag, for the channel of a revocation that lists no id (on a Cluster); from the store's owner key. */
  tag?: (userId: string) => Promise<string>
}

export class RedisBus implements RevocationBus {
  readonly #redis: RedisConnection
  readonly #prefix: string
  readonly #log: FastifyBaseLogger
  readonly #timeout: number
  readonly #maxBytes: number
  readonly #sharded: boolean
  readonly #tag: ((userId: string) => Promise<string>) | undefined
  readonly #subscribers: Subscribers
  /** Followers per sharded channel, kept while nobody subscribes too. */
  readonly #follows = new Map<string, number>()
  #subscription: ChannelSubscription | ShardedSubscription | undefined
  #closing: Promise<void> | undefined

  constructor (options: RedisBusOptions) {
    this.#prefix = options.prefix
    this.#log = options.log
    this.#timeout = options.timeout ?? DEFAULT_TIMEOUT_MS
    this.#maxBytes = options.maxBytes ?? MAX_MESSAGE_BYTES
    const client = adapt(options.client)
    this.#sharded = client.cluster
    this.#redis = new RedisConnection(client, this.#timeout, options.log, false)
    this.#tag = options.tag
    this.#subscribers = new Subscribers('redis revocation bus', options.log, () => this.#open(), () => { this.#shut().catch(noop) })
  }

  /** The channel of the sessions of one routing key: their user's, or one anonymous id's. */
  #channel (key: string): string {
    return this.#sharded ? `${this.#prefix}r:{${key}}` : `${this.#prefix}revoked`
  }

  async publish (revocation: Revocation): Promise<void> {
    const userId = revocation.userId
    const key = revocationKey(revocation) ?? (userId === undefined ? undefined : this.#sharded ? await this.#tag?.(userId) : '')
    if (key === undefined) return
    const message = encode(fitted(revocation, this.#maxBytes))
    const channel = this.#channel(key)
    await this.#redis.call(() => this.#redis.redis.publish(channel, message))
  }

  subscribe (subscriber: BusSubscriber): Unsubscribe {
    return this.#subscribers.add(subscriber)
  }

  follow (id: string): Unsubscribe {
    if (!this.#sharded) return noop
    const channel = this.#channel(sessionKey(id))
    const count = this.#follows.get(channel) ?? 0
    this.#follows.set(channel, count + 1)
    if (count === 0) (this.#subscription as ShardedSubscription | undefined)?.follow(channel)
    let followed = true
    return () => {
      if (!followed) return
      followed = false
      const left = (this.#follows.get(channel) as number) - 1
      if (left > 0) {
        this.#follows.set(channel, left)
        return
      }
      this.#follows.delete(channel)
      const subscription = this.#subscription as ShardedSubscription | undefined
      subscription?.unfollow(channel)
    }
  }

  #open (): void {
    if (this.#closing !== undefined) return
    const deliver = (text: string): void => this.#subscribers.message(text)
    const resync = (keys?: readonly string[]): void => this.#subscribers.resync(keys)
    const client = this.#redis.redis
    this.#subscription = this.#sharded
      ? new ShardedSubscription((client.view as () => ClusterView)(), [...this.#follows.keys()], deliver, resync, this.#log, this.#timeout)
      : new ChannelSubscription(client, this.#channel(''), deliver, resync, this.#log)
  }

  #shut (): Promise<void> {
    const subscription = this.#subscription
    this.#subscription = undefined
    return subscription === undefined ? Promise.resolve() : subscription.close()
  }

  async close (): Promise<void> {
    this.#closing ??= (async () => {
      this.#subscribers.clear()
      this.#follows.clear()
      await Promise.all([this.#shut(), this.#redis.close()])
    })()
    await this.#closing
  }
}

/**
 * The subscriber of a single server: one connection of its own, made from the store's client,
 * on one channel; `resync` runs each time the channel is heard again, never before.
 */
class ChannelSubscription {
  readonly #sub: ChannelSubscriber
  readonly #log: FastifyBaseLogger
  #failing = false
  #closed = false

  constructor (client: RedisClient, channel: string, deliver: (text: string) => void, resync: () => void,
    log: FastifyBaseLogger) {
    this.#log = log
    this.#sub = (client.subscribe as NonNullable<RedisClient['subscribe']>)(channel, {
      message: deliver,
      subscribed: () => {
        if (this.#failing) log.info('redis revocation bus: subscription restored')
        this.#failing = false
        resync()
      },
      fault: (message) => this.#fault(message)
    })
  }

  /** One warning per outage. */
  #fault (message: string): void {
    if (this.#failing || this.#closed) return
    this.#failing = true
    this.#log.warn({ err: { message } }, 'redis revocation bus: subscriber connection error')
  }

  async close (): Promise<void> {
    this.#closed = true
    await this.#sub.close()
  }
}
