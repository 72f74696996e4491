// getAll(userId) for a user with 10 sessions while the store holds more and more other
// sessions: ours against the SCAN-based reference design, on Redis and in memory.
// Run by bench/run.js in its own process: node bench/getall.js '<json options>'
import { performance } from 'node:perf_hooks'
import Redis from 'ioredis'
import { userTag } from 'fastify-user-sessions'
import { median } from './lib/stats.js'
import { Ids, openStore, pool, record } from './lib/stores.js'
import { ScanMemoryStore, ScanRedisStore } from './scan-store.js'

const TARGET = 'target-user'
const PER_USER = 5 // the other sessions belong to users with 5 sessions each
const TTL = 86_400

const opts = JSON.parse(process.argv[2])
const ids = new Ids()

/** Times `fn` `calls` times, or fewer once `budgetMs` is spent (at least once); checks it finds the 10. */
async function time (fn, calls, budgetMs) {
  const times = []
  const start = performance.now()
  for (let i = 0; i < calls; i++) {
    const t0 = performance.now()
    const found = await fn()
    times.push((performance.now() - t0) * 1000)
    if (found.length !== 10) throw new Error(`getAll found ${found.length} sessions instead of 10`)
    if (performance.now() - start > budgetMs) break
  }
  return { median: median(times), runs: times.length }
}

function userOf (i, ownerKey) {
  const userId = `u${Math.floor(i / PER_USER)}`
  return { userId, tag: userTag(ownerKey, userId) }
}

async function memory () {
  const max = opts.sizes.at(-1)
  const { store: ours } = await openStore('memory', { maxSessions: max + 1000 })
  const scan = new ScanMemoryStore()
  const ownerKey = await ours.ownerKey()
  const now = Date.now()
  for (let i = 0; i < 10; i++) {
    const r = record(ids, { userId: TARGET, tag: userTag(ownerKey, TARGET), now })
    await ours.insert(r)
    scan.upsert(r)
  }
  const out = { ours: {}, scanMemory: {} }
  let filled = 0
  for (const size of opts.sizes) {
    for (; filled < size; filled++) {
      const r = record(ids, { ...userOf(filled, ownerKey), counter: filled, now })
      await ours.insert(r)
      scan.upsert(r)
    }
    out.ours[size] = await time(() => ours.getAll(TARGET), opts.calls, opts.budgetMs)
    out.scanMemory[size] = await time(async () => scan.getAll(TARGET), opts.scanCalls, opts.budgetMs)
  }
  await ours.close()
  return out
}

async function redis () {
  const dbUrl = (db) => `${opts.redisUrl.replace(/\/\d*$/, '')}/${db}`
  const prefix = `getall${process.pid}`
  const opened = await openStore('redis', { url: dbUrl(opts.ourDb), prefix: `${prefix}:` })
  if (opened.unavailable !== undefined) return { note: `ours: n/a (${opened.unavailable})` }
  const ours = opened.store
  const client = new Redis(dbUrl(opts.scanDb))
  const admin = new Redis(dbUrl(opts.ourDb))
  const scan = new ScanRedisStore(client, { prefix })
  const scan1000 = new ScanRedisStore(client, { prefix, count: 1000 })
  // Our own redis-server: start clean. Someone else's (REDIS_URL): only databases that are empty.
  if (opts.ownRedis) {
    await client.flushdb()
    await admin.flushdb()
  } else if (await client.dbsize() + await admin.dbsize() > 0) {
    await Promise.all([client.quit(), admin.quit(), ours.close?.()])
    return { note: `n/a (databases ${opts.ourDb} and ${opts.scanDb} of REDIS_URL are not empty)` }
  }
  const ownerKey = await ours.ownerKey()
  const now = Date.now()
  for (let i = 0; i < 10; i++) {
    const r = record(ids, { userId: TARGET, tag: userTag(ownerKey, TARGET), now })
    if (!await ours.insert(r)) throw new Error('insert refused')
    await scan.upsert(r, TTL)
  }
  const out = { ours: {}, scan: {}, scan1000: {} }
  let filled = 0
  let fillMs = 0
  for (const size of opts.sizes) {
    const t0 = performance.now()
    const from = filled
    await pool(from, size, 512, async (i) => {
      if (!await ours.insert(record(ids, { ...userOf(i, ownerKey), counter: i, now }))) throw new Error('insert refused')
    })
    for (let i = from; i < size; i += 10_000) {
      const p = client.pipeline()
      for (let j = i; j < Math.min(size, i + 10_000); j++) scan.upsertIn(p, record(ids, { ...userOf(j, ownerKey), counter: j, now }), TTL)
      await p.exec()
    }
    filled = size
    fillMs += performance.now() - t0
    out.ours[size] = await time(() => ours.getAll(TARGET), opts.calls, opts.budgetMs)
    out.scan1000[size] = await time(() => scan1000.getAll(TARGET), opts.scanCalls, opts.budgetMs)
    out.scan[size] = await time(() => scan.getAll(TARGET), opts.scanCalls, opts.budgetMs)
  }
  out.fillSeconds = Math.round(fillMs / 1000)
  await client.flushdb()
  await admin.flushdb()
  await ours.close?.()
  await client.quit()
  await admin.quit()
  return out
}

// Run alone, it prints what it would send to bench/run.js.
const send = process.send?.bind(process) ?? ((msg) => console.log(JSON.stringify(msg, null, 1)))

try {
  const result = { sizes: opts.sizes, memory: await memory() }
  if (opts.redisUrl !== undefined) {
    result.redis = await redis()
    result.fillSeconds = result.redis.fillSeconds
  } else result.redis = { note: 'n/a (no Redis)' }
  send(result)
} catch (err) {
  send({ error: err.stack })
}
