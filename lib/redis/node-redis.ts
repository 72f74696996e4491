import type { EventEmitter } from 'node:events'
import type { Arg, ChannelHandlers, ChannelSubscriber, ClientKind, ClusterView, NodeHandlers, NodeSubscriber, RedisClient, RedisState, RedisWatcher } from './client.js'

// node-redis (the `redis` package) 5 and 6: a client (`createClient`), a Cluster
// (`createCluster`) and a Sentinel (`createSentinel`), RESP2 or RESP3. No import of the
// package: everything comes from the user's object. node-redis writes the commands of one turn
// of the event loop together already, so `send` sends each at once.

const noop = (): void => {}
/** The name subscriber connections give themselves (CLIENT SETNAME), as ioredis's `connectionName`. */
const SUBSCRIBER = 'fastify-user-sessions:revoked'

/** The parts of a node-redis client we use. */
interface NodeRedis extends EventEmitter {
  isOpen: boolean
  isReady: boolean
  options?: { socket?: object }
  connect: () => Promise<unknown>
  sendCommand: (args: string[]) => Promise<unknown>
  duplicate: (overrides?: object) => NodeRedis
  subscribe: (channel: string, listener: (message: string) => void) => Promise<unknown>
  sSubscribe: (channel: string, listener: (message: string) => void) => Promise<unknown>
  sUnsubscribe: (channel: string) => Promise<unknown>
  close: () => Promise<unknown>
  destroy: () => void
}

interface Shard { host: string, port: number, address: string, client?: NodeRedis }

interface NodeRedisCluster extends EventEmitter {
  isOpen: boolean
  sendCommand: (firstKey: string | undefined, isReadonly: boolean, args: string[]) => Promise<unknown>
  duplicate: () => NodeRedisCluster
  connect: () => Promise<unknown>
  slots: Array<{ master: Shard } | undefined>
  masters: Shard[]
  nodeByAddress: Map<string, Shard>
  nodeClient: (node: Shard) => Promise<NodeRedis>
  close: () => Promise<unknown>
  destroy: () => void
  _slots: unknown
}

interface NodeRedisSentinel extends EventEmitter {
  isOpen: boolean
  isReady: boolean
  sendCommand: (isReadonly: boolean, args: string[]) => Promise<unknown>
  subscribe: (channel: string, listener: (message: string) => void) => Promise<unknown>
  unsubscribe: (channel: string) => Promise<unknown>
  close: () => Promise<unknown>
  destroy: () => void
}

function strings (args: Arg[]): string[] {
  return args.map(String)
}

/** The key a command routes by: EVAL/EVALSHA's first key (every script of ours has one), otherwise its first argument. */
function firstKey (args: Arg[]): string | undefined {
  const command = String(args[0]).toLowerCase()
  return command === 'eval' || command === 'evalsha' ? String(args[3]) : args[1] === undefined ? undefined : String(args[1])
}

/** Bounded close: a clean QUIT when it answers in time, then the socket is gone (if it is not already). */
async function closeWithin (client: { close: () => Promise<unknown>, destroy: () => void }, timeout: number): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, timeout).unref()
    client.close().catch(noop).finally(() => {
      clearTimeout(timer)
      resolve()
    })
  })
  try {
    client.destroy()
  } catch {} // closed already
}

/** A node-redis client of our own, made from `from` and connecting. */
function own (from: NodeRedis, overrides: object = {}): NodeRedis {
  const client = from.duplicate(overrides)
  // Watched by its owner (RedisConnection, a subscriber): an error event never goes unheard.
  client.on('error', noop)
  client.connect().catch(noop)
  return client
}

/** A client or a Sentinel: ready, connecting for the first time, or lost. */
abstract class Tracked<C extends EventEmitter & { isOpen: boolean, isReady: boolean, close: () => Promise<unknown>, destroy: () => void }> {
  readonly kind = 'node-redis'
  readonly keyPrefix = ''
  readonly cluster = false
  readonly raw: C
  /** Once ready, a connection that is not is lost (fail at once), not on its way. */
  #wasReady: boolean

