// The Redis client as the stores, the bus and WAIT see it, whatever library the app uses:
// ioredis (and iovalkey, its Valkey fork with the same API) or node-redis (the `redis`
// package). The kind is recognised once, at register(), by what the object is; the adapters
// (ioredis.ts, node-redis.ts) normalise the rest: replies (RESP2 and RESP3), errors, states,
// pipelines on one node, own connections made from the user's client and closed by us.

export type Arg = string | number

/** What the store sees of a connection: usable now, on its way (wait for it), or lost (fail at once). */
export type RedisState = 'ready' | 'connecting' | 'down'

export interface RedisWatcher {
  error: (err: Error & { code?: string }) => void
  lost: () => void
  ready: () => void
}

/** A connection of its own subscribed to one channel (single server or Sentinel). */
export interface ChannelSubscriber {
  close: () => Promise<void>
}

export interface ChannelHandlers {
  message: (text: string) => void
  /** Subscribed (again): what was published before was not heard. */
  subscribed: () => void
  fault: (message: string) => void
}

/** A connection of its own to one Cluster master, for sharded subscriptions. */
export interface NodeSubscriber {
  ssubscribe: (channel: string) => Promise<unknown>
  sunsubscribe: (channel: string) => Promise<unknown>
  disconnect: () => void
}

export interface NodeHandlers {
  message: (text: string) => void
  /** The connection failed, or a channel moved away. */
  lost: (why: string) => void
}

/** A Redis Cluster as the sharded subscriber needs it. */
export interface ClusterView {
  ready: () => boolean
  /** 'host:port' of the master that owns `slot`, as the client's slot map says now. */
  owner: (slot: number) => string | undefined
  /** Refreshes the slot map; `done` in any case. */
  refresh: (done: () => void) => void
  subscriber: (key: string, handlers: NodeHandlers) => NodeSubscriber
}

export interface RedisClient {
  readonly kind: 'ioredis' | 'node-redis'
  readonly cluster: boolean
  /** The client's own key prefix (ioredis `keyPrefix`), which it adds to every key and channel; '' otherwise. */
  readonly keyPrefix: string
  /** The client object itself. */
  readonly raw: object
  state: () => RedisState
  /** Starts connecting a client that waits to be told (ioredis `lazyConnect`). */
  connect: () => void
  watch: (watcher: RedisWatcher) => void
  /** Calls `fn` once, the next time the client is ready; returns how to cancel that. */
  onceReady: (fn: () => void) => () => void
  /** One command; replies as RESP2 gives them (a hash as an object, see `toHash`). */
  send: (args: Arg[]) => Promise<unknown>
  /** One command (keyless, such as ROLE or WAIT) on the connection to the node that owns `key`'s slot: the one `send` uses for that key. */
  onNode: (key: string, args: Arg[]) => Promise<unknown>
  /** A client of its own with the same options (a new connection to the same Redis or Cluster), or this one when the library has no way. */
  duplicate: () => RedisClient
  /** PUBLISH, or SPUBLISH (sharded) on a Cluster. */
  publish: (channel: string, message: string) => Promise<unknown>
  /** A subscriber connection of its own on `channel` (not on a Cluster). */
  subscribe?: (channel: string, handlers: ChannelHandlers) => ChannelSubscriber
  /** The Cluster, for sharded subscriptions (on a Cluster only). */
  view?: () => ClusterView
  /** Closes the connection: QUIT when it can within `timeout`, then gone. For own clients only. */
  close: (timeout: number) => Promise<void>
}

/** The three kinds of client the stores take. */
export const CLIENTS = 'an ioredis or iovalkey client (Redis, Cluster) or a node-redis client (createClient, createCluster, createSentinel)'

export type ClientKind = 'ioredis' | 'node-redis-client' | 'node-redis-cluster' | 'node-redis-sentinel'

function fn (o: object, name: string): boolean {
  return typeof (o as Record<string, unknown>)[name] === 'function'
}

/** What `client` is, by its shape; undefined for anything else. */
export function clientKind (client: unknown): ClientKind | undefined {
  if (client === null || typeof client !== 'object') return undefined
  // ioredis and iovalkey: Commander methods, `pipeline`, a `status` string and `isCluster`.
  if (fn(client, 'evalsha') && fn(client, 'pipeline') && fn(client, 'duplicate') &&
    typeof (client as { isCluster?: unknown }).isCluster === 'boolean') return 'ioredis'
  if (!fn(client, 'sendCommand') || typeof (client as { isOpen?: unknown }).isOpen !== 'boolean') return undefined
  if (fn(client, 'nodeClient') && fn(client, 'getSlotMaster')) return 'node-redis-cluster'
  if (fn(client, 'getMasterNode') && fn(client, 'acquire')) return 'node-redis-sentinel'
  if (fn(client, 'duplicate') && typeof (client as { isReady?: unknown }).isReady === 'boolean') return 'node-redis-client'
  return undefined
}

/** A hash reply as an object: RESP2 gives a flat array (node-redis) or an object (ioredis), RESP3 a Map or an object. */
export function toHash (reply: unknown): Record<string, string> {
  const hash: Record<string, string> = Object.create(null)
  if (Array.isArray(reply)) {
    for (let i = 0; i < reply.length; i += 2) hash[String(reply[i])] = String(reply[i + 1])
  } else if (reply instanceof Map) {
    for (const [k, v] of reply) hash[String(k)] = String(v)
  } else if (reply !== null && typeof reply === 'object') {
    Object.assign(hash, reply)
  }
  return hash
}

/**
 * An ioredis or iovalkey `Redis` or `Cluster`, or a node-redis client, Cluster or Sentinel:
 * recognised at register() by its shape, so that no client library's types are needed here.
 */
export type RedisClientLike = object
