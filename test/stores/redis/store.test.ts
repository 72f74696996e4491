import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import t from 'tap'
import { Redis } from 'ioredis'
import pino from 'pino'
import { LAST_SEEN_STEP, RedisStore, type RedisStoreOptions, type StoredSession } from '../../../lib/index.js'
import { hashSecret, newSecret, newSessionId } from '../../../lib/crypto/ids.js'
import { logSink } from '../../helpers/app.js'
import { seedRedisOwnerKey, testTag } from '../../helpers/ids.js'
import { isMarker, keysBesideMarkers, redisServer } from '../../helpers/redis.js'
import { LINGER } from '../../../lib/stores/redis/scripts.js'

// The Redis store on its own: options, the clients it owns and those it does not, key prefixes,
// serializers, and what it does with data it cannot read.

const context = { clock: Date.now, log: pino({ level: 'silent' }), maxSessionsPerUser: 100 }

function record (userId?: string, overrides: Partial<StoredSession> = {}): StoredSession {
  const now = Date.now()
  return {
    // The stores of this file are seeded with TEST_OWNER_KEY (seedRedisOwnerKey).
    id: newSessionId(userId === undefined ? undefined : testTag(userId)),
    secretHash: hashSecret(newSecret()),
    userId,
    data: { n: 1 },
    createdAt: now,
    lastSeenAt: now,
    expiresAt: now + 60_000,
    authenticatedAt: undefined,
    ip: undefined,
    userAgent: undefined,
    ...overrides
  }
}

/** The key of a session of these tests' stores (seeded with TEST_OWNER_KEY), under `prefix`. */
function sessionKey (prefix: string, r: StoredSession): string {
  return r.userId === undefined
    ? `${prefix}s:{${r.id}}`
    : `${prefix}s:{${testTag(r.userId)}}.${r.id.split('.')[1] as string}`
}

t.test('options are checked at construction, naming the option', async (t) => {
  const client = new Redis({ lazyConnect: true })
  t.teardown(() => client.disconnect())
  const bad: Array<[unknown, string]> = [
    [null, 'storeOptions'],
    [{ client, nope: 1 }, 'storeOptions.nope'],
    [{}, 'storeOptions.client'],
    [{ client, url: 'redis://127.0.0.1' }, 'storeOptions.client'],
    [{ client: {} }, 'storeOptions.client'],
    [{ client: null }, 'storeOptions.client'],
    [{ url: '' }, 'storeOptions.url'],
    [{ url: 42 }, 'storeOptions.url'],
    [{ client, prefix: 'a{b}:' }, 'storeOptions.prefix'],
    [{ client, prefix: 7 }, 'storeOptions.prefix'],
    [{ client, timeout: 0 }, 'storeOptions.timeout'],
    [{ client, timeout: 1.5 }, 'storeOptions.timeout'],
    [{ client, serializer: { stringify: JSON.stringify } }, 'storeOptions.serializer'],
    [{ client, serializer: null }, 'storeOptions.serializer'],
    [{ client: new Redis({ lazyConnect: true, keyPrefix: '{app}:' }) }, 'storeOptions.client']
  ]
  for (const [options, name] of bad) {
    t.throws(() => new RedisStore(options as RedisStoreOptions, context),
      { code: 'FST_SESSION_OPTION_INVALID', message: new RegExp(`"${name.replace('.', '\\.')}"`) }, name)
  }
  const store = new RedisStore({ client, prefix: '', timeout: 50, serializer: { stringify: JSON.stringify, parse: JSON.parse } }, context)
  await store.close()
  t.equal(client.status, 'wait', 'a client that was given is left alone')
})

