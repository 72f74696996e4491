// npm run soak [-- --seconds S --vus N --devices D --outage S --max-requests N --targets memory,redis --quick]
// npm run soak -- --cluster [--wait-for-replicas N]
//
// --cluster: a Redis Cluster of 3 masters with a replica each (target 'cluster'); one master
// is killed (SIGKILL) at 35 % and its replica takes over; the killed node is started again once
// the slots answer, and rejoins as a replica. The store runs with waitForReplicas (default 1):
// a revocation that resolved must survive the failover (RESURRECTED must be 0), while lost data
// writes are counted, not failed on (Redis replicates them asynchronously). Before the load, the
// cost of WAIT: deleteAll latency with and without waitForReplicas.
//
// Load with faults, loopback only. Virtual users (VUs) log in, read, write counters, list
// devices, log out their other devices and log out, against the memory store and the Redis
// store; on Redis, redis-server is killed (SIGKILL) and later stopped (SIGTERM) in the middle,
// and started again. Redis keeps every acknowledged write on disk before its reply
// (appendfsync always), so a restart loses nothing the server acknowledged.
//
// Each VU increments its own counter key and keeps the values the server acknowledged. A write
// answered otherwise (503, timeout) may or may not have happened: it widens what the next read
// may see by one. At the end every live session's stored counter must equal the acknowledged
// value (no lost update), no session removed by a logout or a "log out other devices" may
// come back (no resurrection), and every session that vanished must have a cause.
// Exit 1 on lost or resurrected data, on any 5xx but 503 FST_SESSION_STORE_UNAVAILABLE during
// an outage (from the stop to the first request the store answers again), or when the store
// does not answer again within --recovery seconds of a restart (finding 1 in RESULTS.md).
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { performance } from 'node:perf_hooks'
import { number, options, targets as targetList } from './lib/args.js'
import { buildRequest, Connection, json, setCookieValue } from './lib/http.js'
import { runMain, startServer } from './lib/procs.js'
import { redisMissing, redisServerAvailable, replicaInSync, startCluster, startRedis } from './lib/redis.js'
import { Cluster } from 'ioredis'
import { RedisStore, userTag } from 'fastify-user-sessions'
import { fmtInt, machine, mb, seconds, statuses, table } from './lib/report.js'

const TARGETS = ['memory', 'redis', 'cluster']
const args = options({
  seconds: { type: 'string' },
  vus: { type: 'string' },
  devices: { type: 'string' },
  outage: { type: 'string' },
  'max-requests': { type: 'string' },
  timeout: { type: 'string' },
  recovery: { type: 'string' },
  targets: { type: 'string' },
  cluster: { type: 'boolean', default: false },
  'wait-for-replicas': { type: 'string' },
  verbose: { type: 'boolean', default: false }
})
const WAIT_FOR_REPLICAS = number(args, 'wait-for-replicas', 1)
const SECONDS = number(args, 'seconds', args.quick ? 4 : 30)
const VUS = number(args, 'vus', args.quick ? 24 : 120)
const DEVICES = Math.max(1, number(args, 'devices', 3)) // VUs per user
const OUTAGE = number(args, 'outage', args.quick ? 0.8 : 4) * 1000
const MAX_REQUESTS = number(args, 'max-requests', args.quick ? 20_000 : 2_000_000)
const TIMEOUT = number(args, 'timeout', 10_000)
const RECOVERY_SLACK = 250 // ms after the store answers again, for requests already on their way
const RECOVERY_BUDGET = number(args, 'recovery', args.quick ? 10 : 30) * 1000 // ms the store may take to answer after a restart
const DEAD_CHECKED = 3000 // dead cookies replayed at the end

const now = () => performance.now()

/** Weighted choice of the next action of a logged-in VU. */
const ACTIONS = [['inc', 50], ['read', 14], ['me', 10], ['devices', 12], ['logoutOthers', 5], ['logout', 4], ['idle', 5]]
const TOTAL_WEIGHT = ACTIONS.reduce((s, [, w]) => s + w, 0)
function nextAction () {
  let r = Math.random() * TOTAL_WEIGHT
  for (const [name, w] of ACTIONS) if ((r -= w) < 0) return name
  return 'idle'
}

