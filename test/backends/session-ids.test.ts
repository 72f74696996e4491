import t from 'tap'
import { ExpressStoreAdapter } from '../../lib/stores/express.js'
import { OwnerKey } from '../../lib/crypto/owner-key.js'
import { newSessionId } from '../../lib/crypto/ids.js'
import { Sealer } from '../../lib/crypto/seal.js'
import { MemoryStore } from '../../lib/index.js'
import { buildApp, cookieOf, delegate, SECRET } from '../helpers/app.js'

// The ids of a store (lib/backends/owned.ts): tagged with the owner key a store keeps, or plain
// random for a store that keeps none; and the owner key itself, read once and checked.

const context = { clock: Date.now, log: { warn () {}, debug () {}, info () {}, error () {} } as never, maxSessionsPerUser: 10 }

t.test('a store without ownerKey(): plain random ids, and whose a session is comes from its record', async (t) => {
  const inner = new MemoryStore({}, context)
  const app = await buildApp({ store: delegate(inner) })
  t.teardown(async () => { await app.close(); await inner.close() })
  const login = await app.inject({ method: 'POST', url: '/login', payload: { user: 'alice' } })
  const id = login.json().id as string
  t.match(id, /^[A-Za-z0-9_-]{22}$/, 'no tag: the store keeps no key to make one')
  t.equal((await app.inject({ url: '/me', headers: { cookie: cookieOf(login) as string } })).json().userId, 'alice')
  t.equal(await app.sessions.get(id, 'bob'), undefined, 'not bob\'s')
  t.equal((await app.sessions.get(id, 'alice'))?.userId, 'alice')
  t.equal(await app.sessions.delete(id, 'bob'), false, 'bob cannot revoke it')
  t.equal(await app.sessions.delete(id, 'alice'), true)
})

t.test('an owner key is read once, and one too short is a typed failure, read again on the next call', async (t) => {
  let reads = 0
  const short = new OwnerKey(async () => { reads++; return Buffer.alloc(8) })
  await t.rejects(short.get(), { code: 'FST_SESSION_STORE_UNAVAILABLE', message: /owner key/ })
  await t.rejects(short.get(), { code: 'FST_SESSION_STORE_UNAVAILABLE' })
  t.equal(reads, 2, 'a failed read is not kept')
  const good = new OwnerKey(async () => { reads++; return Buffer.alloc(32, 1) })
  t.equal(good.loaded, undefined)
  const [a, b] = await Promise.all([good.get(), good.get()])
  t.equal(a, b)
  t.equal(await good.get(), a)
  t.equal(reads, 3, 'read once')
})

t.test('the connect adapter: a store that fails to read the owner key fails the call', async (t) => {
  const adapter = new ExpressStoreAdapter({
    store: {
      get: (_sid, cb) => cb(Object.assign(new Error('disk on fire'), { code: 'EIO' })),
      set: (_sid, _s, cb) => cb?.(),
      destroy: (_sid, cb) => cb?.(),
      all: (cb) => cb(null, [])
    }
  }, context)
  await t.rejects(adapter.getAll('u'), /disk on fire/)
})

t.test('the cookie store: a user\'s sealed id without that user\'s tag is unknown', async (t) => {
  const app = await buildApp({ store: 'cookie', storeOptions: { revocation: 'memory' } })
  t.teardown(() => app.close())
  const now = Date.now()
  const sealer = new Sealer([SECRET], 'sid')
  for (const id of [newSessionId(undefined), newSessionId('C'.repeat(22))]) {
    const value = sealer.seal(JSON.stringify([id, 'alice', now, now + 60_000, now + 3_600_000, now, 0, {}]))
    const me = await app.inject({ url: '/me', headers: { cookie: `sid=${value}` } })
    t.same(me.json(), { id: null, userId: null, name: null }, `${id}: an anonymous session`)
  }
})
