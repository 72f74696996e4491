import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Cluster, Redis } from 'ioredis'

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
}

export interface RedisClusterNodes {
  nodes: Array<{ host: string, port: number }>
  /** A cluster client that knows only the first node at start. */
  client: (options?: object) => Cluster
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

/** A port whose cluster bus port (+10000) is free as well. */
async function freeClusterPort (): Promise<number> {
  for (;;) {
    const port = await freePort()
    if (port > 55_000) continue
    const bus = await new Promise<boolean>((resolve) => {
      const server = createServer().on('error', () => resolve(false))
      server.listen(port + 10_000, HOST, () => server.close(() => resolve(true)))
    })
    if (bus) return port
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

function kill (child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    child.once('exit', () => resolve())
    child.kill('SIGCONT')
    child.kill('SIGTERM')
  })
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
    return { host: url.hostname, port: Number(url.port || 6379), url: external, own: false, stop: unsupported, start: unsupported, pause: unsupported, resume: unsupported }
  }
  if (!redisAvailable(t)) return undefined
  const dir = mkdtempSync(join(tmpdir(), 'fus-redis-'))
  const port = await freePort()
  let child: ChildProcess | undefined = await spawnRedis(port, dir)
  t.teardown(async () => {
    await kill(child)
    rmSync(dir, { recursive: true, force: true })
  })
  return {
    host: HOST,
    port,
    url: `redis://${HOST}:${port}`,
    own: true,
    stop: async () => {
      await kill(child)
      child = undefined
    },
    start: async () => { child = await spawnRedis(port, dir) },
    pause: () => { child?.kill('SIGSTOP') },
    resume: () => { child?.kill('SIGCONT') }
  }
}

/** A 3-master Redis Cluster on loopback ports, for this test file. Undefined when the file is skipped. */
export async function redisCluster (t: Tap): Promise<RedisClusterNodes | undefined> {
  if (!redisAvailable(t)) return undefined
  const started: ChildProcess[] = []
  const dirs: string[] = []
  t.teardown(async () => {
    await Promise.all(started.map(kill))
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  })
  const nodes: Array<{ host: string, port: number }> = []
  for (let i = 0; i < 3; i++) {
    const dir = mkdtempSync(join(tmpdir(), 'fus-cluster-'))
    dirs.push(dir)
    const port = await freeClusterPort()
    started.push(await spawnRedis(port, dir, ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf',
      '--cluster-node-timeout', '5000']))
    nodes.push({ host: HOST, port })
  }
  const create = spawnSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `${n.host}:${n.port}`),
    '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8' })
  if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`)
  for (const node of nodes) {
    const redis = new Redis(node.port, node.host)
    for (;;) {
      const info = await redis.cluster('INFO')
      if (info.includes('cluster_state:ok')) break
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    redis.disconnect()
  }
  return {
    nodes,
    client: (options = {}) => new Cluster([nodes[0] as { host: string, port: number }], options)
  }
}