async function soakTarget (target, server, redis) {
  const started = now()
  const windows = [] // outages: { start, end, signal }
  const s = {
    target,
    requests: 0,
    statuses: new Map(),
    unavailable: new Map(), // 503 codes during an outage
    outside503: 0,
    other5xx: 0,
    timeouts: 0,
    resets: 0,
    logins: 0,
    incAcked: 0,
    ambiguous: 0,
    killedByOthers: 0,
    logouts: 0,
    deaths: { killed: 0, loggedOut: 0, raced: 0 },
    lost: 0,
    phantom: 0,
    resurrected: 0,
    failures: [],
    notes: [],
    checkedLive: 0,
    checkedDead: 0,
    storeChecked: 0
  }
  const fail = (kind, detail) => {
    // A failover may lose data writes Redis had acknowledged (asynchronous replication): counted, not a failure.
    // Without waitForReplicas, so may revocations.
    if (target === 'cluster' && (kind.startsWith('lost') || kind === 'phantom write' || (kind === 'resurrected' && WAIT_FOR_REPLICAS === 0))) {
      if (s.notes.length < 10) s.notes.push(`${kind}: ${detail}`)
      return
    }
    if (s.failures.length < 20) s.failures.push(`${kind}: ${detail}`)
  }
  const users = new Map() // user -> { vus: [], dead: Map(id -> { killedAt, cookie }), events: [] }
  const deadCookies = [] // { cookie, id, killedAt }, the last DEAD_CHECKED

  let stopAt = started + SECONDS * 1000
  const inWindow = (sent, recv) => windows.some((w) => sent <= w.end + RECOVERY_SLACK && recv >= w.start)

  async function call (conn, request) {
    if (s.requests >= MAX_REQUESTS) stopAt = 0
    s.requests++
    const sent = now()
    let res
    try {
      res = await conn.request(buildRequest(request), { timeout: TIMEOUT })
    } catch (err) {
      const recv = now()
      if (err.kind === 'timeout') {
        s.timeouts++
        fail('hang', `${request.method ?? 'GET'} ${request.path} got no answer within ${TIMEOUT} ms`)
      } else {
        s.resets++
        fail('reset', `${request.method ?? 'GET'} ${request.path}: ${err.message}`)
      }
      return { res: undefined, sent, recv }
    }
    const recv = now()
    s.statuses.set(res.status, (s.statuses.get(res.status) ?? 0) + 1)
    if (res.status >= 500) {
      const code = json(res)?.code ?? '(no code)'
      if (res.status === 503 && (code === 'FST_SESSION_STORE_UNAVAILABLE' || code === 'FST_SESSION_STORE_NOT_REPLICATED') && inWindow(sent, recv)) {
        s.unavailable.set(code, (s.unavailable.get(code) ?? 0) + 1)
      } else if (res.status === 503) {
        s.outside503++
        fail('503 outside an outage', `${request.method ?? 'GET'} ${request.path}: ${code}`)
      } else {
        s.other5xx++
        fail(`${res.status}`, `${request.method ?? 'GET'} ${request.path}: ${res.body.toString('utf8').slice(0, 200)}`)
      }
    }
    return { res, sent, recv }
  }

  const withCookie = (session) => [['Cookie', `sid=${session.cookie}`]]

  function markDead (u, session, killedAt) {
    u.dead.set(session.id, { killedAt })
    deadCookies.push({ cookie: session.cookie, id: session.id, killedAt })
    if (deadCookies.length > DEAD_CHECKED) deadCookies.shift()
  }

  /** The VU's session no longer loads: either a known cause, or it was lost. */
  function died (vu, sent) {
    const session = vu.session
    const u = users.get(vu.user)
    if (session.killedAt !== undefined) s.deaths.killed++
    else if (session.maybeLoggedOut) s.deaths.loggedOut++
    else if (u.events.some((e) => e.vu !== vu && e.recv >= session.loginSent)) s.deaths.raced++ // a concurrent "log out others"
    else {
      s.lost++
      fail('lost', `session of ${vu.user} (counter ${session.ack}) vanished with no logout and no "log out others" after its login`)
    }
    markDead(u, session, session.killedAt ?? sent)
    vu.session = null
  }

  /** A response that loaded the session, for a request sent after it was known dead. */
  function checkAlive (vu, session, sent) {
    if (session.killedAt !== undefined && sent > session.killedAt) {
      s.resurrected++
      fail('resurrected', `a session of ${vu.user} removed by "log out others" loaded again`)
    }
  }

  function checkValue (vu, session, value, kind) {
    if (value < session.ack) {
      s.lost++
      fail('lost update', `${vu.user}/${vu.key}: read ${value} after ${session.ack} was acknowledged (${kind})`)
    } else if (value > session.ack + session.ambiguous) {
      s.phantom++
      fail('phantom write', `${vu.user}/${vu.key}: read ${value}, acknowledged ${session.ack} with ${session.ambiguous} unanswered (${kind})`)
    }
  }

  async function login (vu) {
    const { res, sent, recv } = await call(vu.conn, { method: 'POST', path: '/login', headers: [['Content-Type', 'application/json']], body: JSON.stringify({ user: vu.user }) })
    if (res?.status !== 200) return false
    const cookie = decodeURIComponent(setCookieValue(res, 'sid'))
    vu.session = { id: json(res).id, cookie, loginSent: sent, loginAcked: recv, ack: 0, ambiguous: 0 }
    s.logins++
    return true
  }

  async function act (vu, action) {
    const session = vu.session
    const u = users.get(vu.user)
    switch (action) {
      case 'inc': {
        const { res, sent } = await call(vu.conn, { method: 'POST', path: `/inc?key=${vu.key}`, headers: withCookie(session) })
        if (res === undefined || res.status >= 500) {
          session.ambiguous++
          s.ambiguous++
          return false
        }
        if (res.status === 401 || res.status === 409) return died(vu, sent)
        const body = json(res)
        if (body.id !== session.id) fail('wrong session', `${vu.user}: /inc answered for another session`)
        checkAlive(vu, session, sent)
        if (body.value !== session.ack + 1) checkValue(vu, session, body.value - 1, 'before an increment')
        session.ack = body.value
        session.ambiguous = 0
        s.incAcked++
        return true
      }
      case 'read':
      case 'me': {
        const path = action === 'read' ? `/counter?key=${vu.key}` : '/me'
        const { res, sent } = await call(vu.conn, { path, headers: withCookie(session) })
        if (res?.status !== 200) return false
        const body = json(res)
        if (body.userId === null) return died(vu, sent)
        checkAlive(vu, session, sent)
        if (action === 'read') {
          checkValue(vu, session, body.value ?? 0, 'read')
          session.ack = body.value ?? 0
          session.ambiguous = 0
        }
        return true
      }
      case 'devices': {
        const { res, sent } = await call(vu.conn, { path: '/devices', headers: withCookie(session) })
        if (res?.status !== 200) return false
        const body = json(res)
        if (body.userId === null) return died(vu, sent)
        checkAlive(vu, session, sent)
        for (const d of body.sessions) {
          const dead = u.dead.get(d.id)
          if (dead !== undefined && sent > dead.killedAt) {
            s.resurrected++
            fail('resurrected', `getAll(${vu.user}) lists a session removed before the request was sent`)
          }
          if (d.id === session.id && session.ambiguous === 0 && (d.data[vu.key] ?? 0) !== session.ack) {
            s.lost++
            fail('lost update', `getAll(${vu.user}) holds ${d.data[vu.key]} for ${vu.key}, acknowledged ${session.ack}`)
          }
        }
        return true
      }
      case 'logoutOthers': {
        const victims = u.vus.filter((v) => v !== vu && v.session !== null && v.session.loginAcked !== undefined).map((v) => v.session)
        const event = { vu, sent: now(), recv: Infinity }
        u.events.push(event)
        const { res, recv } = await call(vu.conn, { method: 'POST', path: '/logout-others', headers: withCookie(session) })
        event.recv = recv
        if (res?.status !== 200) return false
        const body = json(res)
        if (body.userId === null) return died(vu, event.sent)
        for (const victim of victims) {
          if (victim.killedAt === undefined) {
            victim.killedAt = recv
            s.killedByOthers++
          }
        }
        return true
      }
      case 'logout': {
        const { res, sent, recv } = await call(vu.conn, { method: 'POST', path: '/logout', headers: withCookie(session) })
        if (res?.status !== 200) {
          session.maybeLoggedOut = true
          return false
        }
        if (json(res).userId === null) return died(vu, sent)
        s.logouts++
        markDead(u, session, recv)
        vu.session = null
        return true
      }
      default:
        await sleep(1)
        return true
    }
  }

  async function runVu (vu) {
    while (now() < stopAt) {
      const ok = vu.session === null ? await login(vu) : await act(vu, nextAction())
      if (!ok) await sleep(20 + Math.random() * 30) // a client backs off on an error
      // Forget "log out others" events no live session can be raced by.
      const u = users.get(vu.user)
      if (u.events.length > 16) {
        const oldest = Math.min(...u.vus.map((v) => v.session?.loginSent ?? Infinity))
        u.events = u.events.filter((e) => e.recv >= oldest)
      }
    }
  }

  async function probe (conn, user) {
    const deadline = now() + RECOVERY_BUDGET
    let last
    for (;;) {
      try {
        const res = await conn.request(buildRequest({ path: `/admin/health${user === undefined ? '' : `?user=${encodeURIComponent(user)}`}` }), { timeout: 2000 })
        if (res.status === 200) return now()
        last = `${res.status} ${res.body.toString('utf8').slice(0, 200)}`
      } catch (err) {
        last = err.message
      }
      if (now() > deadline) throw new Error(`the store did not answer again within ${RECOVERY_BUDGET / 1000} s of the restart (last: ${last})`)
      await sleep(20)
    }
  }

  /** Cluster: one master killed at 35 %, its replica takes over; the node is started again once its slots answer. */
  async function failover () {
    const admin = new Connection(server.port)
    const wait = started + SECONDS * 1000 * 0.35 - now()
    if (wait > 0) await sleep(wait)
    const roles = await redis.roles(redis.nodes[0].port)
    const [master, replica] = [...roles].find(([, r]) => r !== undefined)
    // A user on the victim's slots, for the probe.
    // Users' keys are tagged with the store's owner key (made by the first login): read it.
    const reader = new Cluster(redis.nodes.map(({ port }) => ({ host: '127.0.0.1', port })))
    const keeper = new RedisStore({ client: reader, prefix: 'main:' }, { clock: Date.now, log: { warn () {}, info () {}, debug () {}, error () {} }, maxSessionsPerUser: 10 })
    const ownerKey = await keeper.ownerKey()
    await keeper.close()
    reader.disconnect()
    let probeUser
    for (let i = 0; probeUser === undefined; i++) {
      if (await redis.keySlotOwner(replica, `{${userTag(ownerKey, `soak-user-${i}`)}}`) === master) probeUser = `soak-user-${i}`
    }
    const w = { start: now(), end: Infinity, signal: 'SIGKILL (master)' }
    windows.push(w)
    await redis.crash(master)
    w.stopped = now()
    try {
      w.restarted = now() // no restart: the replica takes over
      w.answered = await probe(admin, probeUser)
      w.promotedMs = w.answered - w.stopped
      await redis.start(master) // rejoins as a replica of the promoted node
      await replicaInSync(master)
      w.end = now()
      w.resyncedMs = w.end - w.answered
    } catch (err) {
      s.wedged = err.message
      fail('no recovery', `after a master was killed, ${err.message}`)
    }
    console.log(`  ${target}: master killed at ${seconds(w.start - started)}, its slots answering ${seconds(w.promotedMs ?? NaN)} later, ` +
      `the old master back as a replica in sync ${seconds(w.resyncedMs ?? NaN)} after that`)
    admin.close()
  }

  async function outages () {
    if (redis === undefined) return
    if (target === 'cluster') return await failover()
    const admin = new Connection(server.port)
    for (const [at, signal] of [[0.35, 'SIGKILL'], [0.65, 'SIGTERM']]) {
      const wait = started + SECONDS * 1000 * at - now()
      if (wait > 0) await sleep(wait)
      if (now() >= stopAt) break
      const w = { start: now(), end: Infinity, signal }
      windows.push(w)
      await redis.stop(signal)
      w.stopped = now()
      await sleep(OUTAGE)
      await redis.start()
      w.restarted = now()
      try {
        w.end = await probe(admin)
      } catch (err) {
        s.wedged = err.message
        fail('no recovery', `after redis-server was ${signal === 'SIGKILL' ? 'killed' : 'stopped'} and started again, ${err.message}`)
        console.log(`  ${target}: redis-server ${signal} at ${seconds(w.start - started)}: ${err.message}`)
        break
      }
      console.log(`  ${target}: redis-server ${signal === 'SIGKILL' ? 'killed' : 'stopped'} at ${seconds(w.start - started)}, ` +
        `started again ${seconds(w.restarted - w.stopped)} later, store answering ${seconds(w.end - w.restarted)} after the start`)
    }
    admin.close()
  }

  const admin = new Connection(server.port)
  const memBefore = json(await admin.request(buildRequest({ path: '/admin/mem' })))
  const vus = []
  for (let v = 0; v < VUS; v++) {
    const user = `soak-user-${Math.floor(v / DEVICES)}`
    if (!users.has(user)) users.set(user, { vus: [], dead: new Map(), events: [] })
    const vu = { user, key: `c${v}`, session: null, conn: new Connection(server.port) }
    users.get(user).vus.push(vu)
    vus.push(vu)
  }
  const progress = setInterval(() => {
    console.log(`  ${target}: ${seconds(now() - started)}, ${fmtInt(s.requests)} requests, ${statuses(s.statuses)}`)
  }, 10_000).unref()
  await Promise.all([...vus.map(runVu), outages()])
  clearInterval(progress)
  s.loadMs = now() - started
  if (server.crashed()) {
    fail('crash', `the server exited: ${server.stderr().slice(-1500)}`)
    return s
  }
  if (s.wedged !== undefined) {
    for (const vu of vus) vu.conn.close()
    s.memAfter = json(await admin.request(buildRequest({ path: '/admin/mem' })))
    admin.close()
    s.windows = windows.map((w) => ({ signal: w.signal, startS: (w.start - started) / 1000, downMs: w.restarted - w.stopped, recoveryMs: w.end - w.restarted }))
    s.memBefore = memBefore
    s.totalMs = now() - started
    s.unverified = 'the store never answered again'
    return s
  }
  if (redis !== undefined) await probe(admin)

  // Verification: each live session through its cookie, then each user's sessions in the store.
  const verify = new Connection(server.port)
  for (const vu of vus) {
    const session = vu.session
    if (session === null) continue
    const res = await verify.request(buildRequest({ path: `/counter?key=${vu.key}`, headers: withCookie(session) }), { timeout: TIMEOUT })
    s.requests++
    const body = json(res)
    if (res.status !== 200) {
      fail('verify', `final read answered ${res.status}`)
      continue
    }
    if (body.userId === null) {
      died(vu, now())
      continue
    }
    checkAlive(vu, session, now())
    checkValue(vu, session, body.value ?? 0, 'final read')
    session.ack = body.value ?? 0
    session.ambiguous = 0
    s.checkedLive++
  }
  for (const [user, u] of users) {
    const res = await verify.request(buildRequest({ path: `/admin/sessions?user=${encodeURIComponent(user)}` }), { timeout: TIMEOUT })
    s.requests++
    if (res.status !== 200) {
      fail('verify', `getAll(${user}) answered ${res.status}`)
      continue
    }
    const stored = new Map(json(res).map((r) => [r.id, r]))
    for (const id of stored.keys()) {
      if (u.dead.has(id)) {
        s.resurrected++
        fail('resurrected', `getAll(${user}) lists a session that was logged out`)
      }
    }
    for (const vu of u.vus) {
      if (vu.session === null) continue
      s.storeChecked++
      const r = stored.get(vu.session.id)
      if (r === undefined) {
        s.lost++
        fail('lost', `the store has no session for a live cookie of ${user}`)
      } else if ((r.data[vu.key] ?? 0) !== vu.session.ack) {
        s.lost++
        fail('lost update', `the store holds ${r.data[vu.key]} for ${user}/${vu.key}, acknowledged ${vu.session.ack}`)
      }
    }
  }
  for (const dead of deadCookies) {
    const res = await verify.request(buildRequest({ path: '/me', headers: [['Cookie', `sid=${dead.cookie}`]] }), { timeout: TIMEOUT })
    s.requests++
    s.checkedDead++
    if (res.status !== 200 || json(res).id !== null) {
      s.resurrected++
      fail('resurrected', `a logged-out cookie answered ${res.status} ${res.body.toString('utf8').slice(0, 100)}`)
    }
  }
  verify.close()
  for (const vu of vus) vu.conn.close()
  s.windows = windows.map((w) => ({ signal: w.signal, startS: (w.start - started) / 1000, downMs: w.restarted - w.stopped, recoveryMs: (w.answered ?? w.end) - w.restarted }))
  s.memBefore = memBefore
  s.memAfter = json(await admin.request(buildRequest({ path: '/admin/mem' })))
  const stats = json(await admin.request(buildRequest({ path: '/admin/stats' })))
  s.storeSessions = stats?.memory?.sessions ?? (redis === undefined ? undefined : await (redis.admin?.dbsize() ?? redis.dbsize()))
  admin.close()
  s.totalMs = now() - started
  return s
}

