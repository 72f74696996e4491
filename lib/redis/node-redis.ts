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

interface Shard { host: string, port: number, client?: NodeRedis }

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
  _slots?: { rediscover?: (client: NodeRedis) => Promise<unknown> }
}

interface NodeRedisSentinel extends EventEmitter {
  isOpen: boolean
  isReady: boolean
  sendCommand: (isReadonly: boolean, args: string[]) => Promise<unknown>
  subscribe: (channel: string, listener: (message: string) => void) => Promise<unknown>
  unsubscribe: (channel: string) => Promise<unknown>
}

function strings (args: Arg[]): string[] {
  return args.map(String)
}

/** The key a command routes by: EVAL/EVALSHA's first key, otherwise its first argument. */
function firstKey (args: Arg[]): string | undefined {
  const command = String(args[0]).toLowerCase()
  if (command === 'eval' || command === 'evalsha') return Number(args[2]) > 0 ? String(args[3]) : undefined
  return args[1] === undefined ? undefined : String(args[1])
}

/** Bounded close: a clean QUIT when it answers in time, then the socket is gone. */
async function closeWithin (client: { close: () => Promise<unknown>, destroy: () => void, isOpen: boolean }, timeout: number): Promise<void> {
  if (client.isOpen) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeout).unref()
      client.close().catch(noop).finally(() => {
        clearTimeout(timer)
        resolve()
      })
    })
  }
  if (client.isOpen) client.destroy()
}

/** A node-redis client of our own, made from `from` and connecting. */
function own (from: NodeRedis, overrides: object = {}): NodeRedis {
  const client = from.duplicate(overrides)
  // Watched by its owner (RedisConnection, a subscriber): an error event never goes unheard.
  client.on('error', noop)
  client.connect().catch(noop)
  return client
}

abstract class NodeRedisBase {
  readonly kind = 'node-redis'
  readonly keyPrefix = ''
  abstract readonly raw: EventEmitter & { isOpen: boolean }

  connect (): void {}

  onceReady (fn: () => void): () => void {
    this.raw.once('ready', fn)
    return () => { this.raw.off('ready', fn) }
  }

  view (): ClusterView {
    throw new Error('not a Cluster')
  }
}

/** A single server's client (`createClient`). */
class SingleClient extends NodeRedisBase implements RedisClient {
  readonly cluster = false
  readonly raw: NodeRedis
  /** Once ready, a connection that is not is lost (fail at once), not on its way. */
  #wasReady: boolean

