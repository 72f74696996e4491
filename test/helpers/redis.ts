import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Cluster, Redis } from 'ioredis'
import { LINGER } from '../../lib/stores/redis/scripts.js'

// Real Redis servers for the tests, started on free loopback ports and stopped at teardown,
// as connect-redis's tests do. No mocks. Without redis-server the Redis tests are skipped
// with a loud warning, except under CI=true, where that fails the run.

interface Tap {
  teardown: (fn: () => unknown) => void
  fail: (message: string) => unknown
  plan: (n: number, comment?: string) => unknown
}

export interface RedisServer {
  host: string
  port: number
  url: string
  /** True when we started it; false for REDIS_URL, which cannot be stopped. */
  own: boolean
  /** Stops the server (its data is lost). */
  stop: () => Promise<void>
  /** Starts it again on the same port. */
  start: () => Promise<void>
  /** SIGSTOP / SIGCONT: a server that holds connections open and answers nothing. */
  pause: () => void
  resume: () => void
  /** SIGKILL: a crash, nothing flushed, connections reset. */
  crash: () => Promise<void>
}

export interface RedisClusterNodes {
  nodes: Array<{ host: string, port: number }>
  /** A cluster client that knows only the first node at start. */
  client: (options?: object) => Cluster
  /** Each node's server by port, to crash, pause and start again (with replicas only). */
  servers: Map<number, RedisServer>
}

/** A master with its replicas, and a Sentinel watching them. */
export interface RedisSentinelSetup {
  master: RedisServer
  replica: RedisServer
  /** The Sentinel's address, for an ioredis client's `sentinels`. */
  sentinels: Array<{ host: string, port: number }>
  name: string
  /** An ioredis client that finds the master through the Sentinel. */
  client: (options?: object) => Redis
}

const HOST = '127.0.0.1'
const children = new Set<ChildProcess>()
process.on('exit', () => { for (const child of children) child.kill('SIGKILL') })

let checked: boolean | undefined
/** True when redis-server can run; otherwise fails (CI=true) or skips the calling test file. */
export function redisAvailable (t: Tap): boolean {
  checked ??= spawnSync('redis-server', ['--version']).status === 0
  if (checked) return true
  if (process.env.CI === 'true') {
    t.fail('redis-server is not installed: under CI=true the Redis tests must run (apt-get install redis-server)')
  } else {
    console.warn('\n' + '!'.repeat(78) + '\n!!! redis-server not found: SKIPPING the Redis tests of this file.\n' +
      '!!! Install it (apt-get install redis-server) or set REDIS_URL.\n' + '!'.repeat(78) + '\n')
    t.plan(0, 'redis-server not found')
  }
  return false
}

function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, HOST, () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

function portFree (port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const server = createServer().on('error', () => resolve(false))
    server.listen(port, HOST, () => server.close(() => resolve(true)))
  })
}

/**
 * A port for a cluster node whose cluster bus port (+10000) is free as well, both below the
 * kernel's ephemeral range (32768 and up on Linux): a port the OS hands out to some client
 * connection in between could otherwise take the bus port before the node binds it.
 */
async function freeClusterPort (): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 2_700)
    if (await portFree(port) && await portFree(port + 10_000)) return port
  }
}

/** Spawns redis-server and resolves once it accepts connections; rejects if it exits first. */
function spawnRedis (port: number, dir: string, extra: string[] = []): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn('redis-server', ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no',
      '--dir', dir, '--loglevel', 'notice', ...extra], { stdio: ['ignore', 'pipe', 'inherit'] })
    children.add(child)
    let out = ''
    const onData = (chunk: Buffer): void => {
      out += chunk.toString()
      if (out.includes('Ready to accept connections')) {
        child.stdout?.off('data', onData)
        child.stdout?.resume()
        resolve(child)
      }
    }
    child.stdout?.on('data', onData)
    child.on('exit', (code) => {
      children.delete(child)
      reject(new Error(`redis-server on port ${port} exited with ${code}: ${out.slice(-500)}`))
    })
  })
}

function kill (child: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    child.once('exit', () => resolve())
    child.kill('SIGCONT')
    child.kill(signal)
  })
}

