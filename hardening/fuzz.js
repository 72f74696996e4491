// npm run fuzz [-- --cases N --seed S --targets memory,redis,cookie --concurrency C --timeout MS --quick]
// npm run fuzz -- --seed S --case N [--targets t]     replays one case, printing the bytes sent
//
// Fuzzes a live server (its own process, real HTTP on a loopback port) on each store with
// random and mutated cookies, many cookies, huge headers, control and non-ASCII bytes, and
// hostile keys in session data. Counts responses by status. Fails (exit 1) on any 5xx, a
// crash, a hang, a mutated cookie that loads a session, a valid cookie that does not, data
// that does not read back as written, or a polluted prototype on the server.
import { createHash, randomInt } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { number, options, targets as targetList } from './lib/args.js'
import { caseAt, dataText, deepEqual, expectedData, HEADER_LIMIT, JUNK_NAMES, mutate, validUserId } from './lib/cases.js'
import { buildRequest, Connection, json, setCookieValue } from './lib/http.js'
import { runMain, startServer } from './lib/procs.js'
import { redisMissing, redisServerAvailable, startRedis } from './lib/redis.js'
import { fmtInt, hex, machine, mb, seconds, statuses, table } from './lib/report.js'

const TARGETS = ['memory', 'redis', 'cookie']
const args = options({
  cases: { type: 'string' },
  seed: { type: 'string' },
  targets: { type: 'string' },
  concurrency: { type: 'string' },
  timeout: { type: 'string' },
  case: { type: 'string' }
})
const CASES = number(args, 'cases', args.quick ? 300 : 100_000)
const SEED = args.seed === undefined ? randomInt(2 ** 31) : Number(args.seed) | 0
const CONCURRENCY = number(args, 'concurrency', 8)
const TIMEOUT = number(args, 'timeout', 10_000)
const ONLY = args.case === undefined ? undefined : number(args, 'case')
const MAX_SAMPLES = 20

const POOL_USERS = 24
const POOL_ANON = 12
const POOL_ALT = 8

function cookieHeader (value) {
  return ['Cookie', Buffer.from(value, 'latin1')]
}

/** Header values holding CR, LF or a space in the request line can split the request: use a fresh connection after. */
function dirty (bytes) {
  const end = bytes.indexOf('\r\n\r\n')
  const head = end === -1 ? bytes : bytes.subarray(0, end)
  let lines = 0
  for (let i = 0; i < head.length; i++) {
    const b = head[i]
    if (b === 0x0a) lines++
    if ((b === 0x0d && head[i + 1] !== 0x0a) || (b === 0x0a && head[i - 1] !== 0x0d)) return true
  }
  return lines === 0 || head.subarray(0, head.indexOf(0x0d)).toString('latin1').split(' ').length !== 3
}

