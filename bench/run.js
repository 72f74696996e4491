// npm run bench [-- --quick] [-- --rounds N --duration S --connections C --only a,b --no-1m --skip-extras --out DIR]
// npm run bench -- --profile ours-memory [--route read|write]
// Every server runs in its own process on 127.0.0.1; autocannon loads them in turn, interleaved
// over several rounds; the report goes to stdout, <out>/latest.md and <out>/chart.svg.
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { dummyCookie, load, seedSessions, sequential } from './lib/load.js'
import { killAll, runScript, startServer } from './lib/procs.js'
import { counters, perRequest, startRedis } from './lib/redis.js'
import { report } from './lib/report.js'
import { byName, cells as cellList, key, REDIS_COST_SCENARIOS, SCENARIOS } from './lib/scenarios.js'
import { fmtInt, fmtNum } from './lib/stats.js'
import { chart } from './lib/svg.js'
import { profileScenario } from './lib/profiling.js'

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    duration: { type: 'string' },
    connections: { type: 'string' },
    only: { type: 'string' },
    out: { type: 'string' },
    'no-1m': { type: 'boolean', default: false },
    'skip-extras': { type: 'boolean', default: false },
    profile: { type: 'string' },
    route: { type: 'string' }
  }
})

const QUICK = {
  rounds: 1,
  duration: 0.5,
  warmup: 0,
  connections: 16,
  sessions: 200, // seeding 1,000 sessions into each of the servers is most of a quick run
  redisCostRequests: 100,
  getAll: { sizes: [1000, 5000], calls: 20, scanCalls: 2, budgetMs: 2000 },
  memory: { storeSizes: [5000], loggedIn: 5000, appSize: 300, cookieless: 300 },
  limitSeconds: 170
}
const FULL = {
  rounds: 5,
  duration: 5,
  warmup: 2,
  connections: 32,
  sessions: 1000,
  redisCostRequests: 5000,
  getAll: { sizes: [10_000, 100_000, 1_000_000], calls: 200, scanCalls: 5, budgetMs: 20_000 },
  memory: { storeSizes: [100_000, 1_000_000], loggedIn: 50_000, appSize: 50_000, cookieless: 20_000 },
  limitSeconds: 3600
}
const config = { ...(args.quick ? QUICK : FULL) }
if (args.rounds !== undefined) config.rounds = Number(args.rounds)
if (args.duration !== undefined) config.duration = Number(args.duration)
if (args.connections !== undefined) config.connections = Number(args.connections)
if (args['no-1m']) config.getAll = { ...config.getAll, sizes: config.getAll.sizes.filter((n) => n < 1_000_000) }
if (args['no-1m']) config.memory = { ...config.memory, storeSizes: config.memory.storeSizes.filter((n) => n < 1_000_000) }
// bare Fastify and the floors of the scenarios selected always run: the ratios need them.
const only = args.only === undefined
  ? undefined
  : [...new Set(args.only.split(',').flatMap((name) => [name, ...(byName[name]?.floors ?? [])]))]
const outDir = args.out !== undefined ? resolve(args.out) : fileURLToPath(new URL(args.quick ? './results/quick.tmp/' : './results/', import.meta.url))

const t0 = performance.now()
const log = (msg) => process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1)} s] ${msg}\n`)

/** The commit measured, and whether lib/ had uncommitted changes (the build measures the work tree). */
function revision () {
  try {
    const git = (...a) => execFileSync('git', a, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    const dirty = git('status', '--porcelain', '--', 'lib') !== ''
    return git('rev-parse', '--short', 'HEAD') + (dirty ? ' with uncommitted changes in lib/' : '')
  } catch {
    return 'unknown'
  }
}

function versions () {
  const names = ['fastify', '@fastify/cookie', '@fastify/session', 'connect-redis', 'ioredis', '@fastify/secure-session', 'sodium-native', 'autocannon']
  return names.map((name) => {
    try {
      return `${name} ${JSON.parse(readFileSync(new URL(`../node_modules/${name}/package.json`, import.meta.url), 'utf8')).version}`
    } catch {
      return `${name} ?`
    }
  }).join(', ')
}

function machine () {
  const cpus = os.cpus()
  return {
    cpu: cpus[0]?.model.replace(/\s+/g, ' ').trim() ?? 'unknown CPU',
    cores: cpus.length,
    memory: `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    loadBefore: os.loadavg().map((x) => x.toFixed(2)).join(' ')
  }
}

