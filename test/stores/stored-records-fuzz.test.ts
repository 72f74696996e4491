import fc from 'fast-check'
import session from 'express-session'
import { Redis } from 'ioredis'
import t from 'tap'
import { RedisStore } from '../../lib/index.js'
import { newSessionId } from '../../lib/crypto/ids.js'
import { parseData, parseValue } from '../../lib/util/json.js'
import { ExpressStoreAdapter } from '../../lib/stores/express.js'
import { toStored, type Row } from '../../lib/stores/postgres/sql.js'
import { buildApp, cookieOf } from '../helpers/app.js'
import { tagIn } from '../helpers/ids.js'
import { redisServer } from '../helpers/redis.js'

// Stored records read back with hostile field values: whoever can write to the store (another
// app sharing it, a restored backup, an attacker) must not reach Object.prototype through it,
// nor make a read throw anything but the documented kinds, nor bring back a session past its
// deadline. Data is read back with secure-json-parse: `__proto__` keys and `constructor`
// keys holding a `prototype` are dropped, at any depth.

type Tree = { t: 'v', v: unknown } | { t: 'o', entries: Array<[string, Tree]> } | { t: 'a', items: Tree[] }

const HOSTILE = ['__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', '__defineGetter__']
const key = fc.oneof({ weight: 2, arbitrary: fc.constantFrom(...HOSTILE) }, { weight: 3, arbitrary: fc.string({ maxLength: 8 }) })
const poison: fc.Arbitrary<Tree> = fc.constantFrom<Tree>(
  { t: 'o', entries: [['polluted', { t: 'v', v: true }]] },
  { t: 'o', entries: [['prototype', { t: 'o', entries: [['polluted', { t: 'v', v: true }]] }]] }
)
const { tree } = fc.letrec<{ tree: Tree, prim: Tree, obj: Tree, arr: Tree }>((tie) => ({
  tree: fc.oneof({ depthSize: 'small', maxDepth: 4 }, tie('prim'), tie('obj'), tie('arr'), poison),
  prim: fc.oneof(fc.constant(null), fc.boolean(), fc.integer(), fc.string({ maxLength: 12 })).map((v): Tree => ({ t: 'v', v })),
  obj: fc.array(fc.tuple(key, tie('tree')), { maxLength: 5 }).map((entries): Tree => ({ t: 'o', entries })),
  arr: fc.array(tie('tree'), { maxLength: 3 }).map((items): Tree => ({ t: 'a', items }))
}))
const object = fc.array(fc.tuple(key, tree), { maxLength: 6 }).map((entries): Tree => ({ t: 'o', entries }))

/**
 * JSON text, with the keys as written: JSON.stringify could not write `__proto__` as an own key.
 * With `escapes`, some characters of the keys are written as \u escapes, as a store may hold them.
 */
function text (node: Tree, escapes = 0): string {
  let n = 0
  const write = (node: Tree): string => {
    if (node.t === 'v') return JSON.stringify(node.v)
    if (node.t === 'a') return '[' + node.items.map(write).join(',') + ']'
    return '{' + node.entries.map(([k, v]) => {
      const escape = ((escapes >>> (n++ % 31)) & 1) === 1
      let key = JSON.stringify(k)
      if (escape) {
        key = '"'
        for (let i = 0; i < k.length; i++) {
          key += i % 2 === 0 ? '\\u' + k.charCodeAt(i).toString(16).padStart(4, '0') : JSON.stringify(k[i]).slice(1, -1)
        }
        key += '"'
      }
      return key + ':' + write(v)
    }).join(',') + '}'
  }
  return write(node)
}

/** What reading back must give: JSON.parse less the poisoning keys. */
function sanitize (value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sanitize)
  if (value === null || typeof value !== 'object') return value
  const out: Record<string, unknown> = {}
  for (const k of Object.keys(value)) {
    const v = (value as Record<string, unknown>)[k]
    if (k === '__proto__') continue
    if (k === 'constructor' && v !== null && typeof v === 'object' && Object.hasOwn(v, 'prototype')) continue
    Object.defineProperty(out, k, { value: sanitize(v), enumerable: true, writable: true, configurable: true })
  }
  return out
}

function same (a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) return false
  const ka = Object.keys(a)
  if (ka.length !== Object.keys(b).length) return false
  return ka.every((k) => Object.hasOwn(b, k) && same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
}

function assertClean (): void {
  if (Object.getOwnPropertyNames(Object.prototype).length !== 12 || ({} as Record<string, unknown>).polluted !== undefined) {
    throw new Error('Object.prototype was changed')
  }
}

