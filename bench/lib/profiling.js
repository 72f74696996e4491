// --profile <scenario>: the scenario's server and bare Fastify's, each under `node --cpu-prof`,
// loaded on each route in turn over the spread sessions; then where the scenario's CPU time
// went, in µs per request, and what each package adds over bare Fastify.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { summarize } from '../profile.js'
import { dummyCookie, load, seedSessions } from './load.js'
import { startServer } from './procs.js'
import { ROUTES } from './scenarios.js'

async function profiled (scenario, route, { redis, config, dir }) {
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const server = await startServer(scenario, {
    env: redis.url === undefined ? {} : { REDIS_URL: redis.url },
    execArgv: ['--cpu-prof', '--cpu-prof-dir', dir]
  })
  if (server.port === undefined) throw new Error(`${scenario}: ${server.unavailable ?? server.error}`)
  const cookies = scenario === 'bare'
    ? Array.from({ length: config.sessions }, dummyCookie)
    : await seedSessions(server.port, config.sessions)
  const opts = { port: server.port, pid: server.pid, method: route.method, cookies, connections: config.connections }
  await load({ ...opts, duration: Math.max(config.warmup, 2) })
  // Only the measured run counts: V8's profiler and process.hrtime share CLOCK_MONOTONIC.
  const from = Number(process.hrtime.bigint() / 1000n)
  const result = await load({ ...opts, duration: Math.max(config.duration, 5) })
  const window = { from, to: Number(process.hrtime.bigint() / 1000n) }
  await server.stop()
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))
  if (file === undefined) throw new Error(`${scenario}: no profile written in ${dir}`)
  return { profile: JSON.parse(readFileSync(join(dir, file), 'utf8')), requests: result.requests, window, result, file: join(dir, file) }
}

export async function profileScenario ({ scenario, route, redis, config, outDir, log }) {
  const routes = ROUTES.filter((r) => route === undefined || r.name === route)
  if (routes.length === 0) throw new Error(`--route must be one of ${ROUTES.map((r) => r.name).join(', ')}`)
  for (const r of routes) {
    const base = await profiled('bare', r, { redis, config, dir: join(outDir, `profile-bare-${r.name}.tmp`) })
    const dir = join(outDir, `profile-${scenario}-${r.name}.tmp`)
    const it = await profiled(scenario, r, { redis, config, dir })
    const summary = `# ${scenario}, ${r.name} route, ${config.sessions.toLocaleString('en-US')} sessions: ` +
      `${Math.round(it.result.rps)} req/s, ${it.result.cpuUsPerReq?.toFixed(1)} µs CPU/req under the profiler ` +
      `(bare Fastify: ${Math.round(base.result.rps)} req/s, ${base.result.cpuUsPerReq?.toFixed(1)} µs)\n\n` +
      summarize(it, base, 30) + '\n'
    writeFileSync(join(dir, 'summary.md'), summary)
    process.stdout.write(summary + '\n')
    log(`profiles: ${it.file}, ${base.file}`)
  }
}