/** Starts the servers that can run; marks the others n/a (or failed) in `cells`. */
async function startServers (redis, cells) {
  const { knownStores } = await import('fastify-user-sessions')
  const known = knownStores()
  const servers = {}
  let failures = 0
  const mark = (name, status, note) => {
    for (const c of cellList()) if (c.scenario === name) cells[key(c.scenario, c.route, c.mode)] = { ...c, status, note, samples: [] }
  }
  const eligible = []
  for (const s of SCENARIOS) {
    if (only !== undefined && !only.includes(s.name) && s.name !== 'bare') mark(s.name, 'n/a', 'n/a (not selected)')
    else if (s.store !== undefined && !known.includes(s.store)) mark(s.name, 'n/a', 'n/a (store not available)')
    else if (s.redis && redis.unavailable !== undefined) mark(s.name, 'n/a', `n/a (${redis.unavailable})`)
    else eligible.push(s)
  }
  // Start-up is mostly module loading: overlap it; seed one server at a time.
  const env = redis.url === undefined ? {} : { REDIS_URL: redis.url }
  const started = await Promise.all(eligible.map((s) => startServer(s.name, { env })))
  for (const [i, s] of eligible.entries()) {
    const server = started[i]
    if (server.unavailable !== undefined) { mark(s.name, 'n/a', 'n/a (store not available)'); continue }
    if (server.error !== undefined) {
      log(`${s.name}: failed to start: ${server.error}`)
      mark(s.name, 'failed', `failed to start: ${server.error.split('\n')[0]}`)
      failures++
      continue
    }
    try {
      const spread = s.sessions === false
        ? Array.from({ length: config.sessions }, dummyCookie)
        : await seedSessions(server.port, config.sessions)
      server.cookies = { hot: [spread[0]], spread }
    } catch (err) {
      log(`${s.name}: ${err.message}`)
      await server.stop()
      mark(s.name, 'failed', `failed: ${err.message}`)
      failures++
      continue
    }
    servers[s.name] = server
    mark(s.name, 'ok', '')
    log(`started ${s.name} (pid ${server.pid}, port ${server.port})`)
  }
  return { servers, failures }
}

function loadCell (server, c, extra) {
  return load({
    port: server.port,
    pid: server.pid,
    method: c.method,
    cookies: server.cookies[c.mode],
    connections: config.connections,
    ...extra
  })
}

async function redisCost (redis, servers) {
  const out = { requests: config.redisCostRequests }
  for (const name of REDIS_COST_SCENARIOS) {
    const server = servers[name]
    if (server === undefined) { out[name] = { note: 'n/a (not running)' }; continue }
    out[name] = {}
    for (const [route, method] of [['write', 'POST'], ['read', 'GET']]) {
      const before = await counters(redis.client)
      const r = await sequential({ port: server.port, method, cookies: server.cookies.spread, n: config.redisCostRequests })
      const after = await counters(redis.client)
      out[name][route] = perRequest(before, after, r.requests)
    }
  }
  return out
}