async function fuzzTarget (target, server) {
  const stats = {
    target,
    cases: 0,
    requests: 0,
    statuses: new Map(),
    kinds: new Map(),
    failures: new Map(),
    samples: [],
    tooLarge: 0,
    refusedKeys: 0,
    forgeriesTried: 0,
    controls: 0
  }
  const pool = { user: [], anon: [], alt: [] }
  const issued = new Map() // hash of a cookie value the server issued -> { id, userId }
  const altIssued = new Map()
  // Cookies of the workers' own data sessions, which change on every write on the cookie store:
  // hashed here as the server hashes what it parsed, never looked up in the session oracle by id.
  const dataIssued = new Set()
  const issue = (value) => {
    if (value !== undefined) dataIssued.add(createHash('sha256').update(value).digest('base64url').slice(0, 22))
    return value
  }
  const crash = { seen: false }
  server.exited.then(() => { if (server.crashed()) crash.seen = true })

  function fail (kind, i, c, detail, bytes) {
    stats.failures.set(kind, (stats.failures.get(kind) ?? 0) + 1)
    if (stats.samples.length < MAX_SAMPLES) {
      stats.samples.push({ kind, case: i, input: JSON.stringify(c, (k, v) => (v instanceof Uint8Array ? hex(Buffer.from(v), 80) : v)).slice(0, 600), detail, request: bytes === undefined ? undefined : hex(bytes) })
    }
  }

  /** One request; counts its status, fails the case on a 5xx or a hang. Resolves the response or undefined. */
  async function send (conn, request, i, c) {
    const bytes = buildRequest(request)
    stats.requests++
    if (ONLY !== undefined) console.log(`  > ${hex(bytes, 4000)}`)
    let res
    try {
      res = await conn.request(bytes, { timeout: TIMEOUT, noBody: request.method === 'HEAD' })
    } catch (err) {
      const key = err.kind ?? 'error'
      stats.statuses.set(key, (stats.statuses.get(key) ?? 0) + 1)
      if (key === 'timeout') fail('hang', i, c, err.message, bytes)
      else if (key !== 'reset') fail('client error', i, c, err.message, bytes)
      return undefined
    }
    if (dirty(bytes)) conn.close()
    stats.statuses.set(res.status, (stats.statuses.get(res.status) ?? 0) + 1)
    if (ONLY !== undefined) console.log(`  < ${res.status} ${res.body.toString('utf8').slice(0, 300)}`)
    if (res.status >= 500) fail('5xx', i, c, `${res.status} ${res.body.toString('utf8').slice(0, 300)}`, bytes)
    return res
  }

  /** The forgery oracle: a /me that loaded a session must have been sent a cookie the server issued for it. */
  function checkMe (res, i, c, bytes, known = issued) {
    if (res === undefined || res.status !== 200) return undefined
    const body = json(res)
    if (body === undefined) {
      fail('bad body', i, c, res.body.toString('utf8').slice(0, 200), bytes)
      return undefined
    }
    if (body.id !== null && !(known === issued && dataIssued.has(body.cookie))) {
      const entry = known.get(body.cookie)
      if (entry === undefined || entry.id !== body.id || entry.userId !== body.userId) {
        fail('forged', i, c, `a cookie the server never issued loaded session of user ${JSON.stringify(body.userId)}`, bytes)
      }
    }
    return body
  }

  async function me (conn, value, i, c, { name = 'sid', path = '/me', known = issued, extra = [] } = {}) {
    const request = { path, headers: [...extra, ...(value === undefined ? [] : [cookieHeader(`${name}=${value}`)])] }
    const res = await send(conn, request, i, c)
    return checkMe(res, i, c, buildRequest(request), known)
  }

  /** Registers a cookie the server just issued: what it parses it as, and the session it loads. */
  async function register (conn, value, { name = 'sid', path = '/me', known = issued } = {}) {
    const res = await conn.request(buildRequest({ path, headers: [cookieHeader(`${name}=${value}`)] }), { timeout: TIMEOUT })
    stats.requests++
    const body = json(res)
    if (res.status !== 200 || body?.id == null) throw new Error(`a cookie the server just issued does not load its session (${res.status})`)
    known.set(body.cookie, { id: body.id, userId: body.userId })
    return body
  }

  function cookieFrom (res, name = 'sid') {
    const raw = setCookieValue(res, name)
    return raw === undefined || raw === '' ? undefined : decodeURIComponent(raw)
  }

  const setup = new Connection(server.port)
  for (let k = 0; k < POOL_USERS; k++) {
    const res = await setup.request(buildRequest({ method: 'POST', path: '/login', headers: [['Content-Type', 'application/json']], body: JSON.stringify({ user: `pool-${k}` }) }))
    const value = cookieFrom(res)
    pool.user.push({ value, ...(await register(setup, value)) })
  }
  for (let k = 0; k < POOL_ANON; k++) {
    const value = cookieFrom(await setup.request(buildRequest({ method: 'POST', path: '/anon' })))
    pool.anon.push({ value, ...(await register(setup, value)) })
  }
  for (let k = 0; k < POOL_ALT; k++) {
    const res = await setup.request(buildRequest({ method: 'POST', path: '/alt/login', headers: [['Content-Type', 'application/json']], body: JSON.stringify({ user: `pool-${k}` }) }))
    const value = cookieFrom(res, 'alt')
    pool.alt.push({ value, ...(await register(setup, value, { name: 'alt', path: '/alt/me', known: altIssued })) })
  }
  const allValues = [...pool.user, ...pool.anon].map((p) => p.value)
  const pick = (source, base) => (source === 'anon' ? pool.anon : pool.user)[base % (source === 'anon' ? POOL_ANON : POOL_USERS)]
  const memBefore = json(await setup.request(buildRequest({ path: '/admin/mem' })))

  async function runCase (w, i) {
    const c = caseAt(SEED, i)
    stats.cases++
    stats.kinds.set(c.kind, (stats.kinds.get(c.kind) ?? 0) + 1)
    if (ONLY !== undefined) console.log(`case ${i}: ${JSON.stringify(c, (k, v) => (v instanceof Uint8Array ? hex(Buffer.from(v), 200) : v))}`)
    const conn = w.conn
    switch (c.kind) {
      case 'mutate': {
        const base = pick(c.source, c.base)
        const value = c.ops.reduce((v, op) => mutate(v, op, allValues), base.value)
        if (value !== base.value) stats.forgeriesTried++
        await me(conn, value, i, c)
        break
      }
      case 'random': {
        const bytes = typeof c.value === 'string' ? Buffer.from(c.value, 'utf8') : Buffer.from(c.value)
        const header = c.whole ? bytes : Buffer.concat([Buffer.from('sid=' + c.prefix, 'latin1'), bytes])
        await me(conn, header.toString('latin1'), i, c, { name: '' })
        break
      }
      case 'control': {
        const base = pick(c.source, c.base)
        const body = await me(conn, base.value, i, c)
        stats.controls++
        if (body === undefined || body.id !== base.id || body.userId !== base.userId) fail('control', i, c, 'a valid cookie did not load its session')
        break
      }
      case 'otherName': {
        const main = pick('user', c.base)
        const alt = pool.alt[c.base % POOL_ALT]
        const variants = [
          () => me(conn, alt.value, i, c), // a valid cookie of the other name, sent as sid
          () => me(conn, main.value, i, c, { name: 'alt' }),
          () => me(conn, main.value, i, c, { name: 'SID' }),
          () => me(conn, main.value, i, c, { name: 'sid2' }),
          () => me(conn, main.value, i, c, { name: '__Host-sid' }),
          () => me(conn, main.value, i, c, { name: ' sid ' }), // the parser trims: this one may load, legitimately
          () => me(conn, main.value, i, c, { name: 's%69d' }),
          () => me(conn, main.value, i, c, { name: 'alt', path: '/alt/me', known: altIssued }) // sid's cookie to the alt instance
        ]
        await variants[c.variant % variants.length]()
        break
      }
      case 'many': {
        const parts = []
        for (let k = 0; k < c.n; k++) parts.push(`${k % 3 === 0 ? JUNK_NAMES[(c.junk + k) % JUNK_NAMES.length] : 'c' + k}=v${(c.junk * 31 + k) % 1000}`)
        const base = pick('user', c.base)
        c.sids.forEach((type, k) => {
          const value = type === 'valid'
            ? base.value
            : type === 'mutated'
              ? c.ops.reduce((v, op) => mutate(v, op, allValues), base.value)
              : type === 'random' ? `r${c.junk}` : type === 'other' ? pool.alt[c.base % POOL_ALT].value : ''
          parts.splice(c.positions[k] % (parts.length + 1), 0, `sid=${value}`)
        })
        await me(conn, parts.join(c.sep), i, c, { name: '' })
        break
      }
      case 'huge': {
        const base = pick('user', c.base)
        const size = c.size
        const extra = []
        let cookie = `sid=${base.value}`
        let path = '/me'
        if (c.shape === 'cookie') cookie += '; pad=' + 'x'.repeat(Math.max(0, size - cookie.length - 40))
        else if (c.shape === 'cookies') {
          const pads = []
          for (let len = 0; len < size - 60; len += 14) pads.push(`p${pads.length}=${'y'.repeat(8)}`)
          cookie = pads.join('; ') + '; ' + cookie
        } else if (c.shape === 'headers') {
          for (let len = 0; len < size - 60; len += 120) extra.push([`X-Pad-${extra.length}`, 'z'.repeat(108)])
        } else if (c.shape === 'url') path = '/me?pad=' + 'q'.repeat(Math.max(0, size - 40))
        if (c.shape === 'userAgent') {
          const res = await send(conn, { method: 'POST', path: '/anon', headers: [['User-Agent', 'u'.repeat(size)]] }, i, c)
          if (res?.status === 200 && cookieFrom(res) === undefined) fail('no cookie', i, c, 'POST /anon answered 200 without a session cookie')
        } else {
          await me(conn, cookie, i, c, { name: '', path, extra })
        }
        break
      }
      case 'bytes': {
        const base = pick('user', c.base)
        const bytes = Buffer.from(c.bytes)
        const valid = Buffer.from(`sid=${base.value}`, 'latin1')
        const insert = (buf, at) => Buffer.concat([buf.subarray(0, at), bytes, buf.subarray(at)])
        const req = { path: '/me', headers: [] }
        switch (c.where) {
          case 'cookieValue': req.headers.push(['Cookie', insert(valid, 4 + (c.at % (valid.length - 3)))]); break
          case 'cookieName': req.headers.push(['Cookie', Buffer.concat([bytes, Buffer.from(`=${base.value}`, 'latin1')])]); break
          case 'cookieHeader': req.headers.push(['Cookie', bytes]); break
          case 'header': req.headers.push(['X-Fuzz', bytes], ['Cookie', valid]); break
          case 'path': req.path = Buffer.concat([Buffer.from('/me'), bytes]); req.headers.push(['Cookie', valid]); break
          case 'query': req.path = Buffer.concat([Buffer.from('/me?q='), bytes]); req.headers.push(['Cookie', valid]); break
          case 'userAgent': req.method = 'POST'; req.path = '/anon'; req.headers.push(['User-Agent', bytes]); break
        }
        const res = await send(conn, req, i, c)
        if (req.path === '/me' || (Buffer.isBuffer(req.path) && req.path.subarray(0, 3).toString() === '/me')) checkMe(res, i, c, buildRequest(req))
        break
      }
      case 'data': {
        if (w.data === undefined) {
          w.data = issue(cookieFrom(await send(conn, { method: 'POST', path: '/data', headers: [['Content-Type', 'application/json']], body: '{"init":1}' }, i, c) ?? { headers: new Map() }))
        }
        const text = dataText({ t: 'o', entries: c.entries }, c.escapes)
        const cookie = w.data === undefined ? [] : [cookieHeader(`sid=${w.data}`)]
        const put = await send(conn, { method: 'POST', path: '/data', headers: [['Content-Type', 'application/json'], ...cookie], body: text }, i, c)
        if (put === undefined) break
        w.data = issue(cookieFrom(put)) ?? w.data
        if (put.status !== 200 && put.status !== 413) {
          fail('data', i, c, `POST /data answered ${put.status}: ${put.body.toString('utf8').slice(0, 200)}`)
          break
        }
        const { exact, refused } = expectedData(JSON.parse(text))
        stats.refusedKeys += refused
        if (put.status === 413) stats.tooLarge++
        const answered = json(put)?.refused?.length
        if (answered !== refused) fail('data', i, c, `set() refused ${answered} keys of ${text.slice(0, 300)}, the documented rules refuse ${refused}`)
        const got = await send(conn, { path: '/data', headers: [cookieHeader(`sid=${w.data}`)] }, i, c)
        if (got === undefined || got.status !== 200) break
        const data = json(got)
        const expected = put.status === 413 ? {} : exact
        if (!deepEqual(data, expected)) fail('data', i, c, `wrote ${text.slice(0, 300)} read back ${JSON.stringify(data).slice(0, 300)}`)
        break
      }
      case 'login': {
        const headers = [['Content-Type', 'application/json']]
        if (c.ua !== null) headers.push(['User-Agent', Buffer.from(c.ua)])
        const res = await send(conn, { method: 'POST', path: '/login', headers, body: JSON.stringify({ user: c.user }) }, i, c)
        if (res === undefined || res.status >= 500) break
        const valid = validUserId(c.user)
        const body = json(res)
        if (res.status === 400 && body?.message === 'Client Error') break // Node's parser refused the User-Agent bytes
        if (res.status === 400 && res.headers.get('set-cookie') === undefined && !valid && body?.code === 'FST_SESSION_USER_ID_INVALID') break
        if (res.status !== 200 || !valid || body?.userId !== String(c.user)) {
          if (res.status !== 400 || valid) fail('login', i, c, `login(${JSON.stringify(c.user)}) answered ${res.status} ${res.body.toString('utf8').slice(0, 200)}`)
          break
        }
        const value = cookieFrom(res)
        const seen = await register(conn, value)
        if (seen.userId !== String(c.user) || seen.id !== body.id) fail('login', i, c, `the cookie of ${JSON.stringify(c.user)} loads ${JSON.stringify(seen.userId)}`)
        break
      }
      case 'junk': {
        const headers = []
        if (c.contentType !== undefined) headers.push(['Content-Type', c.contentType])
        // A junk request may log in or clear the session it carries: it carries the worker's own
        // data session, never a pool cookie the oracle relies on.
        if (c.cookie === 'valid') {
          w.data ??= issue(cookieFrom(await send(conn, { method: 'POST', path: '/data', headers: [['Content-Type', 'application/json']], body: '{"init":1}' }, i, c) ?? { headers: new Map() }))
          if (w.data !== undefined) headers.push(cookieHeader(`sid=${w.data}`))
        }
        if (c.cookie === 'mutated') headers.push(cookieHeader(`sid=${c.ops.reduce((v, op) => mutate(v, op, allValues), pick('user', c.base).value)}`))
        const body = c.body === undefined || c.method === 'GET' || c.method === 'HEAD' ? undefined : c.body
        const req = { method: c.method, path: c.path, headers, body }
        const res = await send(conn, req, i, c)
        if (res !== undefined && setCookieValue(res, 'sid') !== undefined) w.data = issue(cookieFrom(res))
        if (c.method === 'GET' && (c.path === '/me' || c.path === '//me')) checkMe(res, i, c, buildRequest(req))
        break
      }
      default: throw new Error(`unknown case kind ${c.kind}`)
    }
  }

  const started = performance.now()
  const first = ONLY ?? 0
  const last = ONLY === undefined ? CASES : ONLY + 1
  let next = first
  let checked = first
  let maxRss = 0
  const workers = Array.from({ length: ONLY === undefined ? CONCURRENCY : 1 }, () => ({ conn: new Connection(server.port), data: undefined }))
  let progressAt = performance.now()
  await Promise.all(workers.map(async (w, k) => {
    while (next < last && !crash.seen) {
      const i = next++
      await runCase(w, i)
      if (k === 0 && i - checked >= 5000) {
        checked = i
        const health = json(await setup.request(buildRequest({ path: '/admin/stats' }), { timeout: TIMEOUT }))
        if (health?.polluted !== false) fail('polluted', i, {}, 'Object.prototype of the server changed')
        const mem = json(await setup.request(buildRequest({ path: '/admin/mem' }), { timeout: TIMEOUT }))
        maxRss = Math.max(maxRss, mem?.rss ?? 0)
        if (performance.now() - progressAt > 15_000) {
          progressAt = performance.now()
          console.log(`  ${target}: ${fmtInt(i)} / ${fmtInt(last)} cases, ${fmtInt(stats.requests)} requests, ${seconds(performance.now() - started)}`)
        }
      }
    }
    w.conn.close()
  }))
  stats.ms = performance.now() - started
  if (crash.seen || server.crashed()) {
    fail('crash', next, {}, `the server exited: ${server.stderr().slice(-1500)}`)
    setup.close()
    return stats
  }
  // Every pool cookie still loads its session; nothing polluted; memory and store after.
  for (const p of [...pool.user, ...pool.anon]) {
    const body = await me(setup, p.value, -1, { kind: 'final control' })
    if (body?.id !== p.id) fail('control', -1, { kind: 'final control' }, 'a pool cookie no longer loads its session')
  }
  const health = json(await setup.request(buildRequest({ path: '/admin/stats' }), { timeout: TIMEOUT }))
  if (health?.polluted !== false) fail('polluted', -1, {}, 'Object.prototype of the server changed')
  stats.memBefore = memBefore
  stats.memAfter = json(await setup.request(buildRequest({ path: '/admin/mem' }), { timeout: TIMEOUT }))
  stats.maxRss = Math.max(maxRss, stats.memAfter?.rss ?? 0)
  stats.storeSessions = health?.memory?.sessions
  setup.close()
  return stats
}

