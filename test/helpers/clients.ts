import { Cluster, Redis } from 'ioredis'
import { Cluster as Cluster6, Redis as Redis6 } from 'ioredis6'
import { Cluster as ValkeyCluster, Redis as Valkey } from 'iovalkey'
import * as redis5 from 'redis'
import * as redis6 from 'redis6'

// The Redis clients the stores take, each made as an app would make it, for tests that run
// the same contract on every one: ioredis 5 and 6, iovalkey (its Valkey fork), node-redis 5
// (RESP2, its default, and RESP3) and node-redis 6 (its default, RESP3).

export interface Address { host: string, port: number }

export interface RedisClientMaker {
  name: string
  /** A client of one server, connected (or connecting, for ioredis). */
  single: (url: string) => Promise<object>
  cluster: (nodes: Address[]) => Promise<object>
  sentinel: (sentinels: Address[], name: string) => Promise<object>
  /** Closes a client this maker made. */
  close: (client: object) => Promise<void>
}

const noop = (): void => {}

function io (name: string, R: typeof Redis, C: typeof Cluster): RedisClientMaker {
  return {
    name,
    single: async (url) => new R(url),
    cluster: async (nodes) => new C(nodes),
    sentinel: async (sentinels, master) => new R({ sentinels, name: master }),
    close: async (client) => {
      await (client as Redis).quit().catch(noop)
      ;(client as Redis).disconnect()
    }
  }
}

/** The part of node-redis 5 and 6 the makers use (the same calls in both). */
type NodeRedis = Pick<typeof redis5, 'createClient' | 'createCluster' | 'createSentinel'>

/** `RESP`: undefined for the library's default. */
function nodeRedis (name: string, RESP: 2 | 3 | undefined, { createClient, createCluster, createSentinel }: NodeRedis = redis5): RedisClientMaker {
  const resp = RESP === undefined ? {} : { RESP }
  return {
    name,
    single: async (url) => {
      const client = createClient({ url, ...resp })
      client.on('error', noop)
      return await client.connect()
    },
    cluster: async (nodes) => {
      const cluster = createCluster({ rootNodes: nodes.map(({ host, port }) => ({ url: `redis://${host}:${port}` })), ...resp })
      cluster.on('error', noop)
      return await cluster.connect()
    },
    sentinel: async (sentinels, master) => {
      const sentinel = createSentinel({ name: master, sentinelRootNodes: sentinels, ...resp })
      sentinel.on('error', noop)
      return await sentinel.connect()
    },
    close: async (client) => {
      const c = client as { isOpen: boolean, close: () => Promise<unknown>, destroy: () => unknown }
      if (c.isOpen) await c.close().catch(() => c.destroy())
    }
  }
}

export const ioredis = io('ioredis', Redis, Cluster)
export const ioredis6 = io('ioredis 6', Redis6 as unknown as typeof Redis, Cluster6 as unknown as typeof Cluster)
export const iovalkey = io('iovalkey', Valkey as unknown as typeof Redis, ValkeyCluster as unknown as typeof Cluster)
export const nodeRedis2 = nodeRedis('node-redis', 2)
export const nodeRedis3 = nodeRedis('node-redis RESP3', 3)
export const nodeRedis6 = nodeRedis('node-redis 6', undefined, redis6 as unknown as NodeRedis)

/** Every client the contract suites run on. */
export const CLIENTS: RedisClientMaker[] = [ioredis, ioredis6, iovalkey, nodeRedis2, nodeRedis3, nodeRedis6]
/** One per library, for the heavy tests (failover, outage). */
export const LIBRARIES: RedisClientMaker[] = [ioredis, nodeRedis2]
