import type { FastifyBaseLogger } from 'fastify'
import type { ClusterView, NodeSubscriber } from '../redis/client.js'
import { keySlot } from '../redis/slot.js'
import { retryDelay } from '../util/retry.js'
import { noop } from './subscribers.js'

export { keySlot }

// The subscriber of a Redis Cluster: sharded pub/sub, one connection per master that owns the
// slot of a followed channel, each SSUBSCRIBEd to the channels of its slots (the client's own
// connection to a node comes from lib/redis/ioredis.ts or node-redis.ts). ioredis 5's own
// Cluster#ssubscribe is not used: without `shardedSubscribers` it sends every SSUBSCRIBE to one
// node, which answers MOVED for the slots of the others (redis/ioredis#1759); with it, a MOVED
// reply to SSUBSCRIBE never settles the command's promise, and resubscription after a failover
// is fire-and-forget, with no event saying when the channels are heard again, which is what
// `resync` needs. So the placement is ours: the slot map of the store's Cluster says which
// master owns each channel; a lost node connection, a MOVED reply or an SSUBSCRIBE that does
// not answer in time starts a reconciliation (refresh the slot map, connect to the owners,
// SSUBSCRIBE again), retried with a bounded back-off until every channel is heard again, and
// then `resync` runs once.

/** One connection to one master, and the channels it is subscribed to or being subscribed to. */
interface Node {
  key: string
  redis: NodeSubscriber
  channels: Set<string>
  /** SSUBSCRIBE batches not yet acknowledged. */
  pending: number
}

/** The routing key in a channel's hash tag: `<prefix>r:{<key>}`. */
function routingKey (channel: string): string {
  return channel.slice(channel.indexOf('{') + 1, channel.lastIndexOf('}'))
}

export class ShardedSubscription {
  readonly #cluster: ClusterView
  readonly #channels: Set<string>
  readonly #nodes = new Map<string, Node>()
  readonly #deliver: (text: string) => void
  readonly #resync: (keys?: readonly string[]) => void
  readonly #log: FastifyBaseLogger
  readonly #timeout: number
  #timer: NodeJS.Timeout | undefined
  #attempt = 0
  /** Something may have been missed since the last time every channel was heard: resync then. */
  #lost = false
  #failing = false

  constructor (cluster: ClusterView, channels: string[], deliver: (text: string) => void, resync: (keys?: readonly string[]) => void,
    log: FastifyBaseLogger, timeout: number) {
    this.#cluster = cluster
    this.#channels = new Set(channels)
    this.#deliver = deliver
    this.#resync = resync
    this.#log = log
    this.#timeout = timeout
    this.#reconcile()
  }

  follow (channel: string): void {
    this.#channels.add(channel)
    this.#reconcile()
  }

  unfollow (channel: string): void {
    this.#channels.delete(channel)
    this.#reconcile()
  }

  /** Puts every followed channel on the connection to the master of its slot, as the slot map says now. */
  #reconcile (): void {
    const wanted = new Map<string, Set<string>>()
    let placed = true
    for (const channel of this.#channels) {
      const key = this.#cluster.owner(keySlot(channel))
      if (key === undefined) {
        placed = false
        continue
      }
      let set = wanted.get(key)
      if (set === undefined) wanted.set(key, set = new Set())
      set.add(channel)
    }
    for (const [key, node] of this.#nodes) if (!wanted.has(key)) this.#drop(node)
    for (const [key, channels] of wanted) {
      const node = this.#nodes.get(key) ?? this.#connect(key)
      for (const channel of node.channels) {
        if (channels.has(channel)) continue
        node.channels.delete(channel)
        node.redis.sunsubscribe(channel).catch(noop)
      }
      const added = [...channels].filter((channel) => !node.channels.has(channel))
      for (const channel of added) node.channels.add(channel)
      if (added.length > 0) this.#listen(node, added)
    }
    if (!placed) this.#retry('the slot map does not name the owner of a followed channel')
    else this.#settled()
  }

  /** A connection of its own to the master `key` ('host:port'); never retried. */
  #connect (key: string): Node {
    const node: Node = { key, redis: undefined as unknown as NodeSubscriber, channels: new Set(), pending: 0 }
    node.redis = this.#cluster.subscriber(key, {
      message: (text) => this.#deliver(text),
      lost: (why) => this.#lose(node, why)
    })
    this.#nodes.set(key, node)
    return node
  }

  /** SSUBSCRIBEs `channels` on `node`, one command per channel (they need not share a slot), within the timeout. */
  #listen (node: Node, channels: string[]): void {
    node.pending++
    let answered = false
    const timer = setTimeout(() => {
      if (!answered) this.#lose(node, `no answer to SSUBSCRIBE within ${this.#timeout} ms`)
    }, this.#timeout).unref()
    Promise.all(channels.map((channel) => node.redis.ssubscribe(channel))).then(() => {
      answered = true
      clearTimeout(timer)
      node.pending--
      // Channels heard for the first time: what their users' sessions got before may have been
      // missed. (After a loss, #settled resyncs everything instead. An answer that comes after
      // its node was dropped changes nothing: a loss dropped it, or nobody follows them any more.)
      if (!this.#lost) this.#resync(channels.map(routingKey))
      this.#settled()
    }, (err: Error) => {
      answered = true
      clearTimeout(timer)
      this.#lose(node, err.message)
    })
  }

  /** Every channel heard again after a loss: resync, once. */
  #settled (): void {
    if (this.#timer !== undefined) return
    for (const node of this.#nodes.values()) if (node.pending > 0) return
    this.#attempt = 0
    if (this.#failing) this.#log.info('redis revocation bus: sharded subscription restored')
    this.#failing = false
    if (!this.#lost) return
    this.#lost = false
    this.#resync()
  }

  #lose (node: Node, why: string): void {
    if (this.#nodes.get(node.key) !== node) return
    this.#drop(node)
    this.#retry(why)
  }

  #drop (node: Node): void {
    this.#nodes.delete(node.key)
    node.redis.disconnect()
  }

  /** One warning per outage. */
  #fault (message: string): void {
    if (this.#failing) return
    this.#failing = true
    this.#log.warn({ err: { message } }, 'redis revocation bus: sharded subscriber connection error')
  }

  #retry (why: string): void {
    this.#fault(why)
    this.#lost = true
    if (this.#timer !== undefined) return
    const again = (): void => {
      this.#timer = undefined
      this.#reconcile()
    }
    // A Cluster that is not ready refreshes its slot map on its own as it connects; a refresh of
    // ours meanwhile would race with its connect().
    this.#timer = setTimeout(() => {
      if (this.#cluster.ready()) this.#cluster.refresh(again)
      else again()
    }, retryDelay(this.#attempt++)).unref()
  }

  async close (): Promise<void> {
    this.#channels.clear()
    clearTimeout(this.#timer)
    this.#timer = undefined
    for (const node of this.#nodes.values()) this.#drop(node)
  }
}