  constructor (client: C) {
    this.raw = client
    this.#wasReady = client.isReady
    client.on('ready', () => { this.#wasReady = true })
  }

  state (): RedisState {
    const client = this.raw
    return client.isReady ? 'ready' : client.isOpen && !this.#wasReady ? 'connecting' : 'down'
  }

  connect (): void {}

  onceReady (fn: () => void): () => void {
    this.raw.once('ready', fn)
    return () => { this.raw.off('ready', fn) }
  }

  watch (watcher: RedisWatcher): void {
    this.raw.on('error', watcher.error)
    this.raw.on('reconnecting', watcher.lost)
    this.raw.on('ready', watcher.ready)
  }

  close (timeout: number): Promise<void> {
    return closeWithin(this.raw, timeout)
  }
}

/** A single server's client (`createClient`). */
class SingleClient extends Tracked<NodeRedis> implements RedisClient {
  send (args: Arg[]): Promise<unknown> {
    return this.raw.sendCommand(strings(args))
  }

  onNode (_key: string, args: Arg[]): Promise<unknown> {
    return this.send(args)
  }

  duplicate (): RedisClient {
    return new SingleClient(own(this.raw))
  }

  publish (channel: string, message: string): Promise<unknown> {
    return this.raw.sendCommand(['PUBLISH', channel, message])
  }

  /** node-redis reconnects the subscriber and subscribes again before it is 'ready' again. */
  subscribe (channel: string, handlers: ChannelHandlers): ChannelSubscriber {
    const sub = own(this.raw, { name: SUBSCRIBER })
    let lost = false
    const fault = (message: string): void => {
      lost = true
      handlers.fault(message)
    }
    sub.on('error', (err: Error) => fault(err.message))
    sub.on('reconnecting', () => fault('connection lost'))
    sub.on('ready', () => {
      if (!lost) return
      lost = false
      handlers.subscribed()
    })
    sub.subscribe(channel, handlers.message).then(handlers.subscribed, (err: Error) => handlers.fault(err.message))
    return { close: () => closeWithin(sub, 2000) }
  }
}

/** A Cluster (`createCluster`): each command goes to the master of its first key's slot. */
class ClusterClient implements RedisClient {
  readonly kind = 'node-redis'
  readonly keyPrefix = ''
  readonly cluster = true
  readonly raw: NodeRedisCluster

  constructor (cluster: NodeRedisCluster) {
    this.raw = cluster
  }

  /** Open, and its slot map known (a Cluster that is connecting has none yet, and its commands throw). */
  state (): RedisState {
    const cluster = this.raw
    return !cluster.isOpen ? 'down' : cluster.masters.length === 0 ? 'connecting' : 'ready'
  }

  connect (): void {}

  /** 'connect': the slot map is known. */
  onceReady (fn: () => void): () => void {
    this.raw.once('connect', fn)
    return () => { this.raw.off('connect', fn) }
  }

  watch (watcher: RedisWatcher): void {
    this.raw.on('node-error', watcher.error)
    this.raw.on('node-reconnecting', watcher.lost)
    this.raw.on('node-ready', watcher.ready)
  }

  send (args: Arg[]): Promise<unknown> {
    return this.raw.sendCommand(firstKey(args), false, strings(args))
  }

  onNode (key: string, args: Arg[]): Promise<unknown> {
    return this.raw.sendCommand(key, false, strings(args))
  }

  duplicate (): RedisClient {
    const copy = this.raw.duplicate()
    copy.on('error', noop)
    copy.connect().catch(noop)
    return new ClusterClient(copy)
  }

  publish (channel: string, message: string): Promise<unknown> {
    return this.raw.sendCommand(channel, false, ['SPUBLISH', channel, message])
  }

  view (): ClusterView {
    const cluster = this.raw
    return {
      ready: () => cluster.isOpen,
      owner: (slot) => cluster.slots[slot]?.master.address,
      // node-redis refreshes its slot map on a MOVED reply; a lost node tells it nothing, so ask,
      // starting from a master it knows (an error, if there is none, ends the refresh all the same).
      refresh: (done) => {
        (cluster._slots as { rediscover: (client: NodeRedis | undefined) => Promise<unknown> })
          .rediscover(cluster.masters[0]?.client).then(done, done)
      },
      subscriber: (key, handlers) => nodeRedisNode(cluster, key, handlers)
    }
  }

  close (timeout: number): Promise<void> {
    return closeWithin(this.raw, timeout)
  }
}

/** A connection of its own to the master `key` ('host:port'), with the Cluster's options for its nodes; never retried. */
function nodeRedisNode (cluster: NodeRedisCluster, key: string, handlers: NodeHandlers): NodeSubscriber {
  // A node the slot map named: the Cluster knows it (a rejection, if it does not, is a loss like any other).
  const connection = Promise.resolve().then(() => cluster.nodeClient(cluster.nodeByAddress.get(key) as Shard)).then((base) => {
    const sub = own(base, { name: SUBSCRIBER, socket: { ...base.options?.socket, reconnectStrategy: false } })
    sub.on('error', (err: Error) => handlers.lost(err.message))
    sub.on('end', () => handlers.lost('connection lost'))
    // The server unsubscribed us from the channels of a slot it no longer owns.
    sub.on('sharded-channel-moved', () => handlers.lost('a channel moved to another node'))
    return sub
  })
  connection.catch(noop)
  return {
    ssubscribe: async (channel) => await (await connection).sSubscribe(channel, handlers.message),
    sunsubscribe: async (channel) => await (await connection).sUnsubscribe(channel),
    disconnect: () => { connection.then((sub) => closeWithin(sub, 0), noop) }
  }
}

/**
 * A Sentinel (`createSentinel`): node-redis follows the master itself, and its pub/sub proxy
 * subscribes on a connection of its own. It has no way to make a copy: `duplicate` returns
 * this client, and WAIT holds its connection while it waits.
 */
class SentinelClient extends Tracked<NodeRedisSentinel> implements RedisClient {
  send (args: Arg[]): Promise<unknown> {
    return this.raw.sendCommand(false, strings(args))
  }

  onNode (_key: string, args: Arg[]): Promise<unknown> {
    return this.send(args)
  }

  duplicate (): RedisClient {
    return this
  }

  publish (channel: string, message: string): Promise<unknown> {
    return this.raw.sendCommand(false, ['PUBLISH', channel, message])
  }

  subscribe (channel: string, handlers: ChannelHandlers): ChannelSubscriber {
    this.raw.subscribe(channel, handlers.message).then(handlers.subscribed, (err: Error) => handlers.fault(err.message))
    return { close: async () => { await this.raw.unsubscribe(channel).catch(noop) } }
  }
}

export function nodeRedisClient (client: object, kind: Exclude<ClientKind, 'ioredis'>): RedisClient {
  if (kind === 'node-redis-cluster') return new ClusterClient(client as NodeRedisCluster)
  if (kind === 'node-redis-sentinel') return new SentinelClient(client as NodeRedisSentinel)
  return new SingleClient(client as NodeRedis)
}
