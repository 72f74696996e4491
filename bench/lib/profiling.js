// --profile <scenario>: one server under `node --cpu-prof`, loaded on each route in turn over
// the spread sessions, then a summary of where its CPU time went.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { summarize } from '../profile.js'
import { load, seedSessions } from './load.js'
import { startServer } from './procs.js'
import { ROUTES } from './scenarios.js'

export async function profileScenario ({ scenario, route, redis, config, outDir, log }) {
  const routes = ROUTES.filter((r) => route === undefined || r.name === route)
  if (routes.length === 0) throw new Error(`--route must be one of ${ROUTES.map((r) => r.name).join(', ')}`)
  for (const r of routes) {
    const dir = join(outDir, `profile-${scenario}-${r.name}.tmp`)
    rmSync(dir, { recursive: true, force: true })
    mkdirSync(dir, { recursive: true })
    const server = await startServer(scenario, {
      env: redis.url === undefined ? {} : { REDIS_URL: redis.url },
      execArgv: ['--cpu-prof', '--cpu-prof-dir', dir]
    })
    if (server.port === undefined) throw new Error(`${scenario}: ${server.unavailable ?? server.error}`)
    const cookies = await seedSessions(server.port, config.sessions)
    const opts = { port: server.port, pid: server.pid, method: r.method, cookies, connections: config.connections }
    await load({ ...opts, duration: Math.max(config.warmup, 2) })
    const result = await load({ ...opts, duration: Math.max(config.duration, 5) })
    await server.stop()
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))
    if (file === undefined) throw new Error(`${scenario}: no profile written in ${dir}`)
    const summary = `# ${scenario}, ${r.name} route, 1,000 sessions: ${Math.round(result.rps)} req/s, ` +
      `${result.cpuUsPerReq?.toFixed(1)} µs CPU/req (under the profiler)\n\n` +
      summarize(JSON.parse(readFileSync(join(dir, file), 'utf8')), 30) + '\n'
    writeFileSync(join(dir, 'summary.md'), summary)
    process.stdout.write(summary + '\n')
    log(`profile: ${join(dir, file)}`)
  }
}
