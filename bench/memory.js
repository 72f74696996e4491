// Heap per stored session, and what cookieless traffic stores. Run by bench/run.js in its
// own process: node --expose-gc bench/memory.js '<json options>'
import { Worker } from 'node:worker_threads'
import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import session, { userTag } from 'fastify-user-sessions'
import { counterRoutes, SECRET } from './lib/routes.js'
import { Ids, openStore, record } from './lib/stores.js'

const opts = JSON.parse(process.argv[2])

function heap () {
  global.gc()
  global.gc()
  return process.memoryUsage().heapUsed
}

/** Ours, filled through the store API with anonymous sessions holding `{ counter }`. */
async function storeBytes (size) {
  const ids = new Ids()
  const { store } = await openStore('memory', { maxSessions: size + 1000 })
  const before = heap()
  const now = Date.now()
  for (let i = 0; i < size; i++) await store.insert(record(ids, { counter: i, now }))
  const after = heap()
  if (store.stats().sessions !== size) throw new Error(`the store holds ${store.stats().sessions} sessions, not ${size}`)
  await store.close()
  return { size, bytes: (after - before) / size }
}

/**
 * Ours, with `users` users logged in with one session each, inserted through the store API as
 * login() makes them: a user-bound id, no data carried over, a user agent and an address.
 * The per-user index is part of the figure.
 */
async function loggedInBytes (users) {
  const ids = new Ids()
  const { store } = await openStore('memory', { maxSessions: users + 1000 })
  const ownerKey = await store.ownerKey()
  const before = heap()
  const now = Date.now()
  for (let i = 0; i < users; i++) {
    const userId = String(1_000_000 + i)
    await store.insert(record(ids, { userId, tag: userTag(ownerKey, userId), data: {}, now }))
  }
  const after = heap()
  const { sessions, users: indexed } = store.stats()
  if (sessions !== users || indexed !== users) throw new Error(`the store holds ${sessions} sessions of ${indexed} users, not ${users}`)
  await store.close()
  return { users, bytes: (after - before) / users }
}

async function oursApp () {
  const { store } = await openStore('memory', { maxSessions: 2_000_000 })
  const app = Fastify({ logger: false })
  await app.register(session, { secret: SECRET, store })
  counterRoutes(app, (req) => req.session)
  return { app, stored: () => store.stats().sessions }
}

async function peerApp () {
  const store = new fastifySession.MemoryStore()
  const app = Fastify({ logger: false })
  await app.register(fastifyCookie)
  await app.register(fastifySession, { secret: SECRET, cookie: { secure: false }, store })
  counterRoutes(app, (req) => req.session)
  return { app, stored: () => store.store.size }
}

// The requests come from a worker thread, whose garbage stays out of this isolate's heap.
// (Not app.inject(): light-my-request keeps about 9.5 KB per injected request, which would drown the figure.)
const CLIENT = `
const http = require('node:http')
const { parentPort, workerData: { url, method, n } } = require('node:worker_threads')
const agent = new http.Agent({ keepAlive: true, maxSockets: 32 })
let next = 0
function one () {
  return new Promise((resolve, reject) => {
    const loop = () => {
      if (next >= n) return resolve()
      next++
      http.request(url, { method, agent }, (res) => {
        res.resume()
        res.on('end', () => res.statusCode === 200 ? loop() : reject(new Error('status ' + res.statusCode)))
      }).on('error', reject).end()
    }
    loop()
  })
}
Promise.all(Array.from({ length: 32 }, one)).then(() => { agent.destroy(); parentPort.postMessage('done') })
`

function drive (url, method, n) {
  return new Promise((resolve, reject) => {
    const worker = new Worker(CLIENT, { eval: true, workerData: { url, method, n } })
    worker.once('message', () => { worker.terminate().then(() => resolve()) })
    worker.once('error', reject)
  })
}

/** `n` requests without a cookie; resolves the heap growth per request and what was stored. */
async function cookieless (build, method, n) {
  const { app, stored } = await build()
  await app.listen({ host: '127.0.0.1', port: 0 })
  const url = `http://127.0.0.1:${app.server.address().port}/counter`
  await drive(url, method, Math.min(500, n))
  const base = stored()
  const before = heap()
  await drive(url, method, n)
  const after = heap()
  const result = { stored: stored() - base, bytesPerRequest: (after - before) / n }
  await app.close()
  return result
}

// Run alone, it prints what it would send to bench/run.js.
const send = process.send?.bind(process) ?? ((msg) => console.log(JSON.stringify(msg, null, 1)))

try {
  const store = []
  for (const size of opts.storeSizes) store.push(await storeBytes(size))
  const loggedIn = await loggedInBytes(opts.loggedIn)
  // Sessions created through the apps by the write route, one per cookieless request.
  const app = []
  for (const [label, build] of [["ours, 'memory', sessions created by requests", oursApp], ['@fastify/session, MemoryStore, sessions created by requests', peerApp]]) {
    const r = await cookieless(build, 'POST', opts.appSize)
    app.push({ label, size: r.stored, bytes: r.stored === 0 ? null : r.bytesPerRequest * opts.appSize / r.stored })
  }
  // Cookieless reads.
  const ours = await cookieless(oursApp, 'GET', opts.cookieless)
  const peer = await cookieless(peerApp, 'GET', opts.cookieless)
  send({ store, loggedIn, app, cookieless: { requests: opts.cookieless, ours, peer } })
} catch (err) {
  send({ error: err.stack })
}