/** Milliseconds of one deleteAll (a user with 3 sessions), without and with waitForReplicas: the cost of WAIT. */
async function waitCost (nodes, rounds = 300) {
  const client = new Cluster(nodes)
  const quiet = { warn () {}, info () {}, debug () {}, error () {} }
  const context = { clock: Date.now, log: quiet, maxSessionsPerUser: 10 }
  const result = {}
  for (const replicas of [0, 1]) {
    const store = new RedisStore({ client, prefix: `wait-cost-${replicas}:`, waitForReplicas: replicas }, context)
    const ownerKey = await store.ownerKey()
    const ms = []
    for (let i = 0; i < rounds; i++) {
      const userId = `cost-${i}`
      const at = Date.now()
      for (let k = 0; k < 3; k++) {
        await store.insert({
          id: `${userTag(ownerKey, userId)}.${randomBytes(16).toString('base64url')}`,
          secretHash: 'x',
          userId,
          data: { k },
          createdAt: at,
          lastSeenAt: at,
          expiresAt: at + 60_000,
          authenticatedAt: at,
          ip: undefined,
          userAgent: undefined
        })
      }
      const t0 = now()
      await store.deleteAll(userId, [])
      ms.push(now() - t0)
    }
    await store.close()
    ms.sort((a, b) => a - b)
    result[replicas] = { p50: ms[Math.floor(rounds / 2)], p99: ms[Math.floor(rounds * 0.99)] }
  }
  client.disconnect()
  return result
}

