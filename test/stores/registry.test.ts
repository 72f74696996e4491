import t from 'tap'
import { knownStores, MemoryStore, registerStore, type SessionStore, type StoreContext } from '../../lib/index.js'
import { buildApp, cookieOf, delegate } from '../helpers/app.js'

// A registered store joins the map of names to options types: storeOptions is then checked against it.
declare module '../../lib/index.js' {
  interface StoreOptionsMap {
    tracked: { flavour: string }
  }
}

t.test('built-ins are registered at import', async (t) => {
  t.match(knownStores(), ['memory', 'ets'])
})

t.test('registerStore: a user store chosen by name, built once with its own storeOptions and context', async (t) => {
  const built: Array<{ options: unknown, context: StoreContext }> = []
  let closed = 0
  registerStore('tracked', (options, context) => {
    built.push({ options, context })
    const store = new MemoryStore({}, context)
    return Object.assign({} as SessionStore, {
      get: store.get.bind(store),
      insert: store.insert.bind(store),
      patch: store.patch.bind(store),
      delete: store.delete.bind(store),
      getAll: store.getAll.bind(store),
      deleteAll: store.deleteAll.bind(store),
      bus: store.bus,
      close: async () => { closed++; await store.close() }
    })
  })
  t.ok(knownStores().includes('tracked'))
  const app = await buildApp({ store: 'tracked', storeOptions: { flavour: 'x' }, maxSessionsPerUser: 7 })
  const cookie = cookieOf(await app.inject({ method: 'POST', url: '/counter' }))
  t.same((await app.inject({ url: '/counter', headers: { cookie } })).json(), { counter: 1 })
  t.equal(built.length, 1, 'resolved once, at register()')
  t.same(built[0]?.options, { flavour: 'x' })
  t.equal(built[0]?.context.maxSessionsPerUser, 7)
  t.equal(typeof built[0]?.context.clock, 'function')
  await app.close()
  t.equal(closed, 1, 'closed in onClose')
})

t.test('registerStore refuses bad names, bad factories and duplicates', async (t) => {
  t.throws(() => registerStore('memory', () => ({}) as SessionStore), { code: 'FST_SESSION_STORE_INVALID', message: /already registered/ })
  t.throws(() => registerStore('no spaces', () => ({}) as SessionStore), { code: 'FST_SESSION_STORE_INVALID', message: /store name must match/ })
  t.throws(() => registerStore(5 as unknown as string, () => ({}) as SessionStore), { code: 'FST_SESSION_STORE_INVALID' })
  t.throws(() => registerStore('nofactory', 'x' as never), { code: 'FST_SESSION_STORE_INVALID', message: /must be a function/ })
})

t.test('a store object is used as it is; one that misses methods is refused at register()', async (t) => {
  const store = new MemoryStore({}, { clock: Date.now, log: console as never, maxSessionsPerUser: 10 })
  const app = await buildApp({ store })
  t.teardown(() => app.close())
  await app.inject({ method: 'POST', url: '/login', payload: { user: 'u' } })
  t.equal((await store.getAll('u')).length, 1)

  await t.rejects(buildApp({ store: { get () {} } as never }),
    { code: 'FST_SESSION_STORE_INVALID', message: /the store object lacks the method\(s\) insert, patch, delete, getAll, deleteAll/ })
  registerStore('broken', () => 42 as never)
  await t.rejects(buildApp({ store: 'broken' as never }), { code: 'FST_SESSION_STORE_INVALID', message: /the store built by "broken" is not an object/ })
})

t.test('a store without close() needs none', async (t) => {
  const inner = new MemoryStore({}, { clock: Date.now, log: console as never, maxSessionsPerUser: 10 })
  const app = await buildApp({ store: delegate(inner) })
  await app.inject({ method: 'POST', url: '/counter' })
  await app.close()
  await inner.close()
  t.pass('closed cleanly')
})

t.test('a store factory that fails with an error of its own: register() fails with that error, as it is', async (t) => {
  const bug = new TypeError('the store factory has a bug')
  registerStore('buggy', () => { throw bug })
  const err = await buildApp({ store: 'buggy' as 'memory' }).then(() => undefined, (e: unknown) => e)
  t.equal(err, bug, 'not folded into FST_SESSION_CONFIG_INVALID, not wrapped')
})
