// npm run bench:dbsc [-- --rounds N --block K --baseline DIR --out DIR]
// What device-bound sessions (issue 22) cost, measured in one process, blocks of each thing
// interleaved over the rounds, medians reported with their range:
// CPU time of the process, not wall time: other work on a shared machine does not count.
// - the refresh: its signature check alone, the store's compare-and-set alone, and the refresh
//   request whole (inject, server side only: the client signs outside the timed part) next to a
//   plain read request of the same session, on 'memory' and on 'redis';
// - the bytes a bound session adds in the store;
// - requests that are neither registration nor refresh: the same read and write requests on an
//   app with DBSC off and one with it on (and, with --baseline DIR, on the build in DIR: a
//   checkout of main, built), a login too.
import { generateKeyPairSync } from 'node:crypto'
import { writeFileSync, mkdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import Fastify from 'fastify'
import { CompactSign, exportJWK } from 'jose'
import { startRedis } from './lib/redis.js'
import { killAll } from './lib/procs.js'
import { silentLog } from './lib/routes.js'
import { fmtNum, fmtRange, median } from './lib/stats.js'

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '7' },
    block: { type: 'string', default: '400' },
    baseline: { type: 'string' },
    out: { type: 'string' }
  }
})
const ROUNDS = Number(args.rounds)
const BLOCK = Number(args.block)
const root = fileURLToPath(new URL('..', import.meta.url))
const dist = (dir, file) => import(resolve(dir, 'dist', file))
const { default: session } = await import('fastify-user-sessions')
const { verifyRefresh, dbscKey } = await dist(root, 'crypto/dbsc-proof.js')
const { encodeDbsc, newChallenge } = await dist(root, 'backends/dbsc-state.js')
const { hashSecret, newSecret } = await dist(root, 'crypto/ids.js')
// A browser's user agent: longer than Redis's 64-byte listpack values, as real ones are.
const HTTPS = {
  'x-forwarded-proto': 'https',
  'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36'
}

function keyPair (alg) {
  const pair = alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: 2048 })
  return { alg, ...pair }
}

async function sign (key, jti, withKey = false) {
  const header = { alg: key.alg, typ: 'dbsc+jwt', ...(withKey ? { jwk: await exportJWK(key.publicKey) } : {}) }
  return await new CompactSign(new TextEncoder().encode(JSON.stringify({ jti }))).setProtectedHeader(header).sign(key.privateKey)
}

/** CPU microseconds (user + system, all of the process's threads) since `since`. */
function cpuSince (since) {
  const { user, system } = process.cpuUsage(since)
  return user + system
}

/** CPU microseconds per call of `fn` over `n` calls, the block measured whole (CPU time: other work on the machine does not count). */
async function perCall (n, fn) {
  const started = process.cpuUsage()
  for (let i = 0; i < n; i++) await fn(i)
  return cpuSince(started) / n
}

/** The same, summing the CPU microseconds each call says its measured part took (the rest is the client's work). */
async function perCallOwn (n, fn) {
  let spent = 0
  for (let i = 0; i < n; i++) spent += await fn(i)
  return spent / n
}

/** Runs each measure once per round, in turn; resolves the list of figures of each. */
async function interleaved (measures) {
  const figures = Object.fromEntries(Object.keys(measures).map((k) => [k, []]))
  for (let round = 0; round < ROUNDS + 1; round++) {
    for (const [name, measure] of Object.entries(measures)) {
      const figure = await measure()
      if (round > 0) figures[name].push(figure) // the first round warms up
    }
  }
  return figures
}

async function app (plugin, options) {
  const a = Fastify({ trustProxy: true })
  await a.register(plugin, options)
  a.post('/login', async (req) => { await req.session.login('alice'); return { id: req.session.id } })
  a.get('/counter', async (req) => ({ counter: req.session.get('counter') ?? 0 }))
  a.post('/counter', async (req) => { req.session.set('counter', (req.session.get('counter') ?? 0) + 1); return { ok: true } })
  await a.ready()
  return a
}

