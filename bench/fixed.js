// A fixed offered load: each scenario's server gets the same request rate, below every server's
// capacity, and the bench reports the CPU each request costs the server process and the Redis
// process (utime + stime from /proc), beside req/s. On a shared machine, CPU per request at a
// fixed load moves by a few percent where maximum throughput swings by half.
//
// The requests leave evenly spread over time (bench/lib/paced.js), as an app's do below its
// capacity. With --bursts, autocannon's `overallRate` sends them instead: each second's share
// as fast as the server answers, from the top of the second, then nothing until the next one.
// That is the server at full capacity a tenth of the time: Redis then reads the commands of a
// dozen requests per wake-up, so what a request's commands cost weighs more than it does below
// capacity (and as much as it does on a Redis that many app servers keep busy).
//
// What still moves a cell by a quarter here is the machine's other load, which comes and goes
// over seconds. With --together, every scenario gets a redis-server of its own, and each one
// runs at the same time as connect-redis, at the same rate: the two cells of a pair see the same
// moment of the machine, and their ratio leaves that out.
//
// With --browser, the session is made (and loaded) with desktop Chrome's User-Agent; without it,
// with none to speak of (`node`). With --signed-in, it is signed in (`POST /login`, the
// plugin's own sign-in), and ours keeps its ip and user agent for the device list; the floors,
// which have no users, keep their anonymous session.
//
//   npm run bench:fixed [-- --rate 2000 --duration 8 --rounds 3 --connections 50 --only a,b --together --bursts --browser --signed-in --routes write --out DIR]
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { CHROME_USER_AGENT, seedSessions, seedSignedIn } from './lib/load.js'
import { cpuSeconds, killAll, startServer } from './lib/procs.js'
import { counters, perRequest, redisCpuSeconds, startRedis } from './lib/redis.js'
import { REDIS_REF as REF, redisScenarios } from './lib/scenarios.js'
import { median } from './lib/stats.js'
import { paced } from './lib/paced.js'

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '2000' },
    duration: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
    only: { type: 'string' },
    together: { type: 'boolean', default: false },
    bursts: { type: 'boolean', default: false },
    browser: { type: 'boolean', default: false },
    'signed-in': { type: 'boolean', default: false },
    routes: { type: 'string', default: 'write,read' },
    out: { type: 'string', default: new URL('./results/', import.meta.url).pathname }
  }
})
const RATE = Number(values.rate)
const DURATION = Number(values.duration)
const ROUNDS = Number(values.rounds)
const CONNECTIONS = Number(values.connections)
const TOGETHER = values.together
const BURSTS = values.bursts
const HEADERS = values.browser ? { 'user-agent': CHROME_USER_AGENT } : {}
const METHODS = values.routes.split(',').map((route) => {
  if (route !== 'write' && route !== 'read') throw new Error(`--routes: write, read or both, not ${route}`)
  return route === 'write' ? 'POST' : 'GET'
})

const SCENARIOS = redisScenarios(values.only)

/**
 * Offers RATE for DURATION, paced or in autocannon's bursts (chosen once): resolves the
 * requests answered, those that failed or were not 2xx, and the seconds it took.
 */
const offer = BURSTS
  ? async (load) => {
    const r = await autocannon({ ...load, overallRate: RATE, timeout: 10 })
    return { served: r.requests.total, errors: r.errors + r.non2xx, duration: r.duration }
  }
  : async (load) => {
    const r = await paced({ ...load, rate: RATE })
    return { served: r.total, errors: r.errors + r.non2xx, duration: r.duration }
  }

/**
 * One run at the fixed rate: achieved req/s, server and Redis CPU per request (µs), and what
 * Redis did per request (commands by name, socket reads, bytes in and out).
 */
async function measure (server, redisClient, method, cookie) {
  const c0 = await counters(redisClient)
  const s0 = cpuSeconds(server.pid)
  const r0 = await redisCpuSeconds(redisClient)
  const { served, errors, duration } = await offer({
    url: `http://127.0.0.1:${server.port}/counter`, method, headers: { ...HEADERS, cookie }, connections: CONNECTIONS, duration: DURATION
  })
  const serverUs = (cpuSeconds(server.pid) - s0) / served * 1e6
  const redisUs = (await redisCpuSeconds(redisClient) - r0) / served * 1e6
  return { reqs: served / duration, serverUs, redisUs, errors, redis: perRequest(c0, await counters(redisClient), served) }
}

