// This build of the package against another checkout of it (`--base DIR`, built, with its own
// node_modules), at a fixed offered load on the memory store (or `--scenario`): server CPU per
// request on the read route, the write route and a route that never touches request.session
// (GET /plain), one hot session. Both servers run this bench's server.js and routes; each imports
// its own build. A Redis scenario (ours-redis-node, ours-redis-ioredis) gets one redis-server for
// both, and the report gives the Redis CPU per request of each cell too (INFO cpu).
// It answers "did this change make a route slower?" where maximum throughput cannot (it swings
// by half between rounds on a shared machine; CPU per request at a fixed load moves by a few %).
//
//   git worktree add ../base <ref> && (cd ../base && npm ci)
//   npm run build && node bench/builds.js --base ../base [--rate 2000 --duration 6 --rounds 5 --scenario ours-redis-node]
import { cpSync, mkdtempSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { seedSessions } from './lib/load.js'
import { cpuSeconds, killAll } from './lib/procs.js'
import { redisCpuSeconds, startRedis } from './lib/redis.js'

const { values } = parseArgs({
  options: {
    base: { type: 'string' },
    rate: { type: 'string', default: '2000' },
    duration: { type: 'string', default: '6' },
    rounds: { type: 'string', default: '5' },
    connections: { type: 'string', default: '50' },
    scenario: { type: 'string', default: 'ours-memory' }
  }
})
if (values.base === undefined) throw new Error('--base DIR: the other checkout (built, with node_modules)')
const RATE = Number(values.rate)
const DURATION = Number(values.duration)
const ROUNDS = Number(values.rounds)
const ROUTES = [['GET', '/counter', 'read'], ['POST', '/counter', 'write'], ['GET', '/plain', 'no session']]
const redis = values.scenario.includes('redis') ? await startRedis() : undefined
if (redis?.unavailable !== undefined) throw new Error(redis.unavailable)
const redisCpu = async () => redis === undefined ? 0 : await redisCpuSeconds(redis.client)

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

/**
 * This bench's directory, copied into `checkout` (under a temporary name), so that its server
 * imports that checkout's build by the package's own name (and that checkout's node_modules).
 */
function benchIn (checkout) {
  const dir = mkdtempSync(join(resolve(checkout), '.bench-builds-'))
  cpSync(new URL('.', import.meta.url), join(dir, 'bench'), { recursive: true, filter: (src) => !src.includes('/results') })
  return dir
}

async function start (label, checkout) {
  const dir = checkout === undefined ? undefined : benchIn(checkout)
  const procs = await import(dir === undefined ? './lib/procs.js' : join(dir, 'bench/lib/procs.js'))
  const server = await procs.startServer(values.scenario, { env: redis === undefined ? {} : { REDIS_URL: redis.url } })
  if (server.port === undefined) throw new Error(`${label}: ${server.error ?? server.unavailable}`)
  const [cookie] = await seedSessions(server.port, 1)
  for (const [method, path] of ROUTES) {
    await autocannon({ url: `http://127.0.0.1:${server.port}${path}`, method, headers: { cookie }, connections: 10, amount: 3000 })
  }
  return { label, server, cookie, dir }
}

async function measure ({ server, cookie }, method, path) {
  const c0 = cpuSeconds(server.pid)
  const r0 = await redisCpu()
  const result = await autocannon({
    url: `http://127.0.0.1:${server.port}${path}`,
    method,
    headers: { cookie },
    connections: Number(values.connections),
    overallRate: RATE,
    duration: DURATION,
    timeout: 10
  })
  const served = result.requests.total
  return {
    us: (cpuSeconds(server.pid) - c0) / served * 1e6,
    redisUs: (await redisCpu() - r0) / served * 1e6,
    reqs: served / result.duration,
    errors: result.errors + result.non2xx
  }
}

async function main () {
  const builds = [await start('base', values.base), await start('this build')]
  const runs = new Map()
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const [method, path, name] of ROUTES) {
        // The order of the two builds alternates between rounds.
        for (const build of round % 2 === 0 ? builds : [...builds].reverse()) {
          const m = await measure(build, method, path)
          const key = `${build.label}|${name}`
          runs.set(key, [...(runs.get(key) ?? []), m])
          process.stderr.write(`round ${round + 1} ${build.label} ${name}: ${m.reqs.toFixed(0)} req/s, ${m.us.toFixed(1)} µs` +
            `${redis === undefined ? '' : `, Redis ${m.redisUs.toFixed(2)} µs`}, errors ${m.errors}\n`)
        }
      }
    }
  } finally {
    for (const build of builds) {
      await build.server.stop()
      if (build.dir !== undefined) rmSync(build.dir, { recursive: true, force: true })
    }
    await redis?.stop()
  }
  const lines = [
    `# ${values.scenario}: this build against ${values.base}`,
    '',
    `- ${new Date().toISOString()}, Node ${process.version}; ${RATE} req/s offered, ${values.connections} connections, one hot session, ${DURATION} s per cell, ${ROUNDS} rounds interleaved; medians of server CPU (utime + stime) per request`,
    '',
    '| route | base µs/req | this build µs/req | ratio of medians | median of the rounds\' ratios (min–max) | rounds (base / this) |',
    '|---|---:|---:|---:|---:|---|'
  ]
  const row = (name, what, key) => {
    const base = runs.get(`base|${name}`).map((m) => m[key])
    const ours = runs.get(`this build|${name}`).map((m) => m[key])
    // The two builds of one round ran back to back: their ratio leaves out what drifts between rounds.
    const ratios = ours.map((x, i) => x / base[i])
    const digits = key === 'us' ? 1 : 2
    const fmt = (xs) => xs.map((x) => x.toFixed(digits)).join(' ')
    lines.push(`| ${what} | ${median(base).toFixed(digits)} | ${median(ours).toFixed(digits)} | ${(median(ours) / median(base)).toFixed(3)} | ` +
      `${median(ratios).toFixed(3)} (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}) | ${fmt(base)} / ${fmt(ours)} |`)
  }
  for (const [, , name] of ROUTES) row(name, name, 'us')
  if (redis !== undefined) {
    lines.push('', '| route: Redis CPU per request (INFO cpu) | base µs/req | this build µs/req | ratio of medians | median of the rounds\' ratios (min–max) | rounds (base / this) |',
      '|---|---:|---:|---:|---:|---|')
    for (const [, , name] of ROUTES.filter(([, path]) => path === '/counter')) row(name, name, 'redisUs')
  }
  process.stdout.write(lines.join('\n') + '\n')
}

main().then(() => process.exit(0), (err) => {
  console.error(err)
  killAll()
  process.exit(1)
})
