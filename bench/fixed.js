// A fixed offered load: each scenario's server gets the same request rate (autocannon's
// `overallRate`), below every server's capacity, and the bench reports the CPU each request
// costs the server process and the Redis process (utime + stime from /proc), beside req/s.
// On a shared machine, CPU per request at a fixed load moves by a few percent where maximum
// throughput swings by half.
//
//   npm run bench:fixed [-- --rate 2000 --duration 8 --rounds 3 --connections 50 --only a,b --out DIR]
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { seedSessions } from './lib/load.js'
import { cpuSeconds, killAll, startServer } from './lib/procs.js'
import { redisCpuSeconds, startRedis } from './lib/redis.js'

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '2000' },
    duration: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
    only: { type: 'string' },
    out: { type: 'string', default: new URL('./results/', import.meta.url).pathname }
  }
})
const RATE = Number(values.rate)
const DURATION = Number(values.duration)
const ROUNDS = Number(values.rounds)
const CONNECTIONS = Number(values.connections)

const SCENARIOS = [
  ['ours-redis-node', 'ours \'redis\', node-redis 5 client'],
  ['ours-redis-ioredis', 'ours \'redis\', ioredis 5 client'],
  ['fastify-session-redis9', '@fastify/session + connect-redis 9, node-redis 5'],
  // What any session can do at least, by hand, on the same client: the string floor (GET,
  // then SET PX on a write) and the hash floor (HGETALL, then HSET of the changed key).
  ['floor-redis-node', 'floor by hand: a string, GET / SET PX, node-redis 5'],
  ['floor-redis-hash-node', 'floor by hand: a hash, HGETALL / HSET, node-redis 5']
].filter(([name]) => values.only === undefined || values.only.split(',').includes(name))

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

/** One run at the fixed rate: requests served, server and Redis CPU per request (µs), achieved req/s. */
async function measure (server, redisClient, method, cookie) {
  const s0 = cpuSeconds(server.pid)
  const r0 = await redisCpuSeconds(redisClient)
  const result = await autocannon({
    url: `http://127.0.0.1:${server.port}/counter`,
    method,
    headers: { cookie },
    connections: CONNECTIONS,
    overallRate: RATE,
    duration: DURATION,
    timeout: 10
  })
  const served = result.requests.total
  const errors = result.errors + result.non2xx
  return {
    reqs: served / result.duration,
    serverUs: (cpuSeconds(server.pid) - s0) / served * 1e6,
    redisUs: (await redisCpuSeconds(redisClient) - r0) / served * 1e6,
    errors
  }
}

async function main () {
  const redis = await startRedis()
  if (redis.unavailable !== undefined) throw new Error(redis.unavailable)
  const servers = {}
  for (const [name] of SCENARIOS) {
    const server = await startServer(name, { env: { REDIS_URL: redis.url } })
    if (server.port === undefined) throw new Error(`${name}: ${server.error ?? server.unavailable}`)
    const [cookie] = await seedSessions(server.port, 1)
    // Warm-up: the JIT, the scripts loaded, the connections made.
    await autocannon({ url: `http://127.0.0.1:${server.port}/counter`, method: 'POST', headers: { cookie }, connections: 10, amount: 3000 })
    servers[name] = { server, cookie }
  }
  const runs = {}
  for (let round = 0; round < ROUNDS; round++) {
    for (const method of ['POST', 'GET']) {
      for (const [name] of SCENARIOS) {
        const { server, cookie } = servers[name]
        const m = await measure(server, redis.client, method, cookie)
        ;((runs[name] ??= {})[method] ??= []).push(m)
        process.stderr.write(`round ${round + 1} ${name} ${method}: ${m.reqs.toFixed(0)} req/s, server ${m.serverUs.toFixed(1)} µs, redis ${m.redisUs.toFixed(1)} µs, errors ${m.errors}\n`)
      }
    }
  }
  for (const { server } of Object.values(servers)) await server.stop()
  await redis.stop()

  const versions = {}
  for (const pkg of ['redis', 'ioredis', 'connect-redis9', '@fastify/session', 'fastify']) {
    versions[pkg] = JSON.parse(readFileSync(new URL(`../node_modules/${pkg}/package.json`, import.meta.url), 'utf8')).version
  }
  const lines = [
    '# Fixed offered load: CPU per request',
    '',
    `- ${new Date().toISOString()}, Node ${process.version}, Redis ${redis.version}; ${versions.fastify ? `fastify ${versions.fastify}, ` : ''}redis ${versions.redis}, ioredis ${versions.ioredis}, connect-redis ${versions['connect-redis9']}, @fastify/session ${versions['@fastify/session']}`,
    `- ${RATE} req/s offered (autocannon overallRate), ${CONNECTIONS} connections, one hot session, ${DURATION} s per cell, ${ROUNDS} rounds interleaved; medians. CPU per request: the server process's utime + stime from /proc, redis-server's used_cpu_user + used_cpu_sys from its INFO, each divided by the requests served.`,
    '- `npm run bench:fixed`',
    '',
    '| scenario | route | req/s | server µs/req | server vs connect-redis | Redis µs/req | Redis vs connect-redis | errors |',
    '|---|---|---:|---:|---:|---:|---:|---:|'
  ]
  const ref = runs['fastify-session-redis9']
  for (const method of ['POST', 'GET']) {
    for (const [name, label] of SCENARIOS) {
      const ms = runs[name][method]
      const cell = (key) => {
        const us = median(ms.map((m) => m[key]))
        const refUs = ref === undefined ? undefined : median(ref[method].map((m) => m[key]))
        return `${us.toFixed(1)} | ${refUs === undefined ? '' : (us / refUs).toFixed(2) + '×'}`
      }
      lines.push(`| ${label} | ${method === 'POST' ? 'write' : 'read'} | ${median(ms.map((m) => m.reqs)).toFixed(0)} | ${cell('serverUs')} | ${cell('redisUs')} | ${ms.reduce((a, m) => a + m.errors, 0)} |`)
    }
  }
  const report = lines.join('\n') + '\n'
  process.stdout.write(report)
  mkdirSync(values.out, { recursive: true })
  writeFileSync(new URL('fixed.md', `file://${values.out.endsWith('/') ? values.out : values.out + '/'}`), report)
  writeFileSync(new URL('fixed.json.tmp', `file://${values.out.endsWith('/') ? values.out : values.out + '/'}`), JSON.stringify(runs, null, 2))
}

main().then(() => process.exit(0), (err) => {
  console.error(err)
  killAll()
  process.exit(1)
})