async function main () {
  console.log('# npm run soak\n')
  console.log(`${SECONDS} s of load per store, ${VUS} virtual users (${DEVICES} devices per user), Redis outages of ${OUTAGE / 1000} s ` +
    `(SIGKILL at 35 %, SIGTERM at 65 %), per-request timeout ${TIMEOUT} ms, at most ${fmtInt(MAX_REQUESTS)} requests`)
  console.log(`machine: ${machine()}\n`)
  const results = []
  let failed = false
  for (const target of args.cluster ? ['cluster'] : targetList(args, TARGETS)) {
    let redis
    if (target !== 'memory' && !redisServerAvailable()) {
      redisMissing(target === 'cluster' ? 'npm run soak -- --cluster' : 'npm run soak')
      results.push({ target, skipped: 'skipped: redis-server not found' })
      if (process.env.CI === 'true') failed = true
      continue
    }
    if (target === 'cluster') {
      redis = await startCluster()
      const cost = await waitCost(redis.nodes)
      console.log(`cluster: deleteAll of 3 sessions, p50 / p99: ${cost[0].p50.toFixed(2)} / ${cost[0].p99.toFixed(2)} ms without waitForReplicas, ` +
        `${cost[1].p50.toFixed(2)} / ${cost[1].p99.toFixed(2)} ms with waitForReplicas: 1`)
      redis.waitCost = cost
    }
    if (target === 'redis') redis = await startRedis({ persist: true })
    try {
      const server = await startServer(target === 'cluster'
        ? { store: 'redis', redisCluster: redis.nodes, waitForReplicas: WAIT_FOR_REPLICAS }
        : { store: target, redisUrl: redis?.url }, {
        onLine: args.verbose ? (line) => { if (line.msg !== 'Session store unavailable: the Redis connection is down (reconnecting)') console.log(`  server: ${JSON.stringify(line).slice(0, 300)}`) } : undefined
      })
      if (server.unavailable !== undefined) {
        results.push({ target, skipped: `n/a (${server.unavailable})` })
        continue
      }
      console.log(`${target}: soaking`)
      const r = await soakTarget(target, server, redis)
      r.logLines = server.lines
      r.waitCost = redis?.waitCost
      await server.stop()
      results.push(r)
      const bad = r.failures.length > 0
      if (bad) failed = true
      console.log(`${target}: ${bad ? 'FAILED' : 'ok'}`)
    } finally {
      await redis?.close()
    }
  }

  console.log('\n## Summary\n')
  const ran = results.filter((r) => r.skipped === undefined)
  for (const r of results.filter((r) => r.skipped !== undefined)) console.log(`${r.target}: ${r.skipped}`)
  if (ran.length > 0) {
    const row = (name, f) => [name, ...ran.map(f)]
    console.log(table(['', ...ran.map((r) => r.target)], [
      row('load / total duration', (r) => `${seconds(r.loadMs)} / ${seconds(r.totalMs ?? r.loadMs)}`),
      row('requests (req/s under load)', (r) => `${fmtInt(r.requests)} (${fmtInt(r.requests / (r.loadMs / 1000))})`),
      row('2xx', (r) => fmtInt([...r.statuses].filter(([k]) => k >= 200 && k < 300).reduce((a, [, v]) => a + v, 0))),
      row('401 / 409 (session gone when writing)', (r) => `${fmtInt(r.statuses.get(401) ?? 0)} / ${fmtInt(r.statuses.get(409) ?? 0)}`),
      row('503 during an outage, by code', (r) => statuses(r.unavailable)),
      row('503 outside an outage', (r) => fmtInt(r.outside503)),
      row('other 5xx', (r) => fmtInt(r.other5xx)),
      row('timeouts / resets', (r) => `${fmtInt(r.timeouts)} / ${fmtInt(r.resets)}`),
      row('all statuses', (r) => statuses(r.statuses)),
      row('logins / logouts', (r) => `${fmtInt(r.logins)} / ${fmtInt(r.logouts)}`),
      row('increments acknowledged / unanswered (ambiguous)', (r) => `${fmtInt(r.incAcked)} / ${fmtInt(r.ambiguous)}`),
      row('sessions removed by "log out others"', (r) => fmtInt(r.killedByOthers)),
      row('deaths seen: killed / after an unanswered logout / raced a "log out others"', (r) => `${fmtInt(r.deaths.killed)} / ${fmtInt(r.deaths.loggedOut)} / ${fmtInt(r.deaths.raced)}`),
      row('verified at the end: live sessions / store entries / dead cookies', (r) => r.unverified !== undefined ? `not verified: ${r.unverified}` : `${fmtInt(r.checkedLive)} / ${fmtInt(r.storeChecked)} / ${fmtInt(r.checkedDead)}`),
      row('LOST (updates or sessions)', (r) => fmtInt(r.lost) + (r.target === 'cluster' ? ' (counted, not failed on: data writes do not wait for replicas)' : '')),
      row('PHANTOM writes', (r) => fmtInt(r.phantom)),
      row('RESURRECTED', (r) => fmtInt(r.resurrected)),
      row('outages (signal at, down, store back after start)', (r) => (r.windows ?? []).map((w) => `${w.signal} at ${w.startS.toFixed(1)} s, ${seconds(w.downMs)}, ${Number.isFinite(w.recoveryMs) ? seconds(w.recoveryMs) : 'NEVER'}`).join('; ') || '–'),
      row('server RSS before → after', (r) => `${mb(r.memBefore?.rss)} → ${mb(r.memAfter?.rss)}`),
      row('server heap before → after (after GC)', (r) => `${mb(r.memBefore?.heapUsed)} → ${mb(r.memAfter?.heapUsed)}`),
      row('sessions in the store after (memory: stats(), redis: DBSIZE, keys)', (r) => r.storeSessions === undefined ? 'n/a' : fmtInt(r.storeSessions)),
      row('server log lines (warn and above)', (r) => fmtInt(r.logLines?.total ?? 0)),
      row('deleteAll p50 / p99 without → with waitForReplicas: 1', (r) => r.waitCost === undefined
        ? '–'
        : `${r.waitCost[0].p50.toFixed(2)} / ${r.waitCost[0].p99.toFixed(2)} ms → ${r.waitCost[1].p50.toFixed(2)} / ${r.waitCost[1].p99.toFixed(2)} ms`)
    ]))
    console.log('\n## Server log lines, by level and message\n')
    for (const r of ran) {
      const lines = [...(r.logLines?.byKey ?? [])].map(([k, v]) => `  ${fmtInt(v)}× ${k}`)
      console.log(`${r.target}:${lines.length === 0 ? ' none' : '\n' + lines.join('\n')}`)
    }
    const notes = ran.flatMap((r) => (r.notes ?? []).map((f) => `- ${r.target}: ${f}`))
    if (notes.length > 0) console.log(`\n## Counted, not failed on (first samples)\n\n${notes.join('\n')}`)
    const failures = ran.flatMap((r) => r.failures.map((f) => `- ${r.target}: ${f}`))
    if (failures.length > 0) console.log(`\n## Failures (first samples)\n\n${failures.join('\n')}`)
  }
  console.log(`\nsoak: ${failed ? 'FAIL' : 'PASS'}`)
  return failed ? 1 : 0
}

runMain(main)
