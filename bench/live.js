// npm run bench:live [-- --users 1000 --rounds 3 --runs 200 --baseline DIR --out FILE]
// Live connections ending at revocation (issue 14). Two instances of the example app on one
// Redis: B (its own process, --expose-gc) holds one SSE stream (GET /devices/events, which
// follows its session with onRevoked) per user; A, in this process, runs deleteAll of every
// user at once. Measured: the time until the last stream closed on the client side, and B's
// heap before, while and after. Then the cost of deleteAll of one user with 100 sessions, with
// nobody subscribed and with B listening; with --baseline DIR (the root of a built checkout of
// another commit, e.g. the one before the revocation work) the same on that build too.
import { execFileSync, fork } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { get } from 'node:http'
import os from 'node:os'
import { join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import Fastify from 'fastify'
import Redis from 'ioredis'
import { buildApp } from '../examples/app.js'
import { childEnv, firstMessage, killAll, track } from './lib/procs.js'
import { startRedis } from './lib/redis.js'
import { pool } from './lib/stores.js'
import { fmtInt, fmtNum, median } from './lib/stats.js'

const PREFIX = 'live:'
const PER_USER = 100

/** Instance B: the example app on Redis, over real HTTP; answers the bench over IPC. */
async function instanceB (url) {
  const app = await buildApp({ store: 'redis', storeOptions: { url, prefix: PREFIX } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  let heard = 0
  const listener = () => { heard++ }
  process.on('message', async ({ op }) => {
    if (op === 'heap') {
      for (let i = 0; i < 3; i++) global.gc()
      process.send({ heapUsed: process.memoryUsage().heapUsed })
    } else if (op === 'listen') {
      app.sessions.on('revoked', listener)
      process.send({ ok: true })
    } else if (op === 'count') {
      process.send({ heard })
    } else if (op === 'unlisten') {
      app.sessions.off('revoked', listener)
      process.send({ heard })
    } else if (op === 'close') {
      await app.close()
      process.exit(0)
    }
  })
  process.send({ port: app.server.address().port })
}

function ask (child, op) {
  const answer = firstMessage(child, 30_000, `instance B (${op})`)
  child.send({ op })
  return answer
}

async function until (what, check, ms = 10_000) {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

function percentile (values, p) {
  const v = [...values].sort((a, b) => a - b)
  return v.length === 0 ? null : v[Math.min(v.length - 1, Math.ceil(p * v.length) - 1)]
}

const mib = (bytes) => bytes / 2 ** 20

/** Signs `user` in on B through the login form; the `sid=…` pair of its cookie. */
async function login (base, user) {
  const res = await fetch(`${base}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'bench' },
    body: new URLSearchParams({ name: user, remember: 'yes' }).toString()
  })
  const cookie = res.headers.getSetCookie().find((c) => c.startsWith('sid='))
  if (res.status !== 303 || cookie === undefined) throw new Error(`login of ${user}: ${res.status}`)
  return cookie.split(';')[0]
}

/** Opens the devices page's stream; resolves once it is live, with `ended` (the time it closed, and whether the sign-out came first). */
function openStream (base, cookie) {
  return new Promise((resolve, reject) => {
    const req = get(`${base}/devices/events`, { agent: false, headers: { cookie, accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`stream: ${res.statusCode}`))
      let text = ''
      let live = false
      const ended = new Promise((resolve) => {
        res.once('close', () => resolve({ at: performance.now(), signedOut: text.includes('event: signed-out\ndata: deleteAll\n') }))
      })
      res.setEncoding('utf8').on('data', (chunk) => {
        text += chunk
        if (!live && text.includes(': live\n\n')) {
          live = true
          resolve({ ended })
        }
      })
    })
    req.once('error', reject)
  })
}

async function liveRound (round, { users, base, a, b, admin }) {
  const subscribers = async () => (await admin.pubsub('NUMSUB', `${PREFIX}revoked`))[1]
  const names = Array.from({ length: users }, (_, i) => `r${round}-user-${i}`)
  const cookies = new Array(users)
  await pool(0, users, 32, async (i) => { cookies[i] = await login(base, names[i]) })
  const heapBefore = (await ask(b, 'heap')).heapUsed
  const subscribedBefore = await subscribers()

  const streams = new Array(users)
  await pool(0, users, 64, async (i) => { streams[i] = await openStream(base, cookies[i]) })
  // A revocation published before B's SUBSCRIBE is in place is not heard (see the report).
  await until('B subscribed', async () => (await subscribers()) === 1)
  const heapOpen = (await ask(b, 'heap')).heapUsed
  const subscribedOpen = await subscribers()

  const start = performance.now()
  const deleted = await Promise.all(names.map((name) => a.sessions.deleteAll(name)))
  const deleteAllsDone = performance.now() - start
  const ends = await Promise.race([
    Promise.all(streams.map((s) => s.ended)),
    new Promise((resolve, reject) => setTimeout(() => reject(new Error('streams still open 30 s after the deleteAlls')), 30_000).unref())
  ])
  const closeTimes = ends.map((e) => e.at - start)
  const signedOut = ends.filter((e) => e.signedOut).length
  if (deleted.some((n) => n !== 1)) throw new Error('a deleteAll did not delete exactly one session')

  await until('B unsubscribed', async () => (await subscribers()) === 0)
  const heapAfter = (await ask(b, 'heap')).heapUsed
  return {
    round,
    users,
    deleteAllsDone,
    lastClosed: Math.max(...closeTimes),
    medianClosed: median(closeTimes),
    p99Closed: percentile(closeTimes, 0.99),
    signedOut,
    subscribers: { before: subscribedBefore, open: subscribedOpen, after: await subscribers() },
    heap: { before: heapBefore, open: heapOpen, after: heapAfter }
  }
}

/** An instance of the plugin `pkg` (a module namespace) on the bench's Redis, with a login route. */
async function costApp (pkg, url) {
  const app = Fastify()
  await app.register(pkg.default, { store: 'redis', storeOptions: { url, prefix: PREFIX }, maxSessionsPerUser: PER_USER })
  app.post('/login', async (req) => {
    await req.session.login(req.body.user)
    return { ok: true }
  })
  await app.ready()
  return app
}

/** Microseconds of each of `runs` deleteAlls of a user with PER_USER sessions. */
async function deleteAllCost (app, runs, tag) {
  const times = []
  for (let i = 0; i < runs; i++) {
    const user = `cost-${tag}-${i}`
    await Promise.all(Array.from({ length: PER_USER }, () => app.inject({ method: 'POST', url: '/login', payload: { user } })))
    const t0 = performance.now()
    const n = await app.sessions.deleteAll(user)
    times.push((performance.now() - t0) * 1000)
    if (n !== PER_USER) throw new Error(`deleteAll removed ${n} sessions instead of ${PER_USER}`)
  }
  return times
}

async function main () {
  const { values: args } = parseArgs({
    options: {
      users: { type: 'string', default: '1000' },
      rounds: { type: 'string', default: '3' },
      runs: { type: 'string', default: '200' },
      baseline: { type: 'string' },
      out: { type: 'string' }
    }
  })
  const users = Number(args.users)
  const rounds = Number(args.rounds)
  const runs = Number(args.runs)
  const out = args.out !== undefined ? resolve(args.out) : fileURLToPath(new URL('./results/live.md', import.meta.url))
  const t0 = performance.now()
  const log = (msg) => process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1)} s] ${msg}\n`)
  process.once('exit', killAll)
  for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => { killAll(); process.exit(130) })

  const redis = await startRedis()
  if (redis.unavailable !== undefined) {
    console.error(`bench:live needs Redis: ${redis.unavailable}`)
    process.exit(1)
  }
  const b = track(fork(fileURLToPath(import.meta.url), ['--instance-b', redis.url], {
    env: childEnv(),
    execArgv: ['--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  }))
  const { port } = await firstMessage(b, 30_000, 'instance B')
  const base = `http://127.0.0.1:${port}`
  const a = await buildApp({ store: 'redis', storeOptions: { url: redis.url, prefix: PREFIX } })
  await a.ready()
  const admin = new Redis(redis.url)

  const live = []
  for (let round = 1; round <= rounds; round++) {
    log(`round ${round}: ${users} users sign in on B, each opens a stream there, A runs deleteAll of all of them`)
    live.push(await liveRound(round, { users, base, a, b, admin }))
  }

  log(`deleteAll of one user with ${PER_USER} sessions, ${runs} runs each way`)
  const pkg = await import('fastify-user-sessions')
  const ours = await costApp(pkg, redis.url)
  let baseline
  const cost = {}
  if (args.baseline !== undefined) {
    cost.baselineDir = resolve(args.baseline)
    baseline = await costApp(await import(pathToFileURL(join(cost.baselineDir, 'dist/index.js')).href), redis.url)
    cost.baseline = []
  }
  const subscribed = async () => (await admin.pubsub('NUMSUB', `${PREFIX}revoked`))[1]
  // Alternating blocks, so that a drift of the machine touches every variant alike.
  const block = Math.max(1, Math.floor(runs / 4))
  cost.nobody = []
  cost.subscribed = []
  for (let done = 0; done < runs; done += block) {
    const n = Math.min(block, runs - done)
    cost.nobody.push(...await deleteAllCost(ours, n, `nobody-${done}`))
    await ask(b, 'listen')
    await until('B subscribed', async () => (await subscribed()) === 1)
    cost.subscribed.push(...await deleteAllCost(ours, n, `subscribed-${done}`))
    await until('B heard them all', async () => (await ask(b, 'count')).heard === cost.subscribed.length * PER_USER, 5000)
      .catch(() => {})
    const { heard } = await ask(b, 'unlisten')
    cost.heard = heard
    await until('B unsubscribed', async () => (await subscribed()) === 0)
    if (baseline !== undefined) cost.baseline.push(...await deleteAllCost(baseline, n, `baseline-${done}`))
  }
  await ours.close()
  await baseline?.close()

  await a.close()
  await ask(b, 'close').catch(() => {})
  await admin.quit()
  await redis.stop()

  const md = report({ users, rounds, runs, live, cost, redisVersion: redis.version })
  process.stdout.write(md)
  writeFileSync(out, md)
  log(`written to ${out}`)
}

/** The short commit of a checkout, for the report (never its path). */
function commitOf (dir) {
  try {
    return execFileSync('git', ['-C', dir, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return 'another commit'
  }
}

function report ({ users, rounds, runs, live, cost, redisVersion }) {
  const cpus = os.cpus()
  const lines = [
    '# Live connections ending at revocation',
    '',
    `- command: \`npm run bench:live\` (\`node bench/live.js --users ${users} --rounds ${rounds} --runs ${runs}${cost.baselineDir === undefined ? '' : ' --baseline <dir>'}\`)`,
    `- machine: ${cpus[0]?.model.replace(/\s+/g, ' ').trim()}, ${cpus.length} cores; Node.js ${process.version}; Redis ${redisVersion}; everything on 127.0.0.1`,
    '- A and B: the example app (`examples/app.js`) on one Redis; B in its own process. Each user signs in on B and opens one',
    '  `GET /devices/events` stream there (it follows its session with `onRevoked`); then A runs `deleteAll` of every user at once',
    '  (`Promise.all`). Times from the start of the deleteAlls to each stream\'s close on the client side. B\'s heap after `gc()`,',
    '  with the sessions signed in and no stream open, with every stream open, and once they have all closed.',
    '',
    '| round | streams | deleteAlls resolved | median close | p99 close | last closed | signed-out events | B subscribed (before / open / after) | B heap before | B heap open | B heap after |',
    '|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|'
  ]
  for (const r of live) {
    lines.push(`| ${r.round} | ${fmtInt(r.users)} | ${fmtInt(r.deleteAllsDone)} ms | ${fmtInt(r.medianClosed)} ms | ${fmtInt(r.p99Closed)} ms | ${fmtInt(r.lastClosed)} ms | ${fmtInt(r.signedOut)} | ` +
      `${r.subscribers.before} / ${r.subscribers.open} / ${r.subscribers.after} | ${fmtNum(mib(r.heap.before))} MiB | ${fmtNum(mib(r.heap.open))} MiB | ${fmtNum(mib(r.heap.after))} MiB |`)
  }
  const perStream = live.map((r) => (r.heap.open - r.heap.before) / r.users)
  lines.push('', `Heap held per open stream on B (connection, request, reply and follow): about ${fmtNum(median(perStream) / 1024)} KiB.`, '')
  lines.push(`## deleteAll of one user with ${PER_USER} sessions (maxSessionsPerUser ${PER_USER}), on Redis, ${runs} runs each`, '')
  lines.push('| | median | p99 |', '|---|---:|---:|')
  const row = (name, times) => lines.push(`| ${name} | ${fmtInt(median(times))} µs | ${fmtInt(percentile(times, 0.99))} µs |`)
  row('nobody subscribed', cost.nobody)
  row(`another instance listening (\`app.sessions.on('revoked')\`; it heard ${fmtInt(cost.heard)} of ${fmtInt(cost.subscribed.length * PER_USER)} revocations)`, cost.subscribed)
  if (cost.baseline !== undefined) row(`the build of ${commitOf(cost.baselineDir)} (--baseline)`, cost.baseline)
  lines.push('')
  return lines.join('\n')
}

if (process.argv[2] === '--instance-b') await instanceB(process.argv[3])
else await main()
