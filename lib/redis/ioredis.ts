import type { Cluster, Redis } from 'ioredis'
import { retryDelay } from '../util/retry.js'
import { keySlot } from './slot.js'
import type { Arg, ChannelHandlers, ChannelSubscriber, ClusterView, NodeHandlers, NodeSubscriber, RedisClient, RedisState, RedisWatcher } from './client.js'

// ioredis 5 and 6, and iovalkey (the same API): `Redis` (single server or Sentinel) and
// `Cluster`. Only types are imported: the classes come from the user's object
// (`constructor`), so an app on another client never loads ioredis.

const CONNECTING = new Set(['wait', 'connecting', 'connect'])
const noop = (): void => {}

interface Queued {
  args: Arg[]
  /** ioredis's callback: (error) or (null, reply). */
  done: (err: Error | null | undefined, value?: unknown) => void
}

export class IoredisClient implements RedisClient {
  readonly kind = 'ioredis'
  readonly cluster: boolean
  readonly keyPrefix: string
  readonly raw: Redis | Cluster
  /** Commands issued during this turn of the event loop; sent together, in one write. */
  #queue: Queued[] = []

  constructor (client: Redis | Cluster) {
    this.raw = client
    this.cluster = client.isCluster
    const prefix = (client.options as { keyPrefix?: unknown }).keyPrefix
    this.keyPrefix = typeof prefix === 'string' ? prefix : ''
  }

  /**
   * A single server's client is ready only while its socket takes writes: ioredis says 'ready'
   * until it has handled the socket's close, and meanwhile puts what it is sent in its offline
   * queue (unless the app turned that off), to run after the reconnection: never for us.
   */
  state (): RedisState {
    const status = this.raw.status
    if (status === 'ready' && (this.cluster || (this.raw as Redis).stream.writable)) return 'ready'
    return CONNECTING.has(status) ? 'connecting' : 'down'
  }

  connect (): void {
    if (this.raw.status === 'wait') this.raw.connect().catch(noop)
  }

  watch (watcher: RedisWatcher): void {
    this.raw.on('error', watcher.error)
    this.raw.on('close', watcher.lost)
    this.raw.on('ready', watcher.ready)
  }

  onceReady (fn: () => void): () => void {
    this.raw.once('ready', fn)
    return () => { this.raw.off('ready', fn) }
  }

  /**
   * Sends one command. On a single server's client, the commands of one turn of the event
   * loop go out together (one socket write, one read on Redis's side), each still answered on
   * its own: under load, the commands of many requests cost one socket
   * write instead of one each. A Cluster routes each command to its own node.
   * Nothing waits on an earlier batch, so a batch lost with a connection holds nothing up.
   */
  send (args: Arg[]): Promise<unknown> {
    const [command, ...rest] = args as [string, ...Arg[]]
    if (this.cluster) return this.raw.call(command, ...rest)
    return new Promise((resolve, reject) => {
      const done = (err: Error | null | undefined, value?: unknown): void => {
        if (err) reject(err)
        else resolve(value)
      }
      if (this.#queue.push({ args, done }) === 1) setImmediate(this.#flush)
    })
  }

  readonly #flush = (): void => {
    const queue = this.#queue
    this.#queue = []
    const client = this.raw
    if (this.state() !== 'ready') {
      // Lost since the commands were queued: never into ioredis's offline queue, where they
      // would run later, behind the caller's back.
      const err = new Error('the Redis connection is down (lost before the batch was sent)')
      for (const queued of queue) queued.done(err)
      return
    }
    // Each command's callback settles its caller. A ready client writes each command to its
    // socket at once: corked, they leave in one write. (ioredis's own pipeline() does the same
    // at a cost: at 2,000 writes/s it took the server 115 µs of CPU per request against 71.)
    const stream = (client as Redis).stream
    stream.cork()
    for (const { args, done } of queue) {
      (client.call as (...args: unknown[]) => unknown)(...args, done)
    }
    stream.uncork()
  }

  /** On a Cluster, the node client the pool routes `key` to; the scripts of that key went through it. */
  onNode (key: string, args: Arg[]): Promise<unknown> {
    const [command, ...rest] = args as [string, ...Arg[]]
    if (!this.cluster) return this.raw.call(command, ...rest)
    const cluster = this.raw as Cluster
    const owner = cluster.slots[keySlot(key)]?.[0]
    const node = cluster.nodes('master').find(({ options }) => `${options.host}:${options.port}` === owner) as Redis
    return node.call(command, ...rest)
  }

