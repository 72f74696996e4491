// Child processes of the bench: the servers under load, the measuring scripts, redis-server.
// Each is tracked by pid and stopped by pid when the bench ends, however it ends.
import { execFileSync, fork } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'

const children = new Set()

/** Kills what is still running; called on every way out. */
export function killAll () {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
  children.clear()
}

export function track (child) {
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}

/**
 * The environment of a child: the parent's, less what a test runner put there (coverage
 * collection, loaders), so that the bench never counts towards, or runs under, the suite's tooling.
 */
export function childEnv (extra = {}) {
  const env = { ...process.env, ...extra }
  for (const key of Object.keys(env)) {
    if (key === 'NODE_OPTIONS' || key === 'NODE_V8_COVERAGE' || key.startsWith('TAP') || key.startsWith('_TAPJS')) delete env[key]
  }
  return env
}

let clockTicks
/** Clock ticks per second of /proc/<pid>/stat. */
export function clockTicksPerSecond () {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
    } catch {
      clockTicks = 100
    }
  }
  return clockTicks
}

/** CPU time (user + system, all threads) a process has used so far, in seconds; null off Linux. */
export function cpuSeconds (pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name, which may hold spaces: state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond()
  } catch {
    return null
  }
}

export async function freePort () {
  const server = createServer()
  await new Promise((resolve, reject) => server.listen(0, '127.0.0.1', resolve).once('error', reject))
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Waits for the first IPC message of a child, or its exit, or the time limit. */
export function firstMessage (child, timeoutMs, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { cleanup(); child.kill('SIGKILL'); reject(new Error(`${what}: no answer within ${timeoutMs} ms`)) }, timeoutMs)
    const onMessage = (msg) => { cleanup(); resolve(msg) }
    const onExit = (code, signal) => { cleanup(); reject(new Error(`${what}: exited (${signal ?? code}) before answering`)) }
    function cleanup () {
      clearTimeout(timer)
      child.off('message', onMessage)
      child.off('exit', onExit)
    }
    child.on('message', onMessage)
    child.on('exit', onExit)
  })
}

const serverScript = fileURLToPath(new URL('../server.js', import.meta.url))

/**
 * Starts one scenario's server. Resolves `{ port, pid, stop }`, or `{ unavailable }` when the
 * scenario's store is not registered in this build of the package.
 */
export async function startServer (scenario, { env = {}, execArgv = [], timeoutMs = 30_000 } = {}) {
  const child = track(fork(serverScript, [scenario], {
    env: childEnv(env),
    execArgv,
    stdio: ['ignore', 'ignore', 'pipe', 'ipc']
  }))
  let stderr = ''
  child.stderr.on('data', (chunk) => { if (stderr.length < 4000) stderr += chunk })
  const msg = await firstMessage(child, timeoutMs, `server ${scenario}`).catch((err) => ({ error: err.message }))
  if (msg.unavailable !== undefined) return { unavailable: msg.unavailable }
  if (msg.error !== undefined) {
    child.kill('SIGKILL')
    return { error: msg.error + (stderr === '' ? '' : `\n${stderr.trim().split('\n').slice(0, 5).join('\n')}`) }
  }
  const stop = () => new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    child.once('exit', () => { clearTimeout(timer); resolve() })
    child.kill('SIGTERM')
  })
  return { port: msg.port, pid: child.pid, stop }
}

/** Runs a measuring script (bench/<name>.js) in its own process; resolves the JSON it sends. */
export async function runScript (name, args, { execArgv = [], timeoutMs }) {
  const child = track(fork(fileURLToPath(new URL(`../${name}`, import.meta.url)), args, {
    env: childEnv(),
    execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  }))
  const msg = await firstMessage(child, timeoutMs, name)
  await new Promise((resolve) => {
    if (child.exitCode !== null) return resolve()
    child.once('exit', resolve)
    setTimeout(() => { child.kill('SIGKILL') }, 10_000).unref()
  })
  if (msg.error !== undefined) throw new Error(`${name}: ${msg.error}`)
  return msg
}