const cookieOf = (res) => res.cookies.find((c) => c.name === 'sid')
const challengeOf = (res) => /^"([\w-]+)"/.exec(res.headers['secure-session-challenge'])[1]

/** A bound session on `a`: its id, cookie and key, and the challenge for its next refresh (kept current by `refresh`). */
async function device (a, alg = 'ES256') {
  const key = keyPair(alg)
  const login = await a.inject({ method: 'POST', url: '/login', headers: HTTPS })
  const challenge = /challenge="([\w-]+)"/.exec(login.headers['secure-session-registration'])[1]
  const res = await a.inject({ method: 'POST', url: '/dbsc/registration', headers: { ...HTTPS, cookie: `sid=${cookieOf(login).value}`, 'secure-session-response': await sign(key, challenge, true) } })
  const d = { key, id: login.json().id, cookie: `sid=${cookieOf(res).value}`, next: challengeOf(res) }
  d.refresh = async () => {
    const proof = await sign(key, d.next)
    const started = process.cpuUsage()
    const r = await a.inject({ method: 'POST', url: '/dbsc/refresh', headers: { ...HTTPS, 'sec-secure-session-id': d.id, 'secure-session-response': proof } })
    const us = cpuSince(started)
    if (r.statusCode !== 200) throw new Error(`refresh: ${r.statusCode} ${r.body}`)
    d.next = challengeOf(r)
    d.cookie = `sid=${cookieOf(r).value}`
    return us
  }
  return d
}

