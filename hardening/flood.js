// npm run flood [-- --requests N --connections C --max-sessions M --logins L --targets memory,redis,cookie --quick]
//
// Session floods, over real HTTP on a loopback port (autocannon), against a server in its own
// process:
//   1. N requests without a cookie on each store: no Set-Cookie, the store stays empty, the
//      server's heap after GC stays where it was.
//   2. N requests that each create a session on the memory store: the store never holds more
//      than storeOptions.maxSessions, every eviction is counted by store.stats(), and the
//      evictions are logged at a rate limit (one warn line a minute at most), not per request.
//   3. One user logging in L times, more than maxSessionsPerUser (the default, 100): the user
//      keeps the cap, the oldest sessions are the ones evicted, their cookies stop working.
// Exit 1 when any of these does not hold, or on any non-2xx answer, error or timeout.
import { performance } from 'node:perf_hooks'
import autocannon from 'autocannon'
import { number, options, targets as targetList } from './lib/args.js'
import { buildRequest, Connection, json, setCookieValue } from './lib/http.js'
import { runMain, startServer } from './lib/procs.js'
import { redisMissing, redisServerAvailable, startRedis } from './lib/redis.js'
import { fmtInt, machine, mb, seconds, table } from './lib/report.js'

const TARGETS = ['memory', 'redis', 'cookie']
const args = options({
  requests: { type: 'string' },
  connections: { type: 'string' },
  'max-sessions': { type: 'string' },
  logins: { type: 'string' },
  targets: { type: 'string' }
})
const REQUESTS = number(args, 'requests', args.quick ? 20_000 : 1_000_000)
const CONNECTIONS = number(args, 'connections', args.quick ? 8 : 32)
const MAX_SESSIONS = number(args, 'max-sessions', args.quick ? 5_000 : 100_000)
const PER_USER = args.quick ? 20 : 100 // maxSessionsPerUser: the documented default in a full run
const LOGINS = number(args, 'logins', args.quick ? 60 : 1_000)
const HEAP_FLAT_BYTES = 8 * 1048576 // what "flat" allows the heap after GC to grow by
const EVICTION_MESSAGE = 'memory session store full: evicted least recently used sessions'
const now = () => performance.now()

/** N requests with autocannon; counts the answers that carried a Set-Cookie. */
async function cannon (port, method, path) {
  let setCookies = 0
  const result = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: CONNECTIONS,
    pipelining: 1,
    amount: REQUESTS,
    timeout: 10,
    requests: [{
      method,
      path,
      onResponse: (status, body, context, headers) => {
        for (const name of Object.keys(headers)) if (name.toLowerCase() === 'set-cookie') setCookies++
      }
    }]
  })
  return {
    sent: result.requests.sent,
    ok: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statuses: Object.entries(result.statusCodeStats).map(([k, v]) => `${k}: ${fmtInt(v.count)}`).join(', '),
    setCookies
  }
}

/** Samples the server while `work` runs: store counters every second, heap (after GC) after 1 s and every 10 s. */
async function sampled (port, work) {
  const conn = new Connection(port)
  const samples = { maxSessions: 0, maxHeap: 0, maxRss: 0 }
  let busy = false
  let ticks = 0
  const timer = setInterval(async () => {
    if (busy) return
    busy = true
    try {
      const stats = json(await conn.request(buildRequest({ path: '/admin/stats' })))
      samples.maxSessions = Math.max(samples.maxSessions, stats?.memory?.sessions ?? 0)
      if (++ticks % 10 === 1) {
        const mem = json(await conn.request(buildRequest({ path: '/admin/mem' })))
        samples.maxHeap = Math.max(samples.maxHeap, mem.heapUsed)
        samples.maxRss = Math.max(samples.maxRss, mem.rss)
      }
    } catch {}
    busy = false
  }, 1000)
  try {
    return { result: await work(), samples }
  } finally {
    clearInterval(timer)
    conn.close()
  }
}