async function main () {
  const started = performance.now()
  const meta = {
    ...machine(),
    quick: args.quick,
    revision: revision(),
    versions: versions(),
    command: `npm run bench${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}`,
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    rounds: config.rounds,
    duration: config.duration,
    sessions: config.sessions,
    connections: config.connections
  }
  log(`Node.js ${process.version}, fastify-user-sessions at ${meta.revision}`)
  const redis = await startRedis().catch((err) => ({ unavailable: `Redis: ${err.message}` }))
  meta.redis = redis.unavailable === undefined ? `${redis.version}${redis.own ? ' (own redis-server)' : ' (REDIS_URL)'}` : redis.unavailable
  if (args.profile !== undefined) {
    await profileScenario({ scenario: args.profile, route: args.route, redis, config, outDir, log })
    await redis.stop?.()
    return 0
  }
  const run = { meta, cells: {} }
  const { servers, failures } = await startServers(redis, run.cells)
  let errors = failures
  const active = cellList().filter((c) => servers[c.scenario] !== undefined)

  if (config.warmup > 0) {
    log(`warm-up: ${active.length} cells × ${config.warmup} s`)
    for (const c of active) await loadCell(servers[c.scenario], c, { duration: config.warmup })
  }
  const loads = []
  for (let round = 1; round <= config.rounds; round++) {
    for (const c of active) {
      const sample = await loadCell(servers[c.scenario], c, { duration: config.duration })
      run.cells[key(c.scenario, c.route, c.mode)].samples.push(sample)
      if (sample.errors > 0) errors++
      log(`[round ${round}/${config.rounds}] ${c.scenario} ${c.route} ${c.mode}: ${fmtInt(sample.rps)} req/s, ` +
        `${fmtNum(sample.cpuUsPerReq)} µs CPU/req${sample.errors > 0 ? `, ${sample.errors} errors` : ''}`)
    }
    loads.push(os.loadavg()[0])
  }
  meta.loadDuring = loads.length === 0 ? '–' : `${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}`
  meta.loadAfter = os.loadavg().map((x) => x.toFixed(2)).join(' ')

  if (!args['skip-extras']) {
    if (redis.unavailable === undefined) {
      log('Redis cost per request')
      run.redisCost = await redisCost(redis, servers)
    } else run.redisCost = Object.fromEntries(REDIS_COST_SCENARIOS.map((name) => [name, { note: `n/a (${redis.unavailable})` }]))
  }
  for (const server of Object.values(servers)) await server.stop()

  if (!args['skip-extras']) {
    log(`getAll: sizes ${config.getAll.sizes.join(', ')}`)
    run.getAll = await runScript('getall.js', [JSON.stringify({
      ...config.getAll, redisUrl: redis.url, ownRedis: redis.own === true, ourDb: 2, scanDb: 3
    })], { timeoutMs: config.limitSeconds * 1000 })
    log('memory: heap per session, cookieless traffic')
    run.memory = await runScript('memory.js', [JSON.stringify(config.memory)], {
      execArgv: ['--expose-gc', '--max-old-space-size=8192'], timeoutMs: config.limitSeconds * 1000
    })
  }
  await redis.stop?.()
  meta.elapsed = (performance.now() - started) / 1000

  const md = report(run)
  mkdirSync(outDir, { recursive: true })
  writeFileSync(join(outDir, 'latest.md'), md)
  writeFileSync(join(outDir, 'chart.svg'), chart(run))
  writeFileSync(join(outDir, 'latest.json.tmp'), JSON.stringify(run, null, 1))
  process.stdout.write(md)
  log(`written to ${outDir}`)
  if (errors > 0) log(`${errors} scenario(s) failed or had errors`)
  return errors > 0 ? 1 : 0
}

const watchdog = setTimeout(() => {
  log(`bench: still running after ${config.limitSeconds} s; stopping`)
  killAll()
  process.exit(2)
}, config.limitSeconds * 1000)
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => { killAll(); process.exit(130) })

main().then((code) => {
  clearTimeout(watchdog)
  killAll()
  process.exitCode = code
}, (err) => {
  clearTimeout(watchdog)
  log(err.stack)
  killAll()
  process.exitCode = 1
})
