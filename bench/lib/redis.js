// The bench's Redis: REDIS_URL when given, otherwise its own redis-server on a free loopback
// port, keeping nothing on disk, stopped when the bench ends.
import { spawn, spawnSync } from 'node:child_process'
import Redis from 'ioredis'
import { freePort, track } from './procs.js'

export function redisServerAvailable () {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0
}

async function ping (url, deadline) {
  for (;;) {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    client.on('error', () => {}) // connect() rejects with it; the loop retries
    try {
      await client.connect()
      await client.ping()
      return client
    } catch (err) {
      client.disconnect()
      if (Date.now() > deadline) throw err
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
}

/** Resolves `{ url, client, version, stop }`, or `{ unavailable }` when there is no Redis to use. */
export async function startRedis () {
  if (process.env.REDIS_URL) {
    const client = await ping(process.env.REDIS_URL, Date.now() + 5_000)
    return { url: process.env.REDIS_URL, client, version: await version(client), own: false, stop: async () => { await client.quit() } }
  }
  if (!redisServerAvailable()) return { unavailable: 'redis-server not found and REDIS_URL not set' }
  const port = await freePort()
  const child = track(spawn('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--protected-mode', 'yes', '--loglevel', 'warning'
  ], { stdio: 'ignore' }))
  const url = `redis://127.0.0.1:${port}`
  const client = await ping(url, Date.now() + 10_000)
  const stop = async () => {
    await client.quit().catch(() => {})
    if (child.exitCode !== null) return
    await new Promise((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
      child.once('exit', () => { clearTimeout(timer); resolve() })
      child.kill('SIGTERM')
    })
  }
  return { url, client, version: await version(client), own: true, stop }
}

async function version (client) {
  const info = await client.info('server')
  return /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown'
}

/**
 * CPU seconds redis-server has used (user + system), from its own `INFO cpu` (getrusage, in
 * microseconds): /proc counts in clock ticks of 10 ms, which at a few µs per request and a few
 * thousand requests per cell is a step of about 1 µs per request.
 */
export async function redisCpuSeconds (client) {
  const info = await client.info('cpu')
  return Number(/used_cpu_sys:([\d.]+)/.exec(info)[1]) + Number(/used_cpu_user:([\d.]+)/.exec(info)[1])
}

/** `INFO commandstats` and the read, command and byte counters of `INFO stats`, as numbers. */
export async function counters (client) {
  const text = await client.info('all')
  const commands = {}
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) commands[m[1]] = Number(m[2])
  const stat = (name) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(text)?.[1] ?? NaN)
  return {
    commands,
    reads: stat('total_reads_processed'),
    processed: stat('total_commands_processed'),
    bytesIn: stat('total_net_input_bytes'),
    bytesOut: stat('total_net_output_bytes')
  }
}

/**
 * What `requests` requests cost Redis, from two `counters()` snapshots taken around them by
 * the same client: commands per request (including those a script runs), by command, and
 * round trips per request (socket reads Redis processed; the requests run one at a time).
 */
export function perRequest (before, after, requests) {
  const byCommand = {}
  let total = 0
  for (const [name, calls] of Object.entries(after.commands)) {
    if (name === 'info') continue // the snapshot itself
    const delta = calls - (before.commands[name] ?? 0)
    if (delta > 0) {
      byCommand[name] = delta / requests
      total += delta
    }
  }
  // The second snapshot's INFO is one read of its own.
  const reads = after.reads - before.reads - 1
  return {
    commands: total / requests,
    roundTrips: reads / requests,
    byCommand,
    // The bytes the snapshots' own INFO calls moved are a few hundred, spread over the requests.
    bytesIn: (after.bytesIn - before.bytesIn) / requests,
    bytesOut: (after.bytesOut - before.bytesOut) / requests
  }
}