/** Polls `check` until it returns a value other than undefined; fails after `ms` with `what`. */
export async function until<T> (what: string, check: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await check().catch(() => undefined)
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/**
 * Whether `key` is the marker the Redis store leaves for LINGER ms in place of a session it
 * deleted: an empty string with an expiry of its own.
 */
export async function isMarker (redis: Redis, key: string): Promise<boolean> {
  const ttl = await redis.pttl(key)
  return await redis.type(key) === 'string' && await redis.get(key) === '' && ttl > 0 && ttl <= LINGER
}

/** The keys under `pattern` beside the markers of deleted sessions, sorted. */
export async function keysBesideMarkers (redis: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = []
  for (const key of await redis.keys(pattern)) if (!await isMarker(redis, key)) keys.push(key)
  return keys.sort()
}

/** One command on a short-lived connection, for checks and faults from outside the app. */
async function once<T> (port: number, fn: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis(port, HOST, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  redis.on('error', () => {})
  try {
    await redis.connect()
    return await fn(redis)
  } finally {
    redis.disconnect()
  }
}

/** The fields of `INFO replication` of the server on `port`. */
export async function replicationInfo (port: number): Promise<Record<string, string>> {
  const text = await once(port, (redis) => redis.info('replication'))
  return Object.fromEntries(text.split('\r\n').filter((l) => l.includes(':')).map((l) => l.split(':', 2) as [string, string]))
}

/**
 * Resolves once the replica on `port` finished its first sync: before that it cannot take
 * over, and a Cluster whose master dies then stays down for every slot.
 */
export function replicaInSync (port: number, ms?: number): Promise<true> {
  return until(`the replica on port ${port} in sync`, async () => {
    const info = await replicationInfo(port)
    return info.role === 'slave' && info.master_link_status === 'up' && info.master_sync_in_progress === '0' ? true : undefined
  }, ms)
}

/** Resolves once the replica on `port` holds every write its master had when called. */
export async function replicaCaughtUp (masterPort: number, replicaPort: number): Promise<true> {
  const target = Number((await replicationInfo(masterPort)).master_repl_offset)
  return await until(`the replica on port ${replicaPort} at offset ${target}`, async () =>
    Number((await replicationInfo(replicaPort)).slave_repl_offset) >= target ? true : undefined)
}

/** A redis-server of our own on `port`, stopped at teardown (the caller removes `dir`). */
async function ownServer (t: Tap, port: number, dir: string, extra: string[] = []): Promise<RedisServer> {
  let child: ChildProcess | undefined = await spawnRedis(port, dir, extra)
  t.teardown(() => kill(child))
  return {
    host: HOST,
    port,
    url: `redis://${HOST}:${port}`,
    own: true,
    stop: async () => {
      await kill(child)
      child = undefined
    },
    start: async () => { child = await spawnRedis(port, dir, extra) },
    pause: () => { child?.kill('SIGSTOP') },
    resume: () => { child?.kill('SIGCONT') },
    crash: async () => {
      await kill(child, 'SIGKILL')
      child = undefined
    }
  }
}

function tempDir (t: Tap, name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `fus-${name}-`))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/**
 * A single Redis for this test file: REDIS_URL when set (unless `own` is asked, for tests that
 * stop it), otherwise a redis-server of our own. Undefined when the file is skipped.
 */
export async function redisServer (t: Tap, { own = false } = {}): Promise<RedisServer | undefined> {
  const external = process.env.REDIS_URL
  if (external !== undefined && external !== '' && !own) {
    const url = new URL(external)
    const unsupported = (): never => { throw new Error('cannot stop or pause the server of REDIS_URL') }
    return { host: url.hostname, port: Number(url.port || 6379), url: external, own: false, stop: unsupported, start: unsupported, pause: unsupported, resume: unsupported, crash: unsupported }
  }
  if (!redisAvailable(t)) return undefined
  return await ownServer(t, await freePort(), tempDir(t, 'redis'))
}

/** A master and one replica of it, in sync, for this test file. Undefined when the file is skipped. */
export async function redisReplicated (t: Tap): Promise<{ master: RedisServer, replica: RedisServer } | undefined> {
  if (!redisAvailable(t)) return undefined
  const master = await ownServer(t, await freePort(), tempDir(t, 'master'))
  const replica = await ownServer(t, await freePort(), tempDir(t, 'replica'), ['--replicaof', HOST, String(master.port)])
  await replicaInSync(replica.port)
  // The replica's side says the link is up before the master counts the replica online (after
  // its first ACK); until then ROLE and WAIT on the master see no replica.
  await until(`the master on port ${master.port} counting its replica online`, async () =>
    (await replicationInfo(master.port)).slave0?.includes('state=online') === true ? true : undefined)
  return { master, replica }
}

let sentinelChecked: boolean | undefined
/**
 * A master, a replica and one Sentinel (quorum 1) that fails over 1 s after the master stops
 * answering; undefined when the file is skipped (as for redis-server, a failure under CI=true).
 */
export async function redisSentinel (t: Tap): Promise<RedisSentinelSetup | undefined> {
  if (!redisAvailable(t)) return undefined
  sentinelChecked ??= spawnSync('redis-sentinel', ['--version']).status === 0
  if (!sentinelChecked) {
    if (process.env.CI === 'true') t.fail('redis-sentinel is not installed: under CI=true the Sentinel tests must run (apt-get install redis-sentinel)')
    else {
      console.warn('\n' + '!'.repeat(78) + '\n!!! redis-sentinel not found: SKIPPING the Sentinel tests of this file.\n' +
        '!!! Install it (apt-get install redis-sentinel).\n' + '!'.repeat(78) + '\n')
      t.plan(0, 'redis-sentinel not found')
    }
    return undefined
  }
  const { master, replica } = await redisReplicated(t) as { master: RedisServer, replica: RedisServer }
  const name = 'fus'
  const dir = tempDir(t, 'sentinel')
  const port = await freePort()
  writeFileSync(join(dir, 'sentinel.conf'), [`port ${port}`, `bind ${HOST}`, `dir ${dir}`,
    `sentinel monitor ${name} ${HOST} ${master.port} 1`, `sentinel down-after-milliseconds ${name} 1000`,
    `sentinel failover-timeout ${name} 10000`, ''].join('\n'))
  const child = spawn('redis-sentinel', [join(dir, 'sentinel.conf')], { stdio: 'ignore' })
  children.add(child)
  child.on('exit', () => children.delete(child))
  t.teardown(() => kill(child))
  // Ready to fail over once it knows the replica.
  await until('the Sentinel to see the replica', () => once(port, async (redis) =>
    ((await redis.call('SENTINEL', 'REPLICAS', name)) as unknown[]).length === 1 ? true : undefined))
  const sentinels = [{ host: HOST, port }]
  return { master, replica, sentinels, name, client: (options = {}) => new Redis({ sentinels, name, ...options }) }
}

/**
 * A 3-master Redis Cluster on loopback ports, for this test file; with `replicas: 1`, each
 * master has a replica, every replica is in sync before this resolves, a replica takes over
 * about 2 s after its master dies, and the other masters serve their slots meanwhile. Undefined when the file is skipped.
 */
export async function redisCluster (t: Tap, { replicas = 0 } = {}): Promise<RedisClusterNodes | undefined> {
  if (!redisAvailable(t)) return undefined
  const timing = replicas === 0
    ? ['--cluster-node-timeout', '5000']
    // The other masters keep serving while a failed master's slots wait for their replica
    // (with the default, 'yes', every slot refuses for that second or so).
    : ['--cluster-node-timeout', '1000', '--cluster-replica-validity-factor', '0', '--cluster-require-full-coverage', 'no']
  const servers = new Map<number, RedisServer>()
  for (let i = 0; i < 3 * (1 + replicas); i++) {
    const port = await freeClusterPort()
    servers.set(port, await ownServer(t, port, tempDir(t, 'cluster'), ['--cluster-enabled', 'yes',
      '--cluster-config-file', 'nodes.conf', ...timing]))
  }
  const nodes = [...servers.keys()].map((port) => ({ host: HOST, port }))
  const create = spawnSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `${n.host}:${n.port}`),
    '--cluster-replicas', String(replicas), '--cluster-yes'], { encoding: 'utf8' })
  if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`)
  for (const node of nodes) {
    await until(`cluster_state:ok on port ${node.port}`, () => once(node.port, async (redis) =>
      (await redis.cluster('INFO')).includes('cluster_state:ok') ? true : undefined))
    if (replicas > 0 && (await replicationInfo(node.port)).role === 'slave') await replicaInSync(node.port)
  }
  return {
    nodes,
    servers,
    client: (options = {}) => new Cluster([nodes[0] as { host: string, port: number }], options)
  }
}

/** The masters of a cluster and the port of each one's replica, as the node on `port` sees them. */
export async function clusterRoles (port: number): Promise<Map<number, number | undefined>> {
  const text = await once(port, (redis) => redis.cluster('NODES') as Promise<string>)
  const rows = text.trim().split('\n').map((line) => line.split(' '))
  const portOf = (row: string[]): number => Number((row[1] as string).split(':')[1]?.split('@')[0])
  const roles = new Map<number, number | undefined>()
  const healthy = rows.filter((row) => !(row[2] as string).includes('fail'))
  for (const row of healthy) if ((row[2] as string).includes('master') && row[8] !== undefined) roles.set(portOf(row), undefined)
  for (const row of healthy) {
    if (!(row[2] as string).includes('slave')) continue
    const master = rows.find((m) => m[0] === row[3])
    if (master !== undefined && roles.has(portOf(master))) roles.set(portOf(master), portOf(row))
  }
  return roles
}