  duplicate (): RedisClient {
    const client = this.raw
    // A Cluster's copy starts from the nodes known now: its startup nodes may have died since.
    const copy = client.isCluster
      ? (client as Cluster).duplicate((client as Cluster).nodes().map(({ options }) => ({ host: options.host, port: options.port })))
      : (client as Redis).duplicate()
    return new IoredisClient(copy)
  }

  publish (channel: string, message: string): Promise<unknown> {
    return this.cluster ? (this.raw as Cluster).spublish(channel, message) : this.raw.publish(channel, message)
  }

  /**
   * ioredis reconnects the subscriber; we subscribe again on each 'ready' ourselves (not
   * `autoResubscribe`), so that `subscribed` runs once the channel is heard again, never before.
   */
  subscribe (channel: string, handlers: ChannelHandlers): ChannelSubscriber {
    let closed = false
    const sub = (this.raw as Redis).duplicate({
      autoResubscribe: false,
      lazyConnect: false,
      enableOfflineQueue: false,
      connectionName: 'fastify-user-sessions:revoked',
      retryStrategy: retryDelay
    })
    sub.on('message', (_channel: string, text: string) => handlers.message(text))
    sub.on('error', (err: Error) => { if (!closed) handlers.fault(err.message) })
    sub.on('close', () => { if (!closed) handlers.fault('connection lost') })
    // 'ready' comes when the connection is first made and after each loss: either way, what was
    // published before the SUBSCRIBE answered was not heard.
    sub.on('ready', () => {
      sub.subscribe(channel).then(handlers.subscribed, (err: Error) => handlers.fault(err.message))
    })
    return {
      close: async () => {
        closed = true
        await new IoredisClient(sub).close(2000)
      }
    }
  }

  view (): ClusterView {
    const cluster = this.raw as Cluster
    return {
      ready: () => cluster.status === 'ready',
      owner: (slot) => cluster.slots[slot]?.[0],
      refresh: (done) => { cluster.refreshSlotsCache(() => done()) },
      subscriber: (key, handlers) => ioredisNode(cluster, key, handlers)
    }
  }

  async close (timeout: number): Promise<void> {
    const client = this.raw
    if (client.status === 'ready') {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeout).unref()
        client.quit().catch(noop).finally(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
    client.disconnect()
  }
}

/** A connection of its own to the master `key` ('host:port'), with the Cluster's options for its nodes; never retried. */
function ioredisNode (cluster: Cluster, key: string, handlers: NodeHandlers): NodeSubscriber {
  const colon = key.lastIndexOf(':')
  // A copy of one of the Cluster's node clients, so that it is of the user's own library
  // (ioredis or iovalkey). A Cluster that lost its connections (a disconnect, a reconnect under
  // way) keeps its slot map but holds no node: then SSUBSCRIBE fails, a loss like any other,
  // retried. Commands wait in the offline queue for the connection, within the caller's timeout.
  const template = cluster.nodes()[0]
  if (template === undefined) {
    const none = async (): Promise<never> => { throw new Error('the Cluster client has no connection to copy yet') }
    return { ssubscribe: none, sunsubscribe: none, disconnect: noop }
  }
  const redis = template.duplicate({
    ...cluster.options.redisOptions,
    // SPUBLISH's channel is a key to ioredis, which prefixes it on the Cluster: SSUBSCRIBE's must match.
    keyPrefix: cluster.options.keyPrefix,
    host: key.slice(0, colon),
    port: Number(key.slice(colon + 1)),
    autoResubscribe: false,
    enableOfflineQueue: true,
    lazyConnect: false,
    readOnly: false,
    connectionName: 'fastify-user-sessions:revoked',
    // The reconciliation reconnects, to whichever master owns the slots then.
    retryStrategy: () => null
  })
  redis.on('smessage', (_channel: string, text: string) => handlers.message(text))
  // Any error: a failed connection (then 'end'), or the server unsubscribing us from the channels of
  // a slot it no longer owns, which ioredis reports as "Command queue state error ... sunsubscribe".
  redis.on('error', (err: Error) => handlers.lost(err.message))
  // ioredis emits 'moved' for a MOVED reply to SSUBSCRIBE, and leaves the command unanswered.
  redis.on('moved', () => handlers.lost('a channel moved to another node'))
  redis.on('end', () => handlers.lost('connection lost'))
  return {
    ssubscribe: (channel) => redis.ssubscribe(channel),
    sunsubscribe: (channel) => redis.sunsubscribe(channel),
    disconnect: () => { redis.disconnect() }
  }
}