  constructor (client: NodeRedis) {
    super()
    this.raw = client
    this.#wasReady = client.isReady
    client.on('ready', () => { this.#wasReady = true })
  }

  state (): RedisState {
    const client = this.raw
    return client.isReady ? 'ready' : client.isOpen && !this.#wasReady ? 'connecting' : 'down'
  }

  watch (watcher: RedisWatcher): void {
    this.raw.on('error', watcher.error)
    this.raw.on('reconnecting', watcher.lost)
    this.raw.on('ready', watcher.ready)
  }

  send (args: Arg[]): Promise<unknown> {
    return this.raw.sendCommand(strings(args))
  }

  onNodeOf (_key: string, commands: Arg[][]): Promise<unknown[]> {
    return Promise.all(commands.map((command) => this.raw.sendCommand(strings(command)).catch((err: Error) => err)))
  }

  duplicate (): RedisClient {
    return new SingleClient(own(this.raw))
  }

  publish (channel: string, message: string): Promise<unknown> {
    return this.raw.sendCommand(['PUBLISH', channel, message])
  }

  /** node-redis reconnects the subscriber and subscribes again before it is 'ready'. */
  subscribe (channel: string, handlers: ChannelHandlers): ChannelSubscriber {
    let closed = false
    const sub = own(this.raw, { name: SUBSCRIBER })
    // After a loss, node-redis subscribes again before it is 'ready' again.
    let lost = false
    const fault = (message: string): void => {
      if (closed) return
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
    return {
      close: async () => {
        closed = true
        await closeWithin(sub, 2000)
      }
    }
  }

  close (timeout: number): Promise<void> {
    return closeWithin(this.raw, timeout)
  }
}

/** A Cluster (`createCluster`): each command goes to the master of its first key's slot. */
class ClusterClient extends NodeRedisBase implements RedisClient {
  readonly cluster = true
  readonly raw: NodeRedisCluster

  constructor (cluster: NodeRedisCluster) {
    super()
    this.raw = cluster
  }

  /** Open, and its slot map known (a Cluster that is connecting has none yet, and its commands throw). */
  state (): RedisState {
    const cluster = this.raw
    return !cluster.isOpen ? 'down' : cluster.masters.length === 0 ? 'connecting' : 'ready'
  }

  /** 'connect': the slot map is known. */
  override onceReady (fn: () => void): () => void {
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

  onNodeOf (key: string, commands: Arg[][]): Promise<unknown[]> {
    return Promise.all(commands.map((command) => this.raw.sendCommand(key, false, strings(command)).catch((err: Error) => err)))
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

  subscribe (): ChannelSubscriber {
    throw new Error('a Cluster subscribes sharded')
  }

  override view (): ClusterView {
    const cluster = this.raw
    return {
      ready: () => cluster.isOpen,
      owner: (slot) => {
        const master = cluster.slots[slot]?.master
        return master === undefined ? undefined : `${master.host}:${master.port}`
      },
      refresh: (done) => {
        const known = cluster.masters.find((master) => master.client !== undefined)?.client
        const rediscover = cluster._slots?.rediscover
        if (known === undefined || rediscover === undefined) done()
        else rediscover.call(cluster._slots, known).then(done, done)
      },
      subscriber: (key, handlers) => nodeRedisNode(cluster, key, handlers)
    }
  }

  async close (timeout: number): Promise<void> {
    await closeWithin(this.raw, timeout)
  }
}

/** A connection of its own to the master `key` ('host:port'), with the Cluster's options for its nodes; never retried. */
function nodeRedisNode (cluster: NodeRedisCluster, key: string, handlers: NodeHandlers): NodeSubscriber {
  let gone = false
  const lost = (why: string): void => {
    if (gone) return
    handlers.lost(why)
  }
  const shard = cluster.nodeByAddress.get(key)
  const connection: Promise<NodeRedis> = shard === undefined
    ? Promise.reject(new Error(`no Cluster node ${key}`))
    : cluster.nodeClient(shard).then((base) => {
      if (gone) throw new Error('dropped')
      const sub = own(base, { name: SUBSCRIBER, socket: { ...base.options?.socket, reconnectStrategy: false } })
      sub.on('error', (err: Error) => lost(err.message))
      sub.on('end', () => lost('connection lost'))
      // The server unsubscribed us from the channels of a slot it no longer owns.
      sub.on('sharded-channel-moved', () => lost('a channel moved to another node'))
      sub.on('__MOVED', () => lost('a channel moved to another node'))
      return sub
    })
  connection.catch(noop)
  return {
    ssubscribe: async (channel) => await (await connection).sSubscribe(channel, handlers.message),
    sunsubscribe: async (channel) => await (await connection).sUnsubscribe(channel),
    disconnect: () => {
      gone = true
      connection.then((sub) => { if (sub.isOpen) sub.destroy() }, noop)
    }
  }
}

/**
 * A Sentinel (`createSentinel`): node-redis follows the master itself, and its pub/sub proxy
 * subscribes on a connection of its own. It has no way to make a copy: `duplicate` returns
 * this client, and WAIT holds its connection while it waits.
 */
class SentinelClient extends NodeRedisBase implements RedisClient {
  readonly cluster = false
  readonly raw: NodeRedisSentinel
  #wasReady: boolean

  constructor (sentinel: NodeRedisSentinel) {
    super()
    this.raw = sentinel
    this.#wasReady = sentinel.isReady
    sentinel.on('ready', () => { this.#wasReady = true })
  }

  state (): RedisState {
    const client = this.raw
    return client.isReady ? 'ready' : client.isOpen && !this.#wasReady ? 'connecting' : 'down'
  }

  watch (watcher: RedisWatcher): void {
    this.raw.on('error', watcher.error)
    this.raw.on('ready', watcher.ready)
  }

  send (args: Arg[]): Promise<unknown> {
    return this.raw.sendCommand(false, strings(args))
  }

  onNodeOf (_key: string, commands: Arg[][]): Promise<unknown[]> {
    return Promise.all(commands.map((command) => this.raw.sendCommand(false, strings(command)).catch((err: Error) => err)))
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

  async close (): Promise<void> {}
}

export function nodeRedisClient (client: object, kind: Exclude<ClientKind, 'ioredis'>): RedisClient {
  if (kind === 'node-redis-cluster') return new ClusterClient(client as NodeRedisCluster)
  if (kind === 'node-redis-sentinel') return new SentinelClient(client as NodeRedisSentinel)
  return new SingleClient(client as NodeRedis)
}
