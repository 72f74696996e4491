import assert from 'node:assert/strict'
import { HOUR, MINUTE, nullProto } from './shared.js'
import { secretMatches } from '../crypto/ids.js'
import { LAST_SEEN_STEP, type SessionPatch, type SessionStore, type StoreContext, type StoredSession } from '../stores/store.js'

// The cases of the conformance suite (see index.ts). Each gets a fresh store and a
// clock of its own that starts at the current time and only moves forward.

export interface ConformanceOptions {
  /**
   * Builds a fresh, empty store for one case, on the case's `context` (its clock starts at the
   * current time and only moves forward). `name` is unique per case: use it to keep the cases
   * of a shared backend apart (a key prefix, say). The suite closes the store after the case.
   */
  createStore: (context: StoreContext, name: string) => SessionStore | Promise<SessionStore>
  /** The raw contents of the store as text, to check that no cookie secret is kept. @default undefined (not checked) */
  dump?: (store: SessionStore, name: string) => Promise<string>
  /** Sessions of the user in the large-user case. @default 3000 */
  manySessions?: number
}

export interface Fixture {
  store: SessionStore
  now: () => number
  tick: (ms: number) => void
  /** A new session record (not stored) and its secret. */
  make: (userId?: string, changes?: Partial<StoredSession>) => { record: StoredSession, secret: string }
  /** Stores a new session; asserts that the insert succeeded. */
  add: (userId?: string, changes?: Partial<StoredSession>) => Promise<StoredSession>
  patch: (changes?: Partial<SessionPatch>) => SessionPatch
}

function ids (sessions: StoredSession[]): string[] {
  return sessions.map((s) => s.id).sort()
}

export type Body = (f: Fixture, options: ConformanceOptions, name: string) => Promise<void>