t.test('property: stored data with poisoning keys at any depth reads back without them, and without pollution', async (t) => {
  let dropped = 0
  fc.assert(fc.property(object, fc.oneof(fc.constant(0), fc.nat()), (node, escapes) => {
    const json = text(node, escapes)
    const data = parseData(json)
    assertClean()
    const expected = sanitize(JSON.parse(json))
    if (!same(data, expected)) throw new Error(`read ${JSON.stringify(data)} from ${json}`)
    if (!same(expected, JSON.parse(json))) dropped++
    const value = parseValue(json)
    if (!same(value, expected)) throw new Error('parseValue and parseData disagree')
  }), { numRuns: 1500 })
  t.ok(dropped > 0, `${dropped} records had keys to drop`)
})

t.test('property: parseData gives an object or throws SyntaxError / TypeError; parseValue a value or SyntaxError', async (t) => {
  const input = fc.oneof(fc.string({ maxLength: 60 }), fc.json({ maxDepth: 3 }), tree.map(text),
    fc.tuple(object.map(text), fc.nat(), fc.string({ maxLength: 3 })).map(([s, at, c]) => s.slice(0, at % (s.length + 1)) + c + s.slice(at % (s.length + 1))))
  const outcomes = { object: 0, refused: 0 }
  fc.assert(fc.property(input, (s) => {
    try {
      const data = parseData(s)
      if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new Error('parseData returned a non-object')
      outcomes.object++
    } catch (err) {
      if (!(err instanceof SyntaxError || err instanceof TypeError)) throw err
      outcomes.refused++
    }
    try {
      parseValue(s)
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err
    }
    assertClean()
  }), { numRuns: 2000 })
  t.ok(outcomes.object > 0 && outcomes.refused > 0, JSON.stringify(outcomes))
})

t.test('property: PostgreSQL rows with hostile field values', async (t) => {
  const numeric = fc.oneof(fc.integer({ min: 0 }).map(String), fc.string({ maxLength: 8 }))
  const text8 = fc.option(fc.string({ unit: 'binary', maxLength: 16 }), { nil: null })
  fc.assert(fc.property(object, numeric, numeric, numeric, fc.option(numeric, { nil: null }), text8, text8, text8,
    (data, c, l, e, a, userId, ip, ua) => {
      const row: Row = { id: newSessionId(undefined), secret_hash: 'h', user_id: userId, data: text(data), created_at: c, last_seen_at: l, expires_at: e, authenticated_at: a, ip, user_agent: ua, policy: ip, dbsc: ua }
      const s = toStored(row)
      assertClean()
      if (!same(s.data, sanitize(JSON.parse(row.data)))) throw new Error('data not read back as expected')
      if (!Object.is(s.createdAt, Number(c)) || !Object.is(s.expiresAt, Number(e)) || !Object.is(s.authenticatedAt, a === null ? undefined : Number(a))) {
        throw new Error('times not read back as numbers')
      }
      if (s.userId !== (userId ?? undefined) || s.ip !== (ip ?? undefined) || s.userAgent !== (ua ?? undefined) || s.policy !== (ip ?? undefined) || s.dbsc !== (ua ?? undefined)) throw new Error('strings changed')
    }), { numRuns: 500 })
  t.throws(() => toStored({ ...({} as Row), data: '[1]' }), TypeError, 'data that is not an object')
})

