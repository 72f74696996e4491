import { Cluster, Redis } from 'ioredis'
import { Cluster as ValkeyCluster, Redis as Valkey } from 'iovalkey'
import { createClient, createCluster, createSentinel } from 'redis'

// The Redis clients the stores take, each made as an app would make it, for tests that run
// the same contract on every one: ioredis, iovalkey (its Valkey fork) and node-redis (RESP2,
// its default in v5, and RESP3).

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

function nodeRedis (name: string, RESP: 2 | 3): RedisClientMaker {
  return {
    name,
    single: async (url) => {
      const client = createClient({ url, RESP })
      client.on('error', noop)
      return await client.connect()
    },
    cluster: async (nodes) => {
      const cluster = createCluster({ rootNodes: nodes.map(({ host, port }) => ({ url: `redis://${host}:${port}` })), RESP })
      cluster.on('error', noop)
      return await cluster.connect()
    },
    sentinel: async (sentinels, master) => {
      const sentinel = createSentinel({ name: master, sentinelRootNodes: sentinels, RESP })
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
export const iovalkey = io('iovalkey', Valkey as unknown as typeof Redis, ValkeyCluster as unknown as typeof Cluster)
export const nodeRedis2 = nodeRedis('node-redis', 2)
export const nodeRedis3 = nodeRedis('node-redis RESP3', 3)

/** Every client the contract suites run on. */
export const CLIENTS: RedisClientMaker[] = [ioredis, iovalkey, nodeRedis2, nodeRedis3]
/** One per library, for the heavy tests (failover, outage). */
export const LIBRARIES: RedisClientMaker[] = [ioredis, nodeRedis2]