export const cases: Array<[name: string, title: string, body: Body, maxSessionsPerUser?: number]> = [
  ['roundtrip', 'insert then get gives the same session back, as a fresh copy', async ({ store, make }) => {
    const bound = make('alice', { data: { s: 'é ✓', n: 1.5, b: false, z: null, list: [1, 'two', { three: 3 }], 'a:b.c': { d: [] } } })
    const anonymous = make(undefined, { ip: undefined, userAgent: undefined, data: {} })
    for (const { record } of [bound, anonymous]) {
      assert.equal(await store.insert(record), true)
      const got = await store.get(record.id)
      assert.deepEqual(got, record)
      ;(got as StoredSession).data.s = 'changed'
      assert.deepEqual((await store.get(record.id))?.data, record.data, 'a read returns a copy')
    }
  }],
  ['policy', 'a session\'s own settings (policy) are kept as they are, through reads, patches and getAll', async ({ store, add, patch }) => {
    const own = await add('alice', { policy: 'b.s.t3600.a86400' })
    const plain = await add('alice')
    assert.equal((await store.get(own.id))?.policy, 'b.s.t3600.a86400')
    assert.equal((await store.get(plain.id))?.policy, undefined, 'none for a session on the app\'s settings')
    assert.equal(await store.patch(own.id, patch({ set: nullProto({ a: 1 }) })), true)
    assert.equal((await store.get(own.id))?.policy, 'b.s.t3600.a86400', 'a patch keeps it')
    const all = await store.getAll('alice')
    assert.deepEqual(all.map((s) => [s.id, s.policy]).sort(), [[own.id, 'b.s.t3600.a86400'], [plain.id, undefined]].sort())
  }],
  ['dbsc', 'a session\'s device binding (dbsc) is kept as it is, and changed only by a compare-and-set patch', async ({ store, add, patch }) => {
    const binding = '{"v":1,"k":{"kty":"EC","crv":"P-256","x":"x","y":"y"},"c":[["h",1]],"p":[]}'
    const bound = await add('alice', { dbsc: binding })
    const plain = await add('alice')
    assert.equal((await store.get(bound.id))?.dbsc, binding)
    assert.equal((await store.get(plain.id))?.dbsc, undefined, 'none for a session that is not bound')
    assert.equal(await store.patch(bound.id, patch({ set: nullProto({ a: 1 }) })), true)
    assert.equal((await store.get(bound.id))?.dbsc, binding, 'a patch without dbsc keeps it')

    const next = binding.replace('"h",1', '"g",2')
    assert.equal(await store.patch(bound.id, patch({ set: nullProto({ b: 2 }), dbsc: { from: 'stale', to: 'lost' } })), false,
      'a compare-and-set from a value the session no longer holds')
    assert.deepEqual(await store.get(bound.id), { ...bound, data: { n: 1, a: 1 } }, 'changes nothing, data included')
    assert.equal(await store.patch(bound.id, patch({ set: nullProto({ b: 2 }), dbsc: { from: binding, to: next } })), true)
    assert.deepEqual((await store.get(bound.id))?.dbsc, next)
    assert.deepEqual((await store.get(bound.id))?.data, { n: 1, a: 1, b: 2 }, 'with the rest of the patch')
    assert.equal(await store.patch(bound.id, patch({ dbsc: { from: undefined, to: 'lost' } })), false, 'from none: it has one')
    assert.equal(await store.patch(plain.id, patch({ dbsc: { from: binding, to: 'lost' } })), false, 'from a value: it has none')
    assert.equal((await store.get(plain.id))?.dbsc, undefined)
    assert.equal(await store.patch(plain.id, patch({ dbsc: { from: undefined, to: binding } })), true, 'from none to a value')
    assert.equal((await store.get(plain.id))?.dbsc, binding)
    const all = await store.getAll('alice')
    assert.deepEqual(all.map((s) => [s.id, s.dbsc]).sort(), [[bound.id, next], [plain.id, binding]].sort())
    const racing = await Promise.all(['A', 'B', 'C'].map((to) => store.patch(bound.id, patch({ dbsc: { from: next, to } }))))
    assert.equal(racing.filter(Boolean).length, 1, 'of concurrent compare-and-sets from one value, one wins')
    assert.equal((await store.get(bound.id))?.dbsc, ['A', 'B', 'C'][racing.indexOf(true)])
  }],
  ['unknown', 'get, patch and delete of an unknown id find nothing', async ({ store, make, patch }) => {
    for (const id of [make().record.id, make('alice').record.id, 'x{y}*', '']) {
      assert.equal(await store.get(id), undefined)
      assert.equal(await store.patch(id, patch({ set: nullProto({ a: 1 }) })), false)
      assert.equal(await store.delete(id), false)
      assert.equal(await store.get(id), undefined, 'a failed patch creates nothing')
    }
    assert.deepEqual(await store.getAll('nobody'), [])
    assert.equal(await store.deleteAll('nobody', []), 0)
  }],
  ['insert-new', 'insert is insert-new: a taken id is refused and left as it was', async ({ store, make, tick }) => {
    const first = make('alice')
    assert.equal(await store.insert(first.record), true)
    const second = make('alice', { id: first.record.id, data: { other: true } })
    assert.equal(await store.insert(second.record), false)
    assert.deepEqual(await store.get(first.record.id), first.record)
    tick(HOUR)
    const third = make('alice', { id: first.record.id, data: { other: true } })
    assert.equal(await store.insert(third.record), true, 'an expired id is free again')
    assert.deepEqual((await store.get(first.record.id))?.data, { other: true })
  }],
  ['secret-hash', 'only the hash of the cookie secret is stored', async ({ store, make }, options, name) => {
    const { record, secret } = make('alice')
    await store.insert(record)
    const got = await store.get(record.id) as StoredSession
    assert.ok(secretMatches(got.secretHash, secret))
    assert.notEqual(got.secretHash, secret)
    if (options.dump !== undefined) {
      const dump = await options.dump(store, name)
      assert.ok(dump.includes(record.id.slice(-22)), 'the dump holds the session')
      assert.ok(!dump.includes(secret), 'the dump never holds the secret')
    }
  }],
  ['patch', 'patch sets, unsets and clears keys, and moves lastSeenAt and the deadline', async ({ store, add, patch, tick, now }) => {
    for (const userId of ['alice', undefined]) {
      const s = await add(userId, { data: { a: 1, b: 2, c: 3 } })
      tick(1000)
      assert.equal(await store.patch(s.id, patch({ set: nullProto({ a: 10, d: { e: [4] } }), unset: ['b', 'missing'] })), true)
      let got = await store.get(s.id) as StoredSession
      assert.deepEqual(got.data, { a: 10, c: 3, d: { e: [4] } })
      assert.equal(got.lastSeenAt, now())
      assert.equal(got.expiresAt, s.expiresAt, 'the deadline stays unless given')
      assert.equal(got.createdAt, s.createdAt)
      assert.equal(await store.patch(s.id, patch({ clear: true, set: nullProto({ z: 'z' }), expiresAt: now() + 2 * HOUR })), true)
      got = await store.get(s.id) as StoredSession
      assert.deepEqual(got.data, { z: 'z' })
      assert.equal(got.expiresAt, now() + 2 * HOUR)
      assert.equal(await store.patch(s.id, patch({ clear: true })), true)
      assert.deepEqual((await store.get(s.id))?.data, {})
    }
  }],
  ['concurrent-patches', 'concurrent patches of different keys both keep their change', async ({ store, add, patch }) => {
    const s = await add('alice', { data: { base: 0 } })
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) =>
      store.patch(s.id, patch({ set: nullProto({ ['k' + i]: i }) }))))
    assert.deepEqual(results, Array(20).fill(true))
    const expected: Record<string, unknown> = { base: 0 }
    for (let i = 0; i < 20; i++) expected['k' + i] = i
    assert.deepEqual((await store.get(s.id))?.data, expected)
  }],
  ['no-resurrection', 'a patch of a deleted or expired session returns false and brings nothing back', async ({ store, add, patch, tick }) => {
    const deleted = await add('alice')
    assert.equal(await store.deleteAll('alice', []), 1)
    assert.equal(await store.patch(deleted.id, patch({ set: nullProto({ x: 1 }), expiresAt: deleted.expiresAt + HOUR })), false)
    assert.equal(await store.get(deleted.id), undefined)
    assert.deepEqual(await store.getAll('alice'), [])
    // A write of data alone (the most common write, which a store may do without a script).
    assert.equal(await store.patch(deleted.id, patch({ set: nullProto({ x: 2 }) })), false, 'a data write')
    assert.equal(await store.get(deleted.id), undefined)
    const expired = await add('alice')
    const lapsed = await add('alice')
    tick(HOUR)
    assert.equal(await store.patch(expired.id, patch({ expiresAt: expired.expiresAt + HOUR })), false)
    assert.equal(await store.get(expired.id), undefined)
    assert.equal(await store.patch(lapsed.id, patch({ set: nullProto({ x: 1 }) })), false, 'a data write')
    assert.equal(await store.get(lapsed.id), undefined)
    assert.deepEqual(await store.getAll('alice'), [])
  }],
  ['read-deadline', 'a data write that carries the deadline its request read: true on a live session, false on one ended since, and a passed deadline is checked on what is stored', async ({ store, add, patch, tick }) => {
    const live = await add('alice')
    assert.equal(await store.patch(live.id, patch({ set: nullProto({ x: 1 }), readExpiresAt: live.expiresAt })), true)
    assert.deepEqual((await store.get(live.id))?.data, { n: 1, x: 1 })
    const deleted = await add('alice')
    assert.equal(await store.delete(deleted.id), true)
    assert.equal(await store.patch(deleted.id, patch({ set: nullProto({ x: 1 }), readExpiresAt: deleted.expiresAt })), false, 'deleted')
    assert.equal(await store.get(deleted.id), undefined)
    const all = await add('alice')
    assert.equal(await store.deleteAll('alice', [live.id]), 1)
    assert.equal(await store.patch(all.id, patch({ set: nullProto({ x: 1 }), readExpiresAt: all.expiresAt })), false, 'deleteAll')
    assert.equal(await store.get(all.id), undefined)
    // Read with a deadline that has passed since, but another request moved it meanwhile.
    const moved = await add('alice')
    assert.equal(await store.patch(moved.id, patch({ expiresAt: moved.expiresAt + 2 * HOUR })), true)
    tick(HOUR)
    assert.equal(await store.patch(moved.id, patch({ set: nullProto({ x: 2 }), readExpiresAt: moved.expiresAt })), true, 'moved on')
    assert.deepEqual((await store.get(moved.id))?.data, { n: 1, x: 2 })
    // And one that did end with it.
    assert.equal(await store.patch(live.id, patch({ set: nullProto({ x: 3 }), readExpiresAt: live.expiresAt })), false, 'lapsed')
    assert.equal(await store.get(live.id), undefined)
  }],
  ['read-hints', 'a data write that carries what its request read: last seen moves at least once a LAST_SEEN_STEP, and the data is written even when another request removed the keys it read', async ({ store, add, patch, tick, now }) => {
    const s = await add('alice', { data: { a: 1 } })
    const read = (got: StoredSession): Partial<SessionPatch> => ({ readExpiresAt: got.expiresAt, readLastSeenAt: got.lastSeenAt, readData: got.data })
    tick(1000)
    assert.equal(await store.patch(s.id, patch({ set: nullProto({ a: 2 }), ...read(s) })), true)
    let got = await store.get(s.id) as StoredSession
    assert.deepEqual(got.data, { a: 2 })
    assert.ok(got.lastSeenAt === s.lastSeenAt || got.lastSeenAt === now(), 'within the step, last seen may stay')
    tick(LAST_SEEN_STEP)
    assert.equal(await store.patch(s.id, patch({ set: nullProto({ a: 3 }), ...read(got) })), true)
    got = await store.get(s.id) as StoredSession
    assert.equal(got.lastSeenAt, now(), 'a step after what was read, it moves')
    tick(1000)
    assert.equal(await store.patch(s.id, patch({ set: nullProto({ b: 1 }), ...read(got) })), true, 'a key the request did not read')
    assert.deepEqual((await store.get(s.id))?.data, { a: 3, b: 1 })
    // Another request clears the session between this one's read and its write.
    const before = await store.get(s.id) as StoredSession
    assert.equal(await store.patch(s.id, patch({ clear: true })), true)
    assert.equal(await store.patch(s.id, patch({ set: nullProto({ a: 4, b: 2 }), ...read(before) })), true, 'after a clear by another request')
    got = await store.get(s.id) as StoredSession
    assert.deepEqual(got.data, { a: 4, b: 2 })
    assert.equal(got.expiresAt, s.expiresAt, 'the deadline as it was')
    // And a session deleted between the read and the write stays deleted.
    assert.equal(await store.delete(s.id), true)
    assert.equal(await store.patch(s.id, patch({ set: nullProto({ a: 5 }), ...read(before) })), false)
    assert.equal(await store.get(s.id), undefined)
  }],
  ['delete', 'delete says whether it removed a live session', async ({ store, add, tick }) => {
    const s = await add('alice')
    const other = await add('alice')
    const anonymous = await add()
    assert.equal(await store.delete(s.id), true)
    assert.equal(await store.delete(s.id), false)
    assert.equal(await store.get(s.id), undefined)
    assert.deepEqual(ids(await store.getAll('alice')), [other.id])
    assert.equal(await store.delete(anonymous.id), true)
    assert.equal(await store.get(anonymous.id), undefined)
    tick(HOUR)
    assert.equal(await store.delete(other.id), false, 'an expired session was not live')
  }],
  ['get-all', 'getAll lists the user\'s live sessions only; anonymous sessions belong to nobody', async ({ store, add, tick, now }) => {
    const a1 = await add('alice')
    const a2 = await add('alice', { expiresAt: now() + 2 * HOUR })
    const b = await add('bob')
    await add()
    assert.deepEqual(ids(await store.getAll('alice')), ids([a1, a2]))
    const listed = (await store.getAll('alice')).find((s) => s.id === a1.id)
    assert.deepEqual(listed, a1)
    assert.deepEqual(ids(await store.getAll('bob')), [b.id])
    tick(HOUR)
    assert.deepEqual(ids(await store.getAll('alice')), [a2.id], 'expired sessions are not listed')
  }],
  ['delete-all', 'deleteAll removes every session of the user, or all but except', async ({ store, add }) => {
    const a = await Promise.all([add('alice'), add('alice'), add('alice'), add('alice')])
    const b = await add('bob')
    assert.equal(await store.deleteAll('alice', [a[0].id, a[1].id, b.id, 'junk']), 2)
    assert.deepEqual(ids(await store.getAll('alice')), ids([a[0], a[1]]))
    assert.equal(await store.get(a[2].id), undefined)
    assert.equal(await store.deleteAll('alice', [a[1].id]), 1)
    assert.deepEqual(ids(await store.getAll('alice')), [a[1].id])
    assert.equal(await store.deleteAll('alice', []), 1)
    assert.deepEqual(await store.getAll('alice'), [])
    assert.equal(await store.get(a[1].id), undefined)
    assert.deepEqual(await store.get(b.id), b, 'other users keep theirs')
    assert.equal(await store.deleteAll('alice', []), 0)
  }],
  ['idle-expiry', 'idle timeout: a session not refreshed expires at its deadline, a refreshed one later', async ({ store, add, patch, tick, now }) => {
    const idle = await add('alice', { expiresAt: now() + 10 * MINUTE })
    const active = await add('alice', { expiresAt: now() + 10 * MINUTE })
    tick(9 * MINUTE)
    assert.equal(await store.patch(active.id, patch({ expiresAt: now() + 10 * MINUTE })), true)
    tick(MINUTE)
    assert.equal(await store.get(idle.id), undefined, 'gone at its deadline exactly')
    assert.notEqual(await store.get(active.id), undefined)
    assert.deepEqual(ids(await store.getAll('alice')), [active.id])
    tick(9 * MINUTE)
    assert.equal(await store.get(active.id), undefined)
    assert.deepEqual(await store.getAll('alice'), [])
    assert.equal(await store.deleteAll('alice', []), 0, 'expired sessions do not count')
  }],
  ['absolute-expiry', 'absolute timeout: refreshes stop at the absolute deadline', async ({ store, add, patch, tick, now }) => {
    const absolute = now() + 25 * MINUTE
    const s = await add('alice', { expiresAt: now() + 10 * MINUTE })
    for (let i = 0; i < 3; i++) {
      tick(8 * MINUTE)
      assert.equal(await store.patch(s.id, patch({ expiresAt: Math.min(now() + 10 * MINUTE, absolute) })), true)
    }
    assert.equal((await store.get(s.id))?.expiresAt, absolute)
    tick(absolute - now() - 1)
    assert.notEqual(await store.get(s.id), undefined)
    tick(1)
    assert.equal(await store.get(s.id), undefined)
    assert.equal(await store.patch(s.id, patch({ expiresAt: now() + 10 * MINUTE })), false)
  }],
  ['user-ids', 'user ids with glob and separator characters are kept apart', async ({ store, add }) => {
    const users = ['a', 'a.b', 'a*', 'a:b', '{a}', '[a]', '?', '*', 'a b', 'A', 'é', '}{', 'a\\']
    const owned = new Map<string, StoredSession[]>()
    for (const user of users) owned.set(user, [await add(user), await add(user)])
    for (const user of users) assert.deepEqual(ids(await store.getAll(user)), ids(owned.get(user) as StoredSession[]), user)
    assert.equal(await store.deleteAll('a', []), 2)
    assert.equal(await store.deleteAll('a*', [(owned.get('a*') as [StoredSession])[0].id]), 1)
    for (const user of users.filter((u) => u !== 'a' && u !== 'a*')) {
      assert.deepEqual(ids(await store.getAll(user)), ids(owned.get(user) as StoredSession[]), user)
    }
    assert.deepEqual(await store.getAll('a'), [])
  }],
  ['delete-all-race', 'deleteAll racing with a login leaves no half state', async ({ store, add, make }) => {
    for (const order of ['deleteAll first', 'insert first']) {
      const old = await Promise.all([add('alice'), add('alice'), add('alice')])
      const { record } = make('alice')
      let inserted: boolean, deleted: number
      if (order === 'insert first') [inserted, deleted] = await Promise.all([store.insert(record), store.deleteAll('alice', [])])
      else [deleted, inserted] = await Promise.all([store.deleteAll('alice', []), store.insert(record)])
      assert.equal(inserted, true, order)
      const survived = await store.get(record.id) !== undefined
      assert.equal(deleted, old.length + (survived ? 0 : 1), order)
      assert.deepEqual(ids(await store.getAll('alice')), survived ? [record.id] : [], order)
      for (const s of old) assert.equal(await store.get(s.id), undefined, order)
      await store.deleteAll('alice', [])
    }
  }],
  ['patch-race', 'patches racing a deleteAll never bring a session back', async ({ store, add, patch }) => {
    // With a new deadline, and data alone (the write a store may do without a script).
    for (const refresh of [true, false]) {
      const sessions = await Promise.all(Array.from({ length: 10 }, () => add('alice')))
      const [deleted] = await Promise.all([
        store.deleteAll('alice', []),
        ...sessions.map((s) => store.patch(s.id, patch({ set: nullProto({ late: true }), expiresAt: refresh ? s.expiresAt + HOUR : undefined })))
      ])
      assert.equal(deleted, sessions.length)
      assert.deepEqual(await store.getAll('alice'), [])
      for (const s of sessions) assert.equal(await store.get(s.id), undefined)
    }
  }],
  ['many-sessions', 'a user with thousands of sessions is listed and deleted completely', async ({ store, add }, options) => {
    const count = options.manySessions ?? 3000
    const sessions: StoredSession[] = []
    for (let i = 0; i < count; i += 500) {
      sessions.push(...await Promise.all(Array.from({ length: Math.min(500, count - i) }, () => add('many'))))
    }
    const bob = await add('bob')
    assert.deepEqual(ids(await store.getAll('many')), ids(sessions))
    const kept = sessions[count - 1] as StoredSession
    assert.equal(await store.deleteAll('many', [kept.id]), count - 1)
    assert.deepEqual(ids(await store.getAll('many')), [kept.id])
    assert.equal(await store.get((sessions[0] as StoredSession).id), undefined)
    assert.deepEqual(await store.get(bob.id), bob)
  }, 100_000],
  ['cap', 'at the per-user cap, an insert evicts the user\'s least recently used sessions', async ({ store, add, patch, tick }) => {
    const s1 = await add('alice')
    tick(10)
    const s2 = await add('alice')
    tick(10)
    const s3 = await add('alice')
    tick(10)
    assert.equal(await store.patch(s1.id, patch()), true, 's1 used again')
    const others = [await add('bob'), await add(), await add()]
    tick(10)
    const s4 = await add('alice')
    assert.equal(await store.get(s2.id), undefined, 'the least recently used went')
    assert.deepEqual(ids(await store.getAll('alice')), ids([s1, s3, s4]))
    tick(10)
    const s5 = await add('alice')
    assert.deepEqual(ids(await store.getAll('alice')), ids([s1, s4, s5]))
    for (const s of others) assert.notEqual(await store.get(s.id), undefined, 'other users and anonymous sessions stay')
  }, 3],
  ['cap-live', 'the per-user cap counts live sessions only', async ({ store, add, tick, now }) => {
    const short = await add('alice', { expiresAt: now() + MINUTE })
    const long = await add('alice')
    tick(MINUTE)
    const fresh = await add('alice')
    assert.equal(await store.get(short.id), undefined)
    assert.deepEqual(ids(await store.getAll('alice')), ids([long, fresh]))
  }, 2],
  ['close-twice', 'close() twice is harmless (the suite closes the store once more after the case)', async ({ store }) => {
    await store.close?.()
    await store.close?.()
  }],
  ['poisoning', 'stored data cannot poison prototypes', async ({ store, add, patch }) => {
    const evil = JSON.parse('{"__proto__":{"polluted":true},"ok":1}') as Record<string, unknown>
    const s = await add('alice', { data: { evil } })
    const set = nullProto({ evil2: evil })
    Object.defineProperty(set, '__proto__', { value: { polluted: true }, enumerable: true })
    assert.equal(await store.patch(s.id, patch({ set })), true)
    const got = await store.get(s.id) as StoredSession
    for (const value of [got.data, got.data.evil, got.data.evil2] as object[]) {
      assert.equal(Object.hasOwn(value, '__proto__'), false)
      assert.equal((value as { polluted?: unknown }).polluted, undefined)
    }
    assert.deepEqual(got.data.evil, { ok: 1 })
    assert.equal(({} as { polluted?: unknown }).polluted, undefined)
  }]
]