t.test('property: connect-style stores (express-session) holding hostile envelopes', async (t) => {
  const store = new session.MemoryStore() as session.MemoryStore & { sessions: Record<string, string> }
  const adapter = new ExpressStoreAdapter({ store }, { clock: Date.now, maxSessionsPerUser: 10 })
  const aliceTag = await tagIn(adapter, 'alice')
  const anything = fc.oneof(fc.string({ maxLength: 6 }), fc.integer(), fc.double(), fc.constant(null), fc.boolean(), fc.constant({}), fc.constant([]))
  const mostly = <T>(good: fc.Arbitrary<T>): fc.Arbitrary<unknown> => fc.oneof({ weight: 12, arbitrary: good }, { weight: 1, arbitrary: anything })
  const time = mostly(fc.integer({ min: 0, max: 10 ** 12 }))
  const live = fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 60_000, max: 10 ** 9 }).map((ms) => Date.now() + ms) }, { weight: 1, arbitrary: time })
  const text8 = mostly(fc.option(fc.string({ maxLength: 8 }), { nil: null }))
  const outcomes = { loaded: 0, refused: 0 }
  await fc.assert(fc.asyncProperty(fc.boolean(), mostly(fc.string({ maxLength: 8 })), fc.oneof({ weight: 6, arbitrary: object.map(text) }, { weight: 1, arbitrary: tree.map(text) }),
    live, time, time, mostly(fc.option(fc.integer({ min: 0, max: 10 ** 12 }), { nil: null })), text8, text8,
    fc.oneof({ weight: 12, arbitrary: fc.constant('owner') }, { weight: 1, arbitrary: fc.constantFrom('alice', 'bob', null) }, { weight: 1, arbitrary: anything }),
    async (bound, h0, d, e0, c0, l0, a0, i0, g0, owner) => {
      const id = newSessionId(bound ? aliceTag : undefined)
      // What the store holds is JSON: -0, NaN and Infinity are written as they come back (0, null).
      const [h, e, c, l, a, i, g, u] = [h0, e0, c0, l0, a0, i0, g0, owner === 'owner' ? (bound ? 'alice' : null) : owner]
        .map((v): unknown => JSON.parse(JSON.stringify(v)))
      const fus = `{"h":${JSON.stringify(h)},"u":${JSON.stringify(u)},"d":${d},"c":${JSON.stringify(c)},"l":${JSON.stringify(l)},` +
        `"e":${JSON.stringify(e)},"a":${JSON.stringify(a)},"i":${JSON.stringify(i)},"g":${JSON.stringify(g)}}`
      store.sessions[id] = `{"cookie":{"expires":"${new Date(Date.now() + 86_400_000).toISOString()}","originalMaxAge":86400000},"fus":${fus}}`
      let s
      try {
        s = await adapter.get(id)
      } finally {
        assertClean()
        delete store.sessions[id]
      }
      const isTime = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
      const isText = (v: unknown): boolean => v === null || typeof v === 'string'
      const parsed: unknown = JSON.parse(d)
      const wellFormed = typeof h === 'string' && isTime(e) && isTime(c) && isTime(l) && (a === null || isTime(a)) && isText(i) && isText(g) &&
        u === (bound ? 'alice' : null) && parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)
      if (!wellFormed || (e as number) <= Date.now()) {
        if (s !== undefined) throw new Error(`loaded ${fus}`)
        outcomes.refused++
        return
      }
      if (s === undefined) throw new Error(`refused a well-formed live record ${fus}`)
      if (!same(s.data, sanitize(parsed)) || s.userId !== (bound ? 'alice' : undefined)) throw new Error(`read ${JSON.stringify(s)} from ${fus}`)
      outcomes.loaded++
    }), { numRuns: 1000 })
  t.ok(outcomes.loaded > 0 && outcomes.refused > 0, JSON.stringify(outcomes))
})