async function main () {
  console.log(`# npm run fuzz\n\nseed: ${SEED} (rerun: npm run fuzz -- --seed ${SEED}${args.cases === undefined ? '' : ` --cases ${CASES}`}; one case: --seed ${SEED} --case N)`)
  console.log(`cases per target: ${fmtInt(ONLY === undefined ? CASES : 1)}, concurrency ${CONCURRENCY}, per-request timeout ${TIMEOUT} ms, header limit ${fmtInt(HEADER_LIMIT)} bytes`)
  console.log(`machine: ${machine()}\n`)
  const results = []
  let failed = false
  for (const target of targetList(args, TARGETS)) {
    let redis
    if (target === 'redis') {
      if (!redisServerAvailable()) {
        redisMissing('npm run fuzz')
        results.push({ target, skipped: 'skipped: redis-server not found' })
        if (process.env.CI === 'true') failed = true
        continue
      }
      redis = await startRedis()
    }
    try {
      const server = await startServer({ store: target, redisUrl: redis?.url, alt: true, lenientJson: true })
      if (server.unavailable !== undefined) {
        results.push({ target, skipped: `n/a (${server.unavailable})` })
        continue
      }
      console.log(`${target}: fuzzing ${fmtInt(ONLY === undefined ? CASES : 1)} cases`)
      const stats = await fuzzTarget(target, server)
      if (redis !== undefined) stats.storeSessions = await redis.admin.dbsize()
      stats.logLines = server.lines
      await server.stop()
      results.push(stats)
      if (stats.failures.size > 0) failed = true
      console.log(`${target}: ${stats.failures.size === 0 ? 'ok' : 'FAILED'} in ${seconds(stats.ms)}`)
    } finally {
      await redis?.close()
    }
  }

  console.log('\n## Summary\n')
  console.log(table(['target', 'cases', 'requests', 'duration', 'req/s', 'failures', 'statuses'], results.map((r) => r.skipped !== undefined
    ? [r.target, r.skipped, '–', '–', '–', '–', '–']
    : [r.target, fmtInt(r.cases), fmtInt(r.requests), seconds(r.ms), fmtInt(r.requests / (r.ms / 1000)),
        r.failures.size === 0 ? '0' : [...r.failures].map(([k, v]) => `${k}: ${v}`).join(', '), statuses(r.statuses)])))
  const ran = results.filter((r) => r.skipped === undefined)
  if (ran.length > 0) {
    console.log('\n## Cases by kind\n')
    const kinds = [...new Set(ran.flatMap((r) => [...r.kinds.keys()]))].sort()
    console.log(table(['kind', ...ran.map((r) => r.target)], kinds.map((k) => [k, ...ran.map((r) => fmtInt(r.kinds.get(k) ?? 0))])))
    console.log('\n## Checks\n')
    console.log(table(['check', ...ran.map((r) => r.target)], [
      ['mutated cookies sent (≠ original)', ...ran.map((r) => fmtInt(r.forgeriesTried))],
      ['valid cookies that loaded their session (controls)', ...ran.map((r) => fmtInt(r.controls))],
      ['data keys refused by set() (bad key, or a value holding a poisoning key)', ...ran.map((r) => fmtInt(r.refusedKeys))],
      ['writes refused as too large (413, cookie store)', ...ran.map((r) => fmtInt(r.tooLarge))],
      ['server memory before (RSS / heap)', ...ran.map((r) => `${mb(r.memBefore?.rss)} / ${mb(r.memBefore?.heapUsed)}`)],
      ['server memory after (RSS / heap)', ...ran.map((r) => `${mb(r.memAfter?.rss)} / ${mb(r.memAfter?.heapUsed)}`)],
      ['server RSS, highest sampled', ...ran.map((r) => mb(r.maxRss))],
      ['sessions in the store after (memory: stats(), redis: DBSIZE)', ...ran.map((r) => r.storeSessions === undefined ? 'n/a (stateless)' : fmtInt(r.storeSessions))],
      ['server log lines (warn and above)', ...ran.map((r) => fmtInt(r.logLines?.total ?? 0))]
    ]))
    const samples = ran.flatMap((r) => r.samples.map((s) => ({ target: r.target, ...s })))
    if (samples.length > 0) {
      console.log('\n## Failures (first samples)\n')
      for (const s of samples) {
        console.log(`- ${s.target} ${s.kind}, case ${s.case} (replay: npm run fuzz -- --seed ${SEED} --case ${s.case} --targets ${s.target}): ${s.detail}\n  case: ${s.input}${s.request === undefined ? '' : `\n  request: ${s.request}`}`)
      }
    }
  }
  console.log(`\nfuzz: ${failed ? 'FAIL' : 'PASS'} (seed ${SEED})`)
  return failed ? 1 : 0
}

runMain(main)
