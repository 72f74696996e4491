// A redis-server of the script's own on a free loopback port, with stop and start on the
// same port and data directory. With `persist`, every acknowledged write is on disk before
// the reply (appendfsync always), so a stop and a start lose nothing that was acknowledged.
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { freePort, HOST, track } from './procs.js'

export function redisServerAvailable () {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0
}

/** A loud line when Redis is missing; under CI=true the caller must fail. */
export function redisMissing (script) {
  const bar = '!'.repeat(78)
  console.warn(`\n${bar}\n!!! redis-server not found: ${script} SKIPS its Redis part.\n` +
    `!!! Install it (apt-get install redis-server).${process.env.CI === 'true' ? ' Under CI=true this FAILS the run.' : ''}\n${bar}\n`)
}

function spawnRedis (port, dir, persist, extra = []) {
  const durability = persist
    ? ['--appendonly', 'yes', '--appendfsync', 'always', '--save', '']
    : ['--appendonly', 'no', '--save', '']
  return new Promise((resolve, reject) => {
    const child = track(spawn('redis-server', ['--port', String(port), '--bind', HOST, '--protected-mode', 'yes',
      '--dir', dir, '--loglevel', 'notice', ...durability, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] }))
    let out = ''
    const onData = (chunk) => {
      out = (out + chunk.toString()).slice(-4000)
      if (out.includes('Ready to accept connections')) {
        child.stdout.off('data', onData)
        child.stdout.resume()
        resolve(child)
      }
    }
    child.stdout.on('data', onData)
    child.stderr.resume()
    child.once('exit', (code, signal) => reject(new Error(`redis-server on port ${port} exited with ${code ?? signal}: ${out.slice(-500)}`)))
  })
}

function kill (child, signal) {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    child.once('exit', () => resolve())
    child.kill(signal)
  })
}

/** Resolves `{ url, port, admin, stop(signal), start(), close() }`; `admin` is an ioredis client for checks. */
export async function startRedis ({ persist = false } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'fus-hardening-redis-'))
  const port = await freePort()
  let child = await spawnRedis(port, dir, persist)
  const url = `redis://${HOST}:${port}`
  const admin = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true })
  admin.on('error', () => {}) // while the server is stopped on purpose
  await admin.connect()
  return {
    url,
    port,
    admin,
    /** SIGTERM: a clean shutdown; SIGKILL: a crash. */
    async stop (signal = 'SIGTERM') {
      await kill(child, signal)
      child = undefined
    },
    async start () {
      child = await spawnRedis(port, dir, persist)
    },
    async close () {
      admin.disconnect()
      await kill(child, 'SIGKILL')
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

// As test/helpers/redis.ts: a replica takes over ~2 s after its master dies, the other masters
// keep serving their slots meanwhile.
const CLUSTER_NODE = ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '1000',
  '--cluster-replica-validity-factor', '0', '--cluster-require-full-coverage', 'no']
const spawnNode = (port, dir) => spawnRedis(port, dir, false, CLUSTER_NODE)

async function poll (what, check, ms = 30_000) {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await check().catch(() => undefined)
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

async function onNode (port, fn) {
  const redis = new Redis(port, HOST, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  redis.on('error', () => {})
  try {
    await redis.connect()
    return await fn(redis)
  } finally {
    redis.disconnect()
  }
}

/** Resolves once the replica on `port` finished its first sync (before that it cannot take over). */
export function replicaInSync (port) {
  return poll(`the replica on ${port} in sync`, () => onNode(port, async (redis) => {
    const info = await redis.info('replication')
    return /role:slave/.test(info) && /master_link_status:up/.test(info) && /master_sync_in_progress:0/.test(info) ? true : undefined
  }))
}

/** The masters with slots, each with the port of its replica (or undefined), as the node on `port` sees them. */
export async function clusterRoles (port) {
  const rows = (await onNode(port, (redis) => redis.cluster('NODES'))).trim().split('\n').map((l) => l.split(' '))
  const portOf = (row) => Number(row[1].split(':')[1].split('@')[0])
  const healthy = rows.filter((row) => !row[2].includes('fail'))
  const roles = new Map(healthy.filter((row) => row[2].includes('master') && row[8] !== undefined).map((row) => [portOf(row), undefined]))
  for (const row of healthy.filter((r) => r[2].includes('slave'))) {
    const master = rows.find((m) => m[0] === row[3])
    if (master !== undefined && roles.has(portOf(master))) roles.set(portOf(master), portOf(row))
  }
  return roles
}

function portFree (port) {
  return new Promise((resolve) => {
    const server = createServer().on('error', () => resolve(false))
    server.listen(port, HOST, () => server.close(() => resolve(true)))
  })
}

/**
 * A port for a cluster node whose bus port (+10000) is free too, both below the kernel's
 * ephemeral range (32768 and up), where a client connection could take the bus port first.
 */
async function freeClusterPort () {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 2_700)
    if (await portFree(port) && await portFree(port + 10_000)) return port
  }
}

/**
 * A Redis Cluster of 3 masters with a replica each on loopback ports, every replica in sync.
 * Resolves `{ nodes, crash(port), start(port), roles(), close() }`.
 */
export async function startCluster () {
  const servers = new Map()
  for (let i = 0; i < 6; i++) {
    const port = await freeClusterPort()
    const dir = mkdtempSync(join(tmpdir(), 'fus-hardening-cluster-'))
    servers.set(port, { dir, child: await spawnNode(port, dir) })
  }
  const nodes = [...servers.keys()].map((port) => ({ host: HOST, port }))
  const create = spawnSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `${n.host}:${n.port}`),
    '--cluster-replicas', '1', '--cluster-yes'], { encoding: 'utf8' })
  if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`)
  for (const { port } of nodes) {
    await poll(`cluster_state:ok on ${port}`, () => onNode(port, async (redis) => (await redis.cluster('INFO')).includes('cluster_state:ok') ? true : undefined))
  }
  // Gossip takes a moment to show every replica's role.
  const roles = await poll('every master with a replica', async () => {
    const roles = await clusterRoles(nodes[0].port)
    return roles.size === 3 && [...roles.values()].every((r) => r !== undefined) ? roles : undefined
  })
  for (const replica of roles.values()) await replicaInSync(replica)
  return {
    nodes,
    roles: (port) => clusterRoles(port),
    keySlotOwner: async (port, key) => {
      const slot = await onNode(port, (redis) => redis.cluster('KEYSLOT', key))
      const ranges = await onNode(port, (redis) => redis.cluster('SLOTS'))
      return ranges.find(([from, to]) => slot >= from && slot <= to)[2][1]
    },
    async crash (port) {
      await kill(servers.get(port).child, 'SIGKILL')
    },
    async start (port) {
      const server = servers.get(port)
      server.child = await spawnNode(port, server.dir)
    },
    async dbsize () {
      let total = 0
      for (const master of (await clusterRoles(nodes.find((n) => servers.get(n.port).child.exitCode === null && servers.get(n.port).child.signalCode === null).port)).keys()) {
        total += await onNode(master, (redis) => redis.dbsize())
      }
      return total
    },
    async close () {
      for (const { child, dir } of servers.values()) {
        await kill(child, 'SIGKILL')
        rmSync(dir, { recursive: true, force: true })
      }
    }
  }
}
