// A redis-server of the script's own on a free loopback port, with stop and start on the
// same port and data directory. With `persist`, every acknowledged write is on disk before
// the reply (appendfsync always), so a stop and a start lose nothing that was acknowledged.
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
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

function spawnRedis (port, dir, persist) {
  const durability = persist
    ? ['--appendonly', 'yes', '--appendfsync', 'always', '--save', '']
    : ['--appendonly', 'no', '--save', '']
  return new Promise((resolve, reject) => {
    const child = track(spawn('redis-server', ['--port', String(port), '--bind', HOST, '--protected-mode', 'yes',
      '--dir', dir, '--loglevel', 'notice', ...durability], { stdio: ['ignore', 'pipe', 'pipe'] }))
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
