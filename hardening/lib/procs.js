// Child processes of the hardening scripts: the server under test (one Node process per
// target, so that a crash is seen as an exit and its memory is its own) and redis-server.
// Each is tracked by pid and killed by pid on every way out.
import { fork } from 'node:child_process'
import { createServer } from 'node:net'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

export const HOST = '127.0.0.1'
const children = new Set()

export function track (child) {
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}

/** Kills what is still running; called on every way out. */
export function killAll () {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
  children.clear()
}
process.on('exit', killAll)
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    killAll()
    process.exit(130)
  })
}

/**
 * The environment of a child: the parent's, less what a test runner put there (coverage
 * collection, loaders), so that the scripts never count towards, or run under, the suite's tooling.
 */
/** Runs a script's main(), exits with its code (2 when it throws), and never leaves a child behind. */
export function runMain (main) {
  main().then((code) => {
    killAll()
    process.exit(code)
  }, (err) => {
    console.error(err)
    killAll()
    process.exit(2)
  })
}

export function childEnv (extra = {}) {
  const env = { ...process.env, ...extra }
  for (const key of Object.keys(env)) {
    if (key === 'NODE_OPTIONS' || key === 'NODE_V8_COVERAGE' || key.startsWith('TAP') || key.startsWith('_TAPJS')) delete env[key]
  }
  return env
}

export async function freePort () {
  const server = createServer()
  await new Promise((resolve, reject) => server.listen(0, HOST, resolve).once('error', reject))
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}

const SERVER = fileURLToPath(new URL('./server.js', import.meta.url))

/**
 * Starts hardening/lib/server.js with `config` and resolves `{ port, pid, child, lines, stop }`,
 * or `{ unavailable }` when the store is not registered. `lines` counts the server's log lines
 * by level and message; `onLine` sees each parsed line. `exited` resolves with the exit of the
 * child; `crashed()` is true when it exited without being asked to.
 */
export async function startServer (config, { onLine } = {}) {
  const child = track(fork(SERVER, [JSON.stringify(config)], {
    execArgv: ['--expose-gc', ...(config.maxOldSpaceMb ? [`--max-old-space-size=${config.maxOldSpaceMb}`] : [])],
    env: childEnv(),
    stdio: ['ignore', 'pipe', 'pipe', 'ipc']
  }))
  const lines = { total: 0, byKey: new Map(), other: 0 }
  let stderr = ''
  createInterface({ input: child.stdout }).on('line', (text) => {
    let line
    try {
      line = JSON.parse(text)
    } catch {
      lines.other++
      return
    }
    lines.total++
    const key = `${line.level}: ${line.msg}`
    lines.byKey.set(key, (lines.byKey.get(key) ?? 0) + 1)
    onLine?.(line)
  })
  child.stderr.on('data', (chunk) => { stderr = (stderr + chunk.toString()).slice(-4000) })
  let stopping = false
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  const first = await new Promise((resolve) => {
    child.once('message', resolve)
    exited.then(({ code, signal }) => resolve({ error: `server exited with ${code ?? signal} before listening: ${stderr.slice(-1000)}` }))
  })
  if (first.error !== undefined) throw new Error(first.error)
  if (first.unavailable !== undefined) {
    await exited
    return { unavailable: first.unavailable }
  }
  return {
    port: first.port,
    pid: child.pid,
    child,
    lines,
    exited,
    stderr: () => stderr,
    crashed: () => !stopping && (child.exitCode !== null || child.signalCode !== null),
    async stop () {
      stopping = true
      if (child.exitCode !== null || child.signalCode !== null) return
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      child.kill('SIGTERM')
      await exited
      clearTimeout(timer)
    }
  }
}