const lines = []
const closers = []
const result = {}
let redisBytes
const say = (line = '') => { lines.push(line); console.log(line) }
const redis = await startRedis()
try {
  say('# Device-bound sessions: what they cost')
  say()
  say(`Node ${process.version}, ${ROUNDS} rounds (after one to warm up) of ${BLOCK} calls per figure, interleaved; ` +
    'median (min–max) of the rounds, CPU µs per call of this process (user + system, all threads; Redis\'s own CPU not included).')
  say()

  // The signature check of a refresh, alone.
  const checks = {}
  for (const alg of ['ES256', 'RS256']) {
    const key = keyPair(alg)
    const stored = dbscKey(await exportJWK(key.publicKey))
    const proofs = await Promise.all(Array.from({ length: BLOCK }, (_, i) => sign(key, `challenge-${i}`)))
    checks[`signature check, ${alg} (verifyRefresh: key import + verify)`] = () => perCall(BLOCK, async (i) => {
      if (!(await verifyRefresh(proofs[i], stored, ['ES256', 'RS256'])).ok) throw new Error('refused')
    })
  }

  // The store's compare-and-set of the dbsc field alone, next to the plain write of a request (a touch).
  const stores = [['memory', {}]]
  if (redis.url !== undefined) stores.push(['redis', { url: redis.url, prefix: 'bench-dbsc:' }])
  const writes = {}
  const requests = {}
  for (const [name, storeOptions] of stores) {
    const a = await app(session, { store: name, storeOptions, dbsc: { cookieTtl: 600 } })
    const d = await device(a)
    // The store alone, as the plugin's refresh calls it: a store of the same kind, made directly.
    const { MemoryStore, RedisStore } = await import('fastify-user-sessions')
    const context = { clock: Date.now, log: silentLog, maxSessionsPerUser: 100 }
    const direct = name === 'memory' ? new MemoryStore({}, context) : new RedisStore(storeOptions, context)
    const id = d.id.replace(/\.[^.]+$/, '.') + 'A'.repeat(22)
    const boundKey = dbscKey(await exportJWK(d.key.publicKey))
    const field = (n) => encodeDbsc({ key: boundKey, credentials: [{ hash: hashSecret(newSecret()), at: n }], challenges: [] })
    let current = field(0)
    await direct.insert({ id, secretHash: hashSecret(newSecret()), userId: 'alice', data: {}, createdAt: Date.now(), lastSeenAt: Date.now(), expiresAt: Date.now() + 3_600_000, authenticatedAt: Date.now(), ip: undefined, userAgent: undefined, dbsc: current })
    const next = [field(1), field(2)]
    writes[`store write, ${name}: compare-and-set of the dbsc field`] = () => perCall(BLOCK, async (i) => {
      const to = next[i % 2] === current ? next[(i + 1) % 2] : next[i % 2]
      if (!await direct.patch(id, { clear: false, set: {}, unset: [], lastSeenAt: Date.now(), dbsc: { from: current, to } })) throw new Error('lost')
      current = to
    })
    writes[`store write, ${name}: a plain touch (reference)`] = () => perCall(BLOCK, async () => {
      await direct.patch(id, { clear: false, set: {}, unset: [], lastSeenAt: Date.now(), expiresAt: Date.now() + 3_600_000 })
    })
    requests[`refresh request, ${name} (inject, server side)`] = () => perCallOwn(BLOCK, () => d.refresh())
    requests[`plain read request of the bound session, ${name} (reference)`] = () => perCall(BLOCK, async () => {
      const r = await a.inject({ url: '/counter', headers: { ...HTTPS, cookie: d.cookie } })
      if (r.statusCode !== 200) throw new Error('read')
    })
    if (name === 'redis') {
      const plain = (await a.inject({ method: 'POST', url: '/counter', headers: HTTPS }))
      const plainId = cookieOf(plain).value.split('.')[0]
      const usage = async (sid) => await redis.client.call('MEMORY', 'USAGE', `bench-dbsc:s:{${sid.split('.')[0]}}${sid.includes('.') ? sid.slice(sid.indexOf('.')) : ''}`, 'SAMPLES', '0')
      const offeredLogin = await a.inject({ method: 'POST', url: '/login', headers: HTTPS })
      const unboundLogin = await a.inject({ method: 'POST', url: '/login', headers: { 'user-agent': HTTPS['user-agent'] } })
      redisBytes = { anonymous: await usage(plainId), loggedIn: await usage(unboundLogin.json().id), offered: await usage(offeredLogin.json().id), bound: await usage(d.id) }
    }
    closers.push(() => a.close(), () => direct.close())
  }

  // Requests that are neither registration nor refresh: DBSC off, on, and the baseline build.
  const builds = [['this build, dbsc off', session, {}], ['this build, dbsc on', session, { dbsc: true }]]
  if (args.baseline !== undefined) {
    const { default: baseline } = await dist(args.baseline, 'index.js')
    builds.push(['baseline build', baseline, {}])
  }
  const plainRequests = {}
  for (const [label, plugin, options] of builds) {
    const a = await app(plugin, { store: 'memory', ...options })
    closers.push(() => a.close())
    const cookie = `sid=${cookieOf(await a.inject({ method: 'POST', url: '/counter', headers: HTTPS })).value}`
    plainRequests[`read, ${label}`] = () => perCall(BLOCK, async () => { await a.inject({ url: '/counter', headers: { ...HTTPS, cookie } }) })
    plainRequests[`write, ${label}`] = () => perCall(BLOCK, async () => { await a.inject({ method: 'POST', url: '/counter', headers: { ...HTTPS, cookie } }) })
    plainRequests[`login over https, ${label}`] = () => perCall(BLOCK, async () => { await a.inject({ method: 'POST', url: '/login', headers: HTTPS }) })
  }

  // The one function of the request path that changed: reading a session cookie (backend.load), in blocks of many calls.
  const loads = {}
  const loaders = [['this build, dbsc off', root, {}], ['this build, dbsc on', root, { dbsc: true }]]
  if (args.baseline !== undefined) loaders.push(['baseline build', args.baseline, {}])
  for (const [label, dir, options] of loaders) {
    const { ServerBackend } = await dist(dir, 'backends/server.js')
    const { SessionCore } = await dist(dir, 'backends/core.js')
    const { normalizeOptions } = await dist(dir, 'options.js')
    const { MemoryStore } = await dist(dir, 'stores/memory.js')
    const ids = await dist(dir, 'crypto/ids.js')
    const store = new MemoryStore({}, { clock: Date.now, log: silentLog, maxSessionsPerUser: 100 })
    closers.push(() => store.close())
    const backend = new ServerBackend(new SessionCore(normalizeOptions({ store, ...options })), store, silentLog)
    const secret = ids.newSecret()
    // A baseline before 0.2 takes the user id; since, the user's tag under the store's owner key.
    const id = ids.userTag === undefined ? ids.newSessionId('alice') : ids.newSessionId(ids.userTag(await store.ownerKey(), 'alice'))
    const now = Date.now()
    await store.insert({ id, secretHash: ids.hashSecret(secret), userId: 'alice', data: { counter: 1 }, createdAt: now, lastSeenAt: now, expiresAt: now + 3_600_000, authenticatedAt: now, ip: '127.0.0.1', userAgent: HTTPS['user-agent'] })
    const raw = `${id}.${secret}`
    loads[`load() of a logged-in session's cookie, ${label}`] = () => perCall(BLOCK * 20, async () => {
      if ((await backend.load(silentLog, raw, false)).kind !== 'loaded') throw new Error('not loaded')
    })
  }

  for (const [title, measures] of [['The signature check of a refresh', checks], ['The store write of a refresh', writes],
    ['A refresh request whole', requests], ['Requests that are neither registration nor refresh', plainRequests],
    ['The request path\'s one changed function', loads]]) {
    const figures = await interleaved(measures)
    say(`## ${title}`)
    say()
    say('| what | CPU µs per call |')
    say('|---|---|')
    for (const [name, values] of Object.entries(figures)) say(`| ${name} | ${fmtRange(values, (x) => fmtNum(x, 1))} |`)
    say()
    result[title] = Object.fromEntries(Object.entries(figures).map(([k, v]) => [k, median(v)]))
  }

  const es = dbscKey(await exportJWK(keyPair('ES256').publicKey))
  const rs = dbscKey(await exportJWK(keyPair('RS256').publicKey))
  const credentials = [{ hash: hashSecret(newSecret()), at: Date.now() }, { hash: hashSecret(newSecret()), at: Date.now() }]
  const challenge = { value: newChallenge(), until: Date.now() }
  say('## Bytes a session keeps for DBSC (its dbsc field)')
  say()
  say('| state | bytes |')
  say('|---|---|')
  say('| never offered (a login over http, a token, an anonymous session) | 0 (no field) |')
  say(`| offered at a login over https, not bound (one challenge) | ${encodeDbsc({ key: undefined, credentials: [], challenges: [challenge] }).length} |`)
  say(`| bound, ES256 key, two credentials, one challenge ahead | ${encodeDbsc({ key: es, credentials, challenges: [challenge] }).length} |`)
  say(`| bound, RS256 key (2048 bits), two credentials, one challenge ahead | ${encodeDbsc({ key: rs, credentials, challenges: [challenge] }).length} |`)
  say(`| bound, ES256, at most (four challenges pending) | ${encodeDbsc({ key: es, credentials, challenges: [challenge, challenge, challenge, challenge] }).length} |`)
  if (redisBytes !== undefined) {
    say()
    say(`Redis \`MEMORY USAGE\` of one session's hash: anonymous ${redisBytes.anonymous} B, logged in over http ${redisBytes.loggedIn} B, ` +
      `logged in over https (offered) ${redisBytes.offered} B, bound (ES256) ${redisBytes.bound} B.`)
  }
  if (args.out !== undefined) {
    mkdirSync(args.out, { recursive: true })
    writeFileSync(join(args.out, 'dbsc.md'), lines.join('\n') + '\n')
  }
} finally {
  for (const close of closers.reverse()) await close()
  await redis.stop?.()
  killAll()
}