const server = await redisServer(t)
if (server !== undefined) {
  const client = new Redis(server.url)
  const run = randomBytes(4).toString('hex')
  t.teardown(async () => {
    const left = await client.keys(`*:${run}:*`)
    if (left.length > 0) await client.del(...left)
    await client.quit()
  })

  /** A store on `client` under a prefix of its own, seeded with TEST_OWNER_KEY; `keyOf` names its session keys. */
  async function seededStore (name: string): Promise<{ prefix: string, store: RedisStore, keyOf: (r: StoredSession) => string }> {
    const prefix = `${name}:${run}:`
    await seedRedisOwnerKey(client, prefix)
    return { prefix, store: new RedisStore({ client, prefix }, context), keyOf: (r) => sessionKey(prefix, r) }
  }

  t.test('keys: one hash tag per user, the index expires with the last session, nothing but markers is left after deleteAll', async (t) => {
    const { prefix, store } = await seededStore('layout')
    const a = record('a.b*')
    const b = record('a.b*', { expiresAt: a.expiresAt + 5000 })
    const anon = record()
    for (const r of [a, b, anon]) t.equal(await store.insert(r), true)
    const tag = testTag('a.b*')
    t.same((await client.keys(`${prefix}*`)).sort(), [
      `${prefix}s:{${anon.id}}`,
      `${prefix}s:{${tag}}.${a.id.split('.')[1] as string}`,
      `${prefix}s:{${tag}}.${b.id.split('.')[1] as string}`,
      `${prefix}u:{${tag}}`,
      `${prefix}owner-key`
    ].sort())
    t.equal(await client.pexpiretime(`${prefix}u:{${tag}}`), b.expiresAt, 'the index lives as long as the latest session')
    t.equal(await client.pexpiretime(`${prefix}s:{${anon.id}}`), anon.expiresAt + LINGER, 'PEXPIREAT the deadline and LINGER')
    t.same(await client.hgetall(`${prefix}s:{${anon.id}}`), {
      m: `${anon.secretHash} ${anon.createdAt}     \n`, l: String(anon.lastSeenAt), e: String(anon.expiresAt), 'd:n': '1'
    }, 'what never changes in one field, then last seen, the deadline and the data')
    t.equal((await client.hmget(`${prefix}s:{${tag}}.${a.id.split('.')[1] as string}`, 'm', 'm1')).join(''), `${a.secretHash} ${a.createdAt}     4\na.b*`,
      'a user\'s session keeps its user id: the id does not say it')
    t.equal(await store.delete(b.id), true)
    t.equal(await client.pexpiretime(`${prefix}u:{${tag}}`), a.expiresAt, 'and shrinks with it')
    t.equal(await store.deleteAll('a.b*', []), 1)
    t.same(await keysBesideMarkers(client, `${prefix}*{${tag}}*`), [], 'a user without sessions costs nothing')
    const markers = await client.keys(`${prefix}*{${tag}}*`)
    t.equal(markers.length, 2, 'but the markers of its two deleted sessions')
    for (const key of markers) t.ok(await isMarker(client, key), 'a marker holds nothing of the session')
    await store.close()
  })

  t.test('a long user agent or user id: the fixed fields\' text is kept in pieces of at most 64 bytes, the hash stays a listpack, and each reads back whole', async (t) => {
    const { store, keyOf } = await seededStore('pieces')
    const [, limit] = await client.config('GET', 'hash-max-listpack-value') as [string, string]
    const chrome = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'
    const cases: Array<[string, string | undefined, string]> = [
      ['desktop Chrome', 'user-1', chrome],
      ['64 bytes', 'u'.repeat(64), 'g'.repeat(64)],
      ['65 bytes', 'u'.repeat(65), 'g'.repeat(65)],
      ['200 bytes each', 'u'.repeat(200), 'g'.repeat(200)],
      ['latin1 from a header, 2 bytes a character', 'é'.repeat(40), 'Agent/1.0 ' + 'ÿ'.repeat(502)],
      ['3 bytes a character', '€'.repeat(30), '€'.repeat(30)],
      ['a 4-byte character across the 64th byte stays whole', 'a' + '😀'.repeat(16), 'a' + '😀'.repeat(16)],
      ['lone surrogates', 'lone', 'x'.repeat(62) + '\ud83d' + 'y' + '\ud83d'],
      ['anonymous', undefined, chrome]
    ]
    for (const [name, userId, userAgent] of cases) {
      const r = record(userId, { userAgent, ip: '2001:db8::1' })
      t.equal(await store.insert(r), true, name)
      const fields = await client.hgetall(keyOf(r))
      t.same(Object.entries(fields).filter(([, v]) => Buffer.byteLength(v) > 64), [], `${name}: no value over 64 bytes`)
      if (Number(limit) >= 64) t.equal(await client.object('ENCODING', keyOf(r)), 'listpack', `${name}: a listpack`)
      // As Redis keeps text: UTF-8, where a lone surrogate is U+FFFD.
      const agent = Buffer.from(userAgent).toString()
      const got = await store.get(r.id) as StoredSession
      t.equal(got.userAgent, agent, `${name}: the user agent, whole`)
      t.equal(got.userId, userId, `${name}: the user id, whole`)
      if (userId !== undefined) t.same((await store.getAll(userId)).map((s) => s.userAgent), [agent], `${name}: in the user's list`)
    }

    // A hash written by an earlier version: the fields one by one, a user agent and a user id in pieces.
    const before = record('earlier-layout', { userAgent: chrome, ip: '2001:db8::1', authenticatedAt: Date.now(), policy: 'b.t60' })
    t.equal(await store.insert(before), true)
    await client.del(keyOf(before))
    await client.hset(keyOf(before), {
      h: before.secretHash,
      c: before.createdAt,
      l: before.lastSeenAt,
      e: before.expiresAt,
      a: before.authenticatedAt,
      o: before.policy,
      i: before.ip,
      g: chrome.slice(0, 64),
      g1: chrome.slice(64),
      u: 'earlier-layout',
      'd:n': '1'
    })
    await client.pexpire(keyOf(before), 60_000)
    t.same(await store.get(before.id), before, 'reads the same')
    t.same(await store.getAll('earlier-layout'), [before], 'and is listed the same')
    await store.close()
  })

  t.test('the fixed fields in one text: every kind of value reads back, and a text that is not one reads as no session', async (t) => {
    const { store, keyOf } = await seededStore('fixed')
    const odd = ' \n- 12 \n\n'
    for (const [name, overrides] of [
      ['spaces, newlines and dashes in the ip, user agent and user id', { ip: odd, userAgent: odd, userId: odd }],
      ['empty ip and user agent', { ip: '', userAgent: '' }],
      ['authenticated, with a policy', { userId: 'p', authenticatedAt: 1234, policy: 's.a600' }]
    ] as const) {
      const r = record(overrides.userId, overrides)
      t.equal(await store.insert(r), true)
      t.same(await store.get(r.id), r, name)
    }
    const r = record()
    t.equal(await store.insert(r), true)
    const m = await client.hget(keyOf(r), 'm') as string
    t.equal(m, `${r.secretHash} ${r.createdAt}     \n`, 'one piece for a session without ip, user agent or user id')
    const listed = record('listed')
    t.equal(await store.insert(listed), true)
    await client.hset(keyOf(listed), 'm', 'not the text')
    t.same(await store.getAll('listed'), [], 'a listed session whose text does not read is left out')
    for (const bad of ['', m.replace('\n', ''), m.replace('   \n', '  \n'), m.replace('   \n', ' 3  \n'), m.replace('   \n', ' x  \n'), m + 'extra']) {
      await client.hset(keyOf(r), 'm', bad)
      t.equal(await store.get(r.id), undefined, `not read: ${JSON.stringify(bad)}`)
    }
    await store.close()
  })

  t.test('a write of data alone is one HSET: it keeps the deadline, and a session gone meanwhile leaves no key without expiry', async (t) => {
    const { prefix, store, keyOf } = await seededStore('write')
    const live = record('w', { data: { a: 1 } })
    t.equal(await store.insert(live), true)
    const key = keyOf(live)
    const set = Object.fromEntries(Array.from({ length: 12_000 }, (_, i) => [`k${i}`, i]))
    t.equal(await store.patch(live.id, { clear: false, set, unset: [], lastSeenAt: live.lastSeenAt + 5, readExpiresAt: live.expiresAt }), true)
    t.equal(await client.pexpiretime(key), live.expiresAt + LINGER, 'the deadline as it was')
    const stored = await store.get(live.id) as StoredSession
    t.equal(stored.lastSeenAt, live.lastSeenAt + 5)
    t.equal(Object.keys(stored.data).length, 12_001, '12,000 keys in one HSET')
    t.equal(await store.patch(live.id, { clear: false, set: { k0: 'again' }, unset: [], lastSeenAt: Date.now(), readExpiresAt: live.expiresAt }), true,
      'a live session whose fields the HSET all found')
    // With what the request read: a key it read stands in for `l`, which the HSET leaves out
    // while it is less than LAST_SEEN_STEP old.
    const read = await store.get(live.id) as StoredSession
    const hints = { readExpiresAt: read.expiresAt, readLastSeenAt: read.lastSeenAt, readData: read.data }
    t.equal(await store.patch(live.id, { clear: false, set: { k1: 'read' }, unset: [], lastSeenAt: read.lastSeenAt + LAST_SEEN_STEP - 1, ...hints }), true)
    t.equal(await client.hget(key, 'l'), String(read.lastSeenAt), 'last seen stays within the step')
    t.equal(await client.hget(key, 'd:k1'), '"read"')
    t.equal(await store.patch(live.id, { clear: false, set: { k1: 'again' }, unset: [], lastSeenAt: read.lastSeenAt + LAST_SEEN_STEP, ...hints }), true)
    t.equal(await client.hget(key, 'l'), String(read.lastSeenAt + LAST_SEEN_STEP), 'and moves a step later')
    t.equal(await store.patch(live.id, { clear: false, set: { fresh: 1 }, unset: [], lastSeenAt: read.lastSeenAt + 7, ...hints }), true)
    t.equal(await client.hget(key, 'l'), String(read.lastSeenAt + 7), 'a write of keys the request did not read has l, to tell a key it made')
    t.equal(await store.patch(live.id, { clear: false, set: { k1: 'no l read' }, unset: [], lastSeenAt: read.lastSeenAt + 8, readExpiresAt: read.expiresAt, readData: read.data }), true)
    t.equal(await client.hget(key, 'l'), String(read.lastSeenAt + 8), 'and so does one that does not say what last seen it read')
    t.equal(await client.pexpiretime(key), live.expiresAt + LINGER, 'the deadline as it was')

    t.equal(await store.delete(live.id), true)
    t.ok(await isMarker(client, key), 'delete leaves a marker')
    // Without the deadline the request read (an HGET e checks), and with it (the HSET's reply says).
    for (const readExpiresAt of [undefined, live.expiresAt]) {
      t.equal(await store.patch(live.id, { clear: false, set: { late: 1 }, unset: [], lastSeenAt: Date.now(), readExpiresAt }), false, 'gone')
      t.ok(await isMarker(client, key), 'the write wrote nothing')
      t.equal(await store.get(live.id), undefined, 'and the marker reads as no session')
    }
    t.same(await keysBesideMarkers(client, `${prefix}*{${testTag('w')}}*`), [], 'nor an index')

    // A key removed outside the store (or a deadline past on Redis's clock by more than LINGER):
    // the HSET makes a key, and the store drops it.
    const other = record('w')
    t.equal(await store.insert(other), true)
    const otherKey = keyOf(other)
    await client.del(otherKey)
    t.equal(await store.patch(other.id, { clear: false, set: { late: 1 }, unset: [], lastSeenAt: Date.now(), readExpiresAt: other.expiresAt }), false, 'gone')
    // The same with a key the request read in place of `l`.
    const third = record('w', { data: { a: 1 } })
    t.equal(await store.insert(third), true)
    const thirdKey = keyOf(third)
    await client.del(thirdKey)
    t.equal(await store.patch(third.id, { clear: false, set: { a: 2 }, unset: [], lastSeenAt: third.lastSeenAt + 1, readExpiresAt: third.expiresAt, readLastSeenAt: third.lastSeenAt, readData: third.data }),
      false, 'gone, without l')
    // Each has 1 ms to live: poll until Redis has dropped them.
    const deadline = Date.now() + 5000
    while (await client.exists(otherKey, thirdKey) > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5))
    t.equal(await client.exists(otherKey, thirdKey), 0, 'no key left behind')
    await store.close()
  })

  t.test('a deleted session leaves a marker that every operation takes for no session, and that expires on its own', async (t) => {
    const { prefix, store, keyOf } = await seededStore('marker')
    // The same keys on a clock two minutes ahead: every session of `store` is past its deadline there.
    const later = new RedisStore({ client, prefix }, { ...context, clock: () => Date.now() + 120_000 })
    const write = (r: StoredSession, more: Partial<Parameters<RedisStore['patch']>[1]> = {}): Parameters<RedisStore['patch']>[1] =>
      ({ clear: false, set: { x: 1 }, unset: [], lastSeenAt: Date.now(), readExpiresAt: r.expiresAt, ...more })

    const [deleted, all, expired] = [record('m'), record('m'), record('m')]
    for (const r of [deleted, all, expired]) t.equal(await store.insert(r), true)
    t.equal(await store.delete(deleted.id), true)
    t.equal(await store.deleteAll('m', [expired.id]), 1)
    t.equal(await later.patch(expired.id, write(expired, { expiresAt: Date.now() + 200_000 })), false, 'a session past its deadline')
    for (const [name, r] of [['delete', deleted], ['deleteAll', all], ['a patch of a session past its deadline', expired]] as const) {
      t.ok(await isMarker(client, keyOf(r)), `${name} leaves a marker`)
      t.equal(await store.get(r.id), undefined, `${name}: get`)
      t.equal(await store.patch(r.id, write(r)), false, `${name}: a write of data`)
      t.equal(await store.patch(r.id, write(r, { readExpiresAt: undefined })), false, `${name}: a write of data, the deadline read unknown`)
      t.equal(await store.patch(r.id, write(r, { expiresAt: Date.now() + 1000 })), false, `${name}: a patch by script`)
      t.equal(await store.delete(r.id), false, `${name}: delete`)
      t.ok(await isMarker(client, keyOf(r)), `${name}: still the marker, with its own expiry`)
    }
    t.same(await store.getAll('m'), [], 'none is listed')
    t.equal(await store.insert({ ...deleted, expiresAt: Date.now() + 60_000 }), true, 'an insert of the same id replaces the marker')
    t.equal((await store.get(deleted.id) as StoredSession).expiresAt > Date.now(), true)
    t.equal(await store.get(record('never').id), undefined, 'an id never issued is no session either')
    await Promise.all([store.close(), later.close()])
  })

  t.test('a client keyPrefix is honoured, inside scripts too', async (t) => {
    const prefixed = new Redis(server.url, { keyPrefix: `kp:${run}:` })
    t.teardown(() => prefixed.quit())
    await seedRedisOwnerKey(client, `kp:${run}:sess:`)
    const store = new RedisStore({ client: prefixed }, { ...context, maxSessionsPerUser: 2 })
    const sessions = [record('u'), record('u'), record('u')]
    for (const s of sessions) t.equal(await store.insert(s), true)
    t.equal((await store.getAll('u')).length, 2, 'the cap evicted through keys built in the script')
    t.equal((await keysBesideMarkers(client, `kp:${run}:sess:*`)).length, 4, 'two sessions, the index and the owner key, under the client prefix')
    t.equal((await client.keys(`kp:${run}:sess:*`)).length, 5, 'and the marker of the evicted one')
    t.equal(await store.deleteAll('u', []), 2)
    t.same(await keysBesideMarkers(client, `kp:${run}:*`), [`kp:${run}:sess:owner-key`])
  })

  t.test('a lazyConnect client is connected on first use', async (t) => {
    const lazy = new Redis(server.url, { lazyConnect: true })
    t.teardown(() => lazy.quit())
    await seedRedisOwnerKey(client, `lazy:${run}:`)
    const store = new RedisStore({ client: lazy, prefix: `lazy:${run}:` }, context)
    const r = record('lazy')
    const [inserted, again] = await Promise.all([store.insert(r), store.insert(r)])
    t.same([inserted, again], [true, false], 'two calls waiting for the same connection')
    t.equal(lazy.status, 'ready')
  })

  t.test('scripts are loaded again after SCRIPT FLUSH', async (t) => {
    await seedRedisOwnerKey(client, `flush:${run}:`)
    const store = new RedisStore({ client, prefix: `flush:${run}:` }, context)
    const r = record('f')
    t.equal(await store.insert(r), true)
    await client.script('FLUSH')
    t.equal(await store.delete(r.id), true)
  })

  t.test('a custom serializer stores each value its own way', async (t) => {
    const prefix = `ser:${run}:`
    const serializer = {
      stringify: (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64'),
      parse: (s: string) => JSON.parse(Buffer.from(s, 'base64').toString()) as unknown
    }
    const store = new RedisStore({ client, prefix, serializer }, context)
    const r = record(undefined, { data: { list: [1, 2] } })
    await store.insert(r)
    await store.patch(r.id, { clear: false, set: { s: 'x' }, unset: [], lastSeenAt: Date.now() })
    t.same(await client.hmget(`${prefix}s:{${r.id}}`, 'd:list', 'd:s'), [Buffer.from('[1,2]').toString('base64'), Buffer.from('"x"').toString('base64')])
    t.same((await store.get(r.id))?.data, { list: [1, 2], s: 'x' })
  })

  t.test('sessions with many keys: insert, patch, unset and clear them all (Lua unpack holds only ~8,000 values)', async (t) => {
    await seedRedisOwnerKey(client, `many:${run}:`)
    const store = new RedisStore({ client, prefix: `many:${run}:` }, context)
    const keys = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `${tag}${i}`)
    const data = Object.fromEntries(keys(12_000, 'k').map((k, i) => [k, i]))
    for (const userId of [undefined, 'many']) {
      const r = record(userId, { data })
      t.equal(await store.insert(r), true, 'inserted')
      t.same((await store.get(r.id))?.data, data, 'read back whole')
      const set = Object.fromEntries(keys(12_000, 'm').map((k) => [k, true]))
      t.equal(await store.patch(r.id, { clear: false, set, unset: keys(9_000, 'k'), lastSeenAt: Date.now(), expiresAt: r.expiresAt + 1000 }), true)
      const after = (await store.get(r.id)) as StoredSession
      t.equal(Object.keys(after.data).length, 3_000 + 12_000, 'unset 9,000, set 12,000')
      t.equal(after.data.k9000, 9000)
      t.equal(after.data.m11999, true)
      t.equal(after.expiresAt, r.expiresAt + 1000)
      t.equal(await store.patch(r.id, { clear: true, set: { only: 1 }, unset: [], lastSeenAt: Date.now() }), true)
      t.same((await store.get(r.id))?.data, { only: 1 }, 'cleared 15,000 keys')
    }
  })

  t.test('errors: unreadable data, a foreign key, a bad record; none carries the command\'s arguments', async (t) => {
    const { prefix, store } = await seededStore('err')
    const r = record('e')
    await store.insert(r)
    await client.hset(`${prefix}s:{${testTag('e')}}.${r.id.split('.')[1] as string}`, 'd:x', '{not json')
    await t.rejects(store.get(r.id), SyntaxError)
    await client.set(`${prefix}u:{${testTag('w')}}`, 'a string')
    const err = await store.insert(record('w')).catch((e: unknown) => e) as Error & { command?: unknown }
    t.match(err, { code: 'FST_SESSION_STORE_UNAVAILABLE', statusCode: 503, message: /WRONGTYPE/ })
    t.equal(err.command, undefined)
    t.equal(err.cause, undefined)
    await t.rejects(store.insert(record('x', { id: newSessionId(testTag('y')) })), { code: 'FST_SESSION_USER_ID_INVALID' })
    await t.rejects(store.insert(record('x', { id: newSessionId(undefined) })), { code: 'FST_SESSION_USER_ID_INVALID' }, 'a user\'s session with an id of no user')
    await t.rejects(store.insert(record(undefined, { id: 'x{y}' })), { code: 'FST_SESSION_USER_ID_INVALID' })
  })

  t.test('a closed store, or an ended client, rejects at once', async (t) => {
    const own = new Redis(server.url)
    const store = new RedisStore({ client: own, prefix: `end:${run}:` }, context)
    const ended = once(own, 'end')
    await own.quit()
    await ended
    await t.rejects(store.get(newSessionId(undefined)), { code: 'FST_SESSION_STORE_UNAVAILABLE', message: /connection is down/ })
    await store.close()
    await store.close()
    await t.rejects(store.getAll('u'), { code: 'FST_SESSION_STORE_UNAVAILABLE', message: /store is closed/ })
  })

  t.test('a client made from url is the store\'s: connected at once, closed by close()', async (t) => {
    const sink = logSink('debug')
    const log = pino(sink.logger as pino.LoggerOptions, (sink.logger as { stream: pino.DestinationStream }).stream)
    const name = `own-${run}`
    await seedRedisOwnerKey(client, `own:${run}:`)
    const store = new RedisStore({ url: `${server.url}/0?connectionName=${name}`, prefix: `own:${run}:` }, { ...context, log })
    const r = record('o')
    t.equal(await store.insert(r), true, 'works before the connection is up')
    t.match(await client.client('LIST'), new RegExp(`name=${name}`))
    await store.close()
    t.notMatch(await client.client('LIST'), new RegExp(`name=${name}`), 'closed')
    t.same(sink.lines, [], 'nothing to log when all goes well')
  })

  t.test('the commands of one turn of the event loop go out together; each is answered on its own', async (t) => {
    const prefix = `batch:${run}:`
    await seedRedisOwnerKey(client, prefix)
    const own = new Redis(server.url)
    t.teardown(() => own.quit())
    const store = new RedisStore({ client: own, prefix }, context)
    const records = Array.from({ length: 20 }, (_, i) => record(`u${i}`, { data: { i } }))
    await Promise.all(records.map((r) => store.insert(r)))
    const reads = async (): Promise<number> => Number(/total_reads_processed:(\d+)/.exec(await client.info('stats'))?.[1])
    const before = await reads()
    const got = await Promise.all(records.map((r) => store.get(r.id)))
    const after = await reads()
    t.same(got.map((s) => s?.data), records.map((r) => r.data), 'every read has its own answer')
    // 20 reads one by one would be 20 reads on Redis's side; INFO itself is one or two.
    t.ok(after - before <= 4, `20 gets in one turn: ${after - before} reads on Redis's side`)

    // One bad command in a batch fails alone, with the typed error.
    const bad = record('bad')
    await store.insert(bad)
    await own.set(`${prefix}u:{${testTag('bad')}}`, 'a string')
    const [inserted, read, updated] = await Promise.allSettled([
      store.insert(record('bad')),
      store.get(records[0]!.id),
      store.patch(records[1]!.id, { clear: false, set: { j: 1 }, unset: [], lastSeenAt: Date.now() })
    ])
    t.match(inserted, { status: 'rejected', reason: { code: 'FST_SESSION_STORE_UNAVAILABLE', message: /WRONGTYPE/ } })
    t.match(read, { status: 'fulfilled', value: { data: { i: 0 } } })
    t.match(updated, { status: 'fulfilled', value: true })
    t.same((await store.get(records[1]!.id))?.data, { i: 1, j: 1 })
  })

  t.test('commands queued in a turn when the connection goes are refused, never left in the client\'s offline queue', async (t) => {
    const given = new Redis(server.url) // default options: ioredis queues commands while it reconnects
    given.on('error', () => {})
    t.teardown(() => given.disconnect())
    await once(given, 'ready')
    const store = new RedisStore({ client: given, prefix: `lost:${run}:` }, context)
    // Queue two reads in the very callback that sees the socket close, before ioredis does:
    // the connection is gone by the time the batch would be sent.
    let pending: Promise<Array<PromiseSettledResult<unknown>>> | undefined
    const socket = (given as unknown as { stream: NodeJS.EventEmitter }).stream
    socket.prependListener('close', () => {
      pending = Promise.allSettled([store.get(newSessionId(testTag('a'))), store.get(newSessionId(testTag('b')))])
    })
    const reconnecting = once(given, 'reconnecting')
    await client.client('KILL', 'ID', String(await given.client('ID')))
    await reconnecting
    t.ok(pending, 'the reads were issued while the client still said ready')
    for (const r of await pending as Array<PromiseSettledResult<unknown>>) {
      t.match(r, { status: 'rejected', reason: { code: 'FST_SESSION_STORE_UNAVAILABLE', message: /connection is down/ } })
    }
    t.equal((given as unknown as { offlineQueue: unknown[] }).offlineQueue.length, 0, 'nothing waits to be sent after the reconnection')

    // Queued while the socket was open, which then closes (or the client ends) before the turn's
    // batch goes out: the batch is refused as a whole, nothing is handed to ioredis.
    await once(given, 'ready')
    for (const [how, end] of [['socket destroyed', () => { (given as unknown as { stream: { destroy: () => void } }).stream.destroy() }],
      ['client disconnected', () => { given.disconnect() }]] as const) {
      const reads = Promise.allSettled([store.get(newSessionId(testTag('c'))), store.get(newSessionId(testTag('d')))])
      end()
      for (const r of await reads) {
        t.match(r, { status: 'rejected', reason: { code: 'FST_SESSION_STORE_UNAVAILABLE', message: /connection is down \(lost before the batch was sent\)/ } }, how)
      }
      t.equal((given as unknown as { offlineQueue: unknown[] }).offlineQueue.length, 0, `${how}: nothing in the offline queue`)
      if (how === 'socket destroyed') await once(given, 'ready')
    }
  })

  t.test('auto-pipelining: never on the store\'s own client; a warning for a user client that has it', async (t) => {
    const sink = logSink('debug')
    const log = pino(sink.logger as pino.LoggerOptions, (sink.logger as { stream: pino.DestinationStream }).stream)
    const store = new RedisStore({ url: server.url, prefix: `ap:${run}:` }, { ...context, log })
    t.equal((store.client as Redis).options.enableAutoPipelining, false)
    await store.close()
    const piped = new Redis(server.url, { enableAutoPipelining: true })
    t.teardown(() => piped.quit())
    const warned = new RedisStore({ client: piped, prefix: `ap:${run}:` }, { ...context, log })
    t.equal(warned.client, piped)
    t.ok(sink.lines.some((l) => l.level === 40 && /enableAutoPipelining/.test(String(l.msg))))
    await warned.close()
  })
}