async function serverState (port, redis) {
  const conn = new Connection(port)
  const mem = json(await conn.request(buildRequest({ path: '/admin/mem' })))
  const stats = json(await conn.request(buildRequest({ path: '/admin/stats' })))
  conn.close()
  return { mem, memory: stats.memory, keys: redis === undefined ? undefined : await redis.admin.dbsize() }
}

async function withTarget (target, config, fn) {
  let redis
  if (target === 'redis') {
    if (!redisServerAvailable()) {
      redisMissing('npm run flood')
      return { target, skipped: 'skipped: redis-server not found', failed: process.env.CI === 'true' }
    }
    redis = await startRedis()
  }
  try {
    const server = await startServer({ store: target, redisUrl: redis?.url, ...config })
    if (server.unavailable !== undefined) return { target, skipped: `n/a (${server.unavailable})` }
    try {
      const out = await fn(server, redis)
      out.logLines = server.lines
      if (server.crashed()) out.problems.push(`the server exited: ${server.stderr().slice(-500)}`)
      return { target, ...out }
    } finally {
      await server.stop()
    }
  } finally {
    await redis?.close()
  }
}

async function cookieless (target) {
  return await withTarget(target, {}, async (server, redis) => {
    const before = await serverState(server.port, redis)
    const started = now()
    const { result, samples } = await sampled(server.port, () => cannon(server.port, 'GET', '/read'))
    const ms = now() - started
    const after = await serverState(server.port, redis)
    const problems = []
    if (result.ok !== REQUESTS || result.non2xx + result.errors + result.timeouts > 0) problems.push(`answers: ${result.statuses}, ${result.errors} errors, ${result.timeouts} timeouts`)
    if (result.setCookies > 0) problems.push(`${result.setCookies} answers set a cookie`)
    if ((after.memory?.sessions ?? 0) > 0 || (after.keys ?? 0) > 0) problems.push(`the store is not empty: ${after.memory?.sessions ?? after.keys}`)
    if (after.mem.heapUsed - before.mem.heapUsed > HEAP_FLAT_BYTES) problems.push(`the heap grew by ${mb(after.mem.heapUsed - before.mem.heapUsed)}`)
    return { result, samples, ms, before, after, problems }
  })
}

async function creating () {
  return await withTarget('memory', { maxSessions: MAX_SESSIONS }, async (server) => {
    const before = await serverState(server.port)
    const started = now()
    const { result, samples } = await sampled(server.port, () => cannon(server.port, 'POST', '/new'))
    const ms = now() - started
    const after = await serverState(server.port)
    const problems = []
    if (result.ok !== REQUESTS || result.non2xx + result.errors + result.timeouts > 0) problems.push(`answers: ${result.statuses}, ${result.errors} errors, ${result.timeouts} timeouts`)
    if (result.setCookies !== REQUESTS) problems.push(`${result.setCookies} of ${REQUESTS} answers set a cookie`)
    const stored = after.memory.sessions
    const evictions = after.memory.evictions - before.memory.evictions
    if (stored > MAX_SESSIONS || samples.maxSessions > MAX_SESSIONS) problems.push(`the store held ${Math.max(stored, samples.maxSessions)}, over its bound of ${MAX_SESSIONS}`)
    if (evictions !== REQUESTS - stored) problems.push(`${evictions} evictions counted for ${REQUESTS} sessions created and ${stored} kept`)
    const warnLines = server.lines.byKey.get(`40: ${EVICTION_MESSAGE}`) ?? 0
    const allowed = Math.ceil(ms / 60_000) + 1
    if (evictions > 0 && (warnLines === 0 || warnLines > allowed)) problems.push(`${warnLines} eviction warnings for ${evictions} evictions in ${seconds(ms)} (expected 1 to ${allowed})`)
    return { result, samples, ms, before, after, stored, evictions, warnLines, problems }
  })
}