t.test('Redis: session hashes with hostile field values', async (t) => {
  const server = await redisServer(t)
  if (server === undefined) return
  const client = new Redis(server.url)
  t.teardown(() => client.quit())
  const prefix = `fuzz:${process.pid}:`
  const context = { clock: Date.now, log: { debug () {}, warn () {}, info () {} } as never, maxSessionsPerUser: 100 }
  const store = new RedisStore({ client, prefix }, context)
  const aliceTag = await tagIn(store, 'alice')
  const keyOf = (id: string): string => {
    const dot = id.indexOf('.')
    return dot === -1 ? `${prefix}s:{${id}}` : `${prefix}s:{${id.slice(0, dot)}}${id.slice(dot)}`
  }
  const value = fc.oneof(tree.map(text), fc.string({ maxLength: 10 }), fc.constantFrom('{"__proto__":{"polluted":true}}', '{', ''))
  const deadline = fc.oneof(fc.integer({ min: 1000, max: 10 ** 9 }).map((ms) => String(Date.now() + ms)),
    fc.integer({ min: 0, max: 10 ** 12 }).map(String), fc.string({ maxLength: 6 }), fc.constantFrom('Infinity', '-1', '1e400', 'NaN'))

  t.test('property: read back through the store', async (t) => {
    const outcomes = { loaded: 0, expired: 0, unreadable: 0 }
    await fc.assert(fc.asyncProperty(fc.boolean(), fc.option(deadline, { nil: undefined }), fc.array(fc.tuple(key, value), { maxLength: 5 }),
      fc.dictionary(fc.constantFrom('h', 'c', 'l', 'a', 'i', 'g'), fc.string({ unit: 'binary', maxLength: 12 })),
      async (bound, e, data, other) => {
        const id = newSessionId(bound ? aliceTag : undefined)
        // A user's session keeps its user id (the id does not say it).
        const fields: Record<string, string> = bound ? { ...other, u: 'alice' } : { ...other }
        if (e !== undefined) fields.e = e
        for (const [k, v] of data) fields['d:' + k] = v
        const hkey = keyOf(id)
        if (Object.keys(fields).length > 0) await client.hset(hkey, fields)
        await client.pexpire(hkey, 60_000)
        let s
        try {
          s = await store.get(id)
        } catch (err) {
          if (!(err instanceof SyntaxError)) throw err // unreadable data: the plugin answers 503
          outcomes.unreadable++
          return
        } finally {
          assertClean()
          await client.del(hkey)
        }
        if (s === undefined) {
          if (e !== undefined && Number(e) > Date.now()) throw new Error(`a live deadline ${e} read as no session`)
          outcomes.expired++
          return
        }
        if (!(s.expiresAt > Date.now())) throw new Error(`returned a session whose deadline ${e} has passed`)
        if (s.userId !== (bound ? 'alice' : undefined)) throw new Error('the user is not the one the id carries')
        const expected: Record<string, unknown> = {}
        for (const [k, v] of Object.entries(fields)) {
          if (k.startsWith('d:') && k !== 'd:__proto__') expected[k.slice(2)] = sanitize(JSON.parse(v))
        }
        if (!same(s.data, expected)) throw new Error(`read ${JSON.stringify(s.data)} from ${JSON.stringify(fields)}`)
        outcomes.loaded++
      }), { numRuns: 300 })
    t.ok(outcomes.loaded > 0 && outcomes.expired > 0 && outcomes.unreadable > 0, JSON.stringify(outcomes))
  })

  t.test('property: the fixed fields\' text (m) of any shape reads as a session whose fields it spells, or as none', async (t) => {
    const word = fc.oneof(fc.constantFrom('', '0', '3', '64', '-1', '1e3', 'x'), fc.string({ maxLength: 4 }))
    const outcomes = { loaded: 0, refused: 0 }
    const text = fc.string({ unit: 'binary', maxLength: 12 })
    // Any words and tail, or a well-formed text of any ip, user agent and user id.
    const shaped = fc.oneof(fc.tuple(fc.array(word, { minLength: 5, maxLength: 9 }), text),
      fc.tuple(text, text, text).map(([i, g, u]) => [['h', '1', '', '', i.length, g.length, u.length].map(String), i + g + u] as [string[], string]))
    await fc.assert(fc.asyncProperty(shaped, fc.boolean(),
      async ([head, tail], bound) => {
        const id = newSessionId(bound ? aliceTag : undefined)
        const hkey = keyOf(id)
        const m = head.join(' ') + '\n' + tail
        await client.hset(hkey, { m, l: Date.now(), e: Date.now() + 60_000 })
        await client.pexpire(hkey, 60_000)
        let s
        try {
          s = await store.get(id)
        } finally {
          assertClean()
          await client.del(hkey)
        }
        if (s === undefined) {
          outcomes.refused++
          return
        }
        // As Redis keeps text: UTF-8, where a lone surrogate is U+FFFD.
        const kept = Buffer.from(m).toString()
        const spelled = [s.ip, s.userAgent, s.userId].map((v) => v ?? '').join('')
        if (!kept.endsWith('\n' + spelled) || s.secretHash !== kept.split(' ')[0]) throw new Error(`read ${JSON.stringify(s)} from ${JSON.stringify(kept)}`)
        if (bound && s.userId === undefined) throw new Error('a user\'s session without its user id')
        outcomes.loaded++
      }), { numRuns: 300 })
    t.ok(outcomes.refused > 0 && outcomes.loaded > 0, JSON.stringify(outcomes))
  })

  t.test('property: through the app, a corrupted session answers 200 or 503, never 500', async (t) => {
    const app = await buildApp({ store: 'redis', storeOptions: { client, prefix } })
    t.teardown(() => app.close())
    const statuses = new Map<number, number>()
    await fc.assert(fc.asyncProperty(fc.array(fc.tuple(fc.oneof(key.map((k) => 'd:' + k), fc.constantFrom('h', 'c', 'l', 'e', 'a', 'i', 'g')), value), { minLength: 1, maxLength: 4 }),
      async (corruption) => {
        const login = await app.inject({ method: 'POST', url: '/login', payload: { user: 'alice' } })
        const cookie = cookieOf(login) as string
        const id = (login.json() as { id: string }).id
        await client.hset(keyOf(id), Object.fromEntries(corruption))
        const res = await app.inject({ url: '/me', headers: { cookie } })
        assertClean()
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
        if (res.statusCode === 503) {
          if (res.json().code !== 'FST_SESSION_STORE_UNAVAILABLE') throw new Error(res.body)
        } else if (res.statusCode !== 200 || ![null, 'alice'].includes(res.json().userId)) {
          throw new Error(`${res.statusCode} ${res.body}`)
        }
        await app.sessions.deleteAll('alice')
      }), { numRuns: 150 })
    t.ok(statuses.get(200) !== undefined && statuses.get(503) !== undefined, JSON.stringify(Object.fromEntries(statuses)))
  })
})