async function main () {
  if (TOGETHER && process.env.REDIS_URL) throw new Error('--together starts a redis-server per scenario: unset REDIS_URL')
  if (TOGETHER && !SCENARIOS.some(([name]) => name === REF)) throw new Error(`--together runs every scenario beside ${REF}: keep it in --only`)
  const redises = []
  const servers = {}
  for (const [name] of SCENARIOS) {
    if (redises.length === 0 || TOGETHER) {
      const redis = await startRedis()
      if (redis.unavailable !== undefined) throw new Error(redis.unavailable)
      redises.push(redis)
    }
    const redis = redises[redises.length - 1]
    const server = await startServer(name, { env: { REDIS_URL: redis.url } })
    if (server.port === undefined) throw new Error(`${name}: ${server.error ?? server.unavailable}`)
    const cookie = (values['signed-in'] ? await seedSignedIn(server.port, HEADERS) : undefined) ?? (await seedSessions(server.port, 1, 1, HEADERS))[0]
    // Warm-up: the JIT, the scripts loaded, the connections made.
    await autocannon({ url: `http://127.0.0.1:${server.port}/counter`, method: 'POST', headers: { ...HEADERS, cookie }, connections: 10, amount: 3000 })
    servers[name] = { server, cookie, redis }
  }
  const run = (name, method) => {
    const { server, cookie, redis } = servers[name]
    return measure(server, redis.client, method, cookie)
  }
  const log = (round, name, method, m, beside = '') => process.stderr.write(`round ${round + 1} ${name} ${method}${beside}: ` +
    `${m.reqs.toFixed(0)} req/s, server ${m.serverUs.toFixed(1)} µs, redis ${m.redisUs.toFixed(1)} µs, errors ${m.errors}\n`)
  // runs[name][method]: the scenario's cells; refs[name][method]: connect-redis's cell of the
  // same round (sequential) or of the same moment (--together), one per cell of runs.
  const runs = {}
  const refs = {}
  const push = (table, name, method, m) => ((table[name] ??= {})[method] ??= []).push(m)
  for (let round = 0; round < ROUNDS; round++) {
    // Every other round in reverse order, so that what drifts through a round weighs on every
    // scenario alike, and no scenario always follows the same one.
    const order = round % 2 === 0 ? SCENARIOS : [...SCENARIOS].reverse()
    for (const method of METHODS) {
      if (!TOGETHER) {
        for (const [name] of order) {
          const m = await run(name, method)
          push(runs, name, method, m)
          log(round, name, method, m)
        }
        continue
      }
      for (const [name] of order) {
        if (name === REF) continue
        const [m, ref] = await Promise.all([run(name, method), run(REF, method)])
        push(runs, name, method, m)
        push(refs, name, method, ref)
        push(runs, REF, method, ref)
        log(round, name, method, m)
        log(round, REF, method, ref, ` (beside ${name})`)
      }
    }
  }
  if (!TOGETHER && runs[REF] !== undefined) {
    for (const [name] of SCENARIOS) refs[name] = name === REF ? undefined : runs[REF]
  }
  for (const { server } of Object.values(servers)) await server.stop()
  for (const redis of redises) await redis.stop()
  const redis = redises[0]

  const versions = {}
  for (const pkg of ['redis', 'ioredis', 'connect-redis9', '@fastify/session', 'fastify']) {
    versions[pkg] = JSON.parse(readFileSync(new URL(`../node_modules/${pkg}/package.json`, import.meta.url), 'utf8')).version
  }
  const lines = [
    '# Fixed offered load: CPU per request',
    '',
    `- ${new Date().toISOString()}, Node ${process.version}, Redis ${redis.version}; ${versions.fastify ? `fastify ${versions.fastify}, ` : ''}redis ${versions.redis}, ioredis ${versions.ioredis}, connect-redis ${versions['connect-redis9']}, @fastify/session ${versions['@fastify/session']}`,
    `- ${RATE} req/s offered (${BURSTS ? 'autocannon overallRate: each second\'s share in a burst at its top' : 'spread evenly over each second: bench/lib/paced.js'}), ${CONNECTIONS} connections, one hot session${values['signed-in'] ? ' signed in (the floors: anonymous)' : ''}${values.browser ? ' made and loaded with desktop Chrome\'s User-Agent' : ''}, ${DURATION} s per cell, ${ROUNDS} rounds interleaved (every other round in reverse order); medians. CPU per request: the server process's utime + stime from /proc, redis-server's used_cpu_user + used_cpu_sys from its INFO, each divided by the requests served.`,
    TOGETHER
      ? '- `--together`: every scenario on a redis-server of its own, each cell run at the same time as a cell of connect-redis (both at the rate above); "vs connect-redis" is the median of the ratios of these pairs, then in how many pairs the scenario cost less. connect-redis\'s own row: the median of all its cells.'
      : '- "vs connect-redis": the median of the rounds\' ratios (a scenario against connect-redis in the same round, so that what drifts between rounds cancels out), then in how many rounds the scenario cost less.',
    `- \`npm run bench:fixed -- --rate ${RATE} --duration ${DURATION} --rounds ${ROUNDS}${TOGETHER ? ' --together' : ''}${BURSTS ? ' --bursts' : ''}${values.browser ? ' --browser' : ''}${values['signed-in'] ? ' --signed-in' : ''}${values.routes === 'write,read' ? '' : ` --routes ${values.routes}`}\``,
    '',
    '| scenario | route | req/s | server µs/req | server vs connect-redis | Redis µs/req | Redis vs connect-redis | errors |',
    '|---|---|---:|---:|---:|---:|---:|---:|'
  ]
  for (const method of METHODS) {
    for (const [name, label] of SCENARIOS) {
      const ms = runs[name][method]
      const cell = (key) => {
        const us = median(ms.map((m) => m[key]))
        if (runs[REF] === undefined) return `${us.toFixed(1)} | `
        if (name === REF) return `${us.toFixed(1)} | 1.00×`
        const ratios = ms.map((m, i) => m[key] / refs[name][method][i][key])
        return `${us.toFixed(1)} | ${median(ratios).toFixed(2)}× (${ratios.filter((r) => r < 1).length} of ${ratios.length} lower)`
      }
      lines.push(`| ${label} | ${method === 'POST' ? 'write' : 'read'} | ${median(ms.map((m) => m.reqs)).toFixed(0)} | ${cell('serverUs')} | ${cell('redisUs')} | ${ms.reduce((a, m) => a + m.errors, 0)} |`)
    }
  }
  // What Redis did per request, from INFO around each cell: the same for every round but for a
  // few commands the session's first request or an INFO left over; medians.
  lines.push('', 'What Redis did per request (medians of the cells; commands as INFO commandstats counts them, a script\'s own commands included):', '',
    '| scenario | route | commands | socket reads | bytes in | bytes out |', '|---|---|---|---:|---:|---:|')
  for (const method of METHODS) {
    for (const [name, label] of SCENARIOS) {
      const ms = runs[name][method].map((m) => m.redis)
      const names = [...new Set(ms.flatMap((r) => Object.keys(r.byCommand)))]
      const commands = names.map((c) => [c, median(ms.map((r) => r.byCommand[c] ?? 0))]).filter(([, n]) => n >= 0.005)
        .map(([c, n]) => `${c.toUpperCase()} ${n.toFixed(2)}`).join(', ')
      const of = (key, digits) => median(ms.map((r) => r[key])).toFixed(digits)
      lines.push(`| ${label} | ${method === 'POST' ? 'write' : 'read'} | ${commands} | ${of('roundTrips', 3)} | ${of('bytesIn', 0)} | ${of('bytesOut', 0)} |`)
    }
  }
  const report = lines.join('\n') + '\n'
  process.stdout.write(report)
  mkdirSync(values.out, { recursive: true })
  writeFileSync(join(values.out, 'fixed.md'), report)
  writeFileSync(join(values.out, 'fixed.json.tmp'), JSON.stringify({ runs, refs }, null, 2))
}

main().then(() => process.exit(0), (err) => {
  console.error(err)
  killAll()
  process.exit(1)
})