async function perUser (target) {
  return await withTarget(target, { maxSessionsPerUser: PER_USER }, async (server, redis) => {
    const conn = new Connection(server.port)
    const before = await serverState(server.port, redis)
    const started = now()
    const logins = []
    const problems = []
    for (let k = 0; k < LOGINS; k++) {
      const res = await conn.request(buildRequest({ method: 'POST', path: '/login', headers: [['Content-Type', 'application/json']], body: '{"user":"flood-user"}' }))
      if (res.status !== 200) {
        problems.push(`login ${k} answered ${res.status}`)
        break
      }
      const body = json(res)
      logins.push({ id: body.id, createdAt: body.createdAt, cookie: decodeURIComponent(setCookieValue(res, 'sid')) })
    }
    const ms = now() - started
    const listed = json(await conn.request(buildRequest({ path: '/admin/sessions?user=flood-user' })))
    const kept = new Set(listed.map((s) => s.id))
    const evicted = logins.filter((l) => !kept.has(l.id))
    if (listed.length !== Math.min(PER_USER, logins.length)) problems.push(`the user has ${listed.length} sessions, expected ${PER_USER}`)
    if (listed.some((s) => !logins.some((l) => l.id === s.id))) problems.push('getAll lists a session no login created')
    // LRU: with no reads between the logins, the oldest are the ones gone. Logins within one
    // millisecond tie: Redis breaks the tie by the random part of the id, memory by insertion.
    const newestEvicted = Math.max(...evicted.map((l) => l.createdAt))
    const oldestKept = Math.min(...listed.map((s) => s.createdAt))
    if (evicted.length > 0 && newestEvicted > oldestKept) problems.push(`a session created at ${newestEvicted} was evicted while one created at ${oldestKept} was kept`)
    const lastKept = logins.slice(-PER_USER).filter((l) => !kept.has(l.id)).length
    let oldWork = 0
    for (const l of evicted.slice(0, 20)) {
      const me = json(await conn.request(buildRequest({ path: '/me', headers: [['Cookie', `sid=${l.cookie}`]] })))
      if (me.id !== null) oldWork++
    }
    // The kept sessions load (the newest of them: by lastSeenAt, ties within a millisecond either way).
    let newWork = 0
    for (const l of logins.filter((l) => kept.has(l.id)).slice(-20)) {
      const me = json(await conn.request(buildRequest({ path: '/me', headers: [['Cookie', `sid=${l.cookie}`]] })))
      if (me.id === l.id && me.userId === 'flood-user') newWork++
    }
    if (oldWork > 0) problems.push(`${oldWork} evicted cookies still load their session`)
    if (newWork !== Math.min(20, kept.size)) problems.push(`only ${newWork} of the newest 20 kept cookies load their session`)
    const after = await serverState(server.port, redis)
    conn.close()
    return {
      ms,
      logins: logins.length,
      listed: listed.length,
      evicted: evicted.length,
      lastKept,
      evictions: after.memory === null ? undefined : after.memory.evictions - before.memory.evictions,
      oldChecked: Math.min(20, evicted.length),
      oldWork,
      newWork,
      problems
    }
  })
}

async function main () {
  console.log('# npm run flood\n')
  console.log(`${fmtInt(REQUESTS)} requests per flood over real HTTP (autocannon, ${CONNECTIONS} connections, loopback), ` +
    `memory store bound ${fmtInt(MAX_SESSIONS)}, ${fmtInt(LOGINS)} logins of one user with maxSessionsPerUser ${PER_USER}`)
  console.log(`machine: ${machine()}\n`)
  const targets = targetList(args, TARGETS)
  const floods = []
  for (const target of targets) {
    console.log(`1. ${fmtInt(REQUESTS)} requests without a cookie: ${target}`)
    floods.push(await cookieless(target))
  }
  let creation
  if (targets.includes('memory')) {
    console.log(`2. ${fmtInt(REQUESTS)} requests that each create a session: memory (maxSessions ${fmtInt(MAX_SESSIONS)})`)
    creation = await creating()
  }
  const caps = []
  for (const target of targets) {
    console.log(`3. ${fmtInt(LOGINS)} logins of one user: ${target}`)
    caps.push(target === 'cookie'
      ? { target, skipped: 'n/a: a stateless store keeps no list of a user\'s sessions to cap (maxSessionsPerUser has no effect)' }
      : await perUser(target))
  }

  const skippedRow = (r, n) => [r.target, r.skipped, ...Array(n).fill('–')]
  console.log('\n## 1. Requests without a cookie\n')
  console.log(table(['store', 'duration', 'req/s', 'answers', 'Set-Cookie', 'store after', 'heap before → after (GC)', 'highest heap sampled', 'RSS before → after', 'warn lines'],
    floods.map((r) => r.skipped !== undefined
      ? skippedRow(r, 8)
      : [r.target, seconds(r.ms), fmtInt(REQUESTS / (r.ms / 1000)), `${r.result.statuses}${r.result.errors + r.result.timeouts > 0 ? `, ${r.result.errors} errors, ${r.result.timeouts} timeouts` : ''}`,
          fmtInt(r.result.setCookies), r.after.memory != null ? `${fmtInt(r.after.memory.sessions)} sessions` : r.after.keys !== undefined ? `${fmtInt(r.after.keys)} keys` : 'n/a (stateless)',
          `${mb(r.before.mem.heapUsed)} → ${mb(r.after.mem.heapUsed)}`, mb(r.samples.maxHeap), `${mb(r.before.mem.rss)} → ${mb(r.after.mem.rss)}`, fmtInt(r.logLines.total)])))
  if (creation !== undefined) {
    console.log('\n## 2. Requests that each create a session (memory store)\n')
    const r = creation
    console.log(r.skipped !== undefined
      ? `memory: ${r.skipped}`
      : table(['', 'memory'], [
        ['duration (req/s)', `${seconds(r.ms)} (${fmtInt(REQUESTS / (r.ms / 1000))})`],
        ['answers / with Set-Cookie', `${r.result.statuses} / ${fmtInt(r.result.setCookies)}`],
        ['storeOptions.maxSessions', fmtInt(MAX_SESSIONS)],
        ['sessions stored: highest sampled / at the end', `${fmtInt(r.samples.maxSessions)} / ${fmtInt(r.stored)}`],
        ['evictions (store.stats())', fmtInt(r.evictions)],
        [`warn lines "${EVICTION_MESSAGE}"`, fmtInt(r.warnLines)],
        ['heap before → after (GC)', `${mb(r.before.mem.heapUsed)} → ${mb(r.after.mem.heapUsed)}`],
        ['RSS before → after', `${mb(r.before.mem.rss)} → ${mb(r.after.mem.rss)}`]
      ]))
  }
  console.log(`\n## 3. One user, ${fmtInt(LOGINS)} logins, maxSessionsPerUser ${PER_USER}\n`)
  console.log(table(['store', 'logins', 'duration', 'sessions kept', 'evicted', 'kept among the last logins', 'evicted cookies that still work', 'kept cookies that work', 'store evictions counted'],
    caps.map((r) => r.skipped !== undefined
      ? skippedRow(r, 7)
      : [r.target, fmtInt(r.logins), seconds(r.ms), fmtInt(r.listed), fmtInt(r.evicted), `${fmtInt(PER_USER - r.lastKept)} of the last ${PER_USER}`,
          `${r.oldWork} of ${r.oldChecked} tried`, `${r.newWork} of ${Math.min(20, r.listed)} tried`, r.evictions === undefined ? 'n/a' : fmtInt(r.evictions)])))

  const all = [...floods, creation, ...caps].filter((r) => r !== undefined)
  const problems = all.flatMap((r) => (r.problems ?? []).map((p) => `- ${r.target}: ${p}`))
  if (problems.length > 0) console.log(`\n## Problems\n\n${problems.join('\n')}`)
  const failed = problems.length > 0 || all.some((r) => r.failed)
  console.log(`\nflood: ${failed ? 'FAIL' : 'PASS'}`)
  return failed ? 1 : 0
}

runMain(main)
