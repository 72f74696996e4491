import t, { type Test } from 'tap'
import { MemoryStore } from '../../lib/index.js'
import { buildApp, cookieOf, counting } from '../helpers/app.js'
import { writesOf } from '../helpers/stores.js'

// set() of a value equal as JSON to the current one, and delete() of a key the session does
// not hold, are no change; a value mutated in place and set again is one.

async function app (t: Test): Promise<{ app: Awaited<ReturnType<typeof buildApp>>, store: MemoryStore & { calls: Record<string, number> } }> {
  const store = counting(new MemoryStore({}, { clock: Date.now, log: console as never, maxSessionsPerUser: 100 }))
  const a = await buildApp({ store })
  t.teardown(() => a.close())
  a.post('/cart', async (request) => {
    const cart = (request.session.get('cart') as string[] | undefined) ?? []
    cart.push('apple')
    request.session.set('cart', cart)
    return { cart }
  })
  a.post('/cart-json', async (request) => {
    const { cart } = request.session.toJSON() as { cart: string[] }
    cart.push('pear')
    request.session.set('cart', cart)
    return { cart }
  })
  a.post('/cart-twice', async (request) => {
    const cart = ['kiwi']
    request.session.set('cart', cart)
    cart.push('lime')
    request.session.set('cart', cart)
    return { cart }
  })
  a.post('/forget', async (request) => {
    request.session.delete('nothing')
    request.session.set('absent', undefined)
    return { ok: true }
  })
  a.post('/same-after-other', async (request) => {
    request.session.set('n', 1)
    request.session.set('n', 2)
    request.session.set('n', 2)
    return { ok: true }
  })
  a.post('/regenerate-anonymous', async (request) => {
    request.session.set('keep', 1)
    request.session.set('drop', 2)
    await request.session.regenerate(['keep'])
    return request.session.toJSON()
  })
  a.post('/regenerate-bad', async (request) => {
    await request.session.regenerate('keep' as never)
    return { ok: true }
  })
  a.post('/regenerate-keep', async (request) => {
    await request.session.regenerate(['name', 7 as never, 'missing'])
    return { data: request.session.toJSON(), userId: request.session.userId }
  })
  a.post('/regenerate-unchanged', async (request) => {
    await request.session.regenerate([])
    return { data: request.session.toJSON() }
  })
  return { app: a, store }
}

t.test('a value mutated in place and set again is a change, through get() and toJSON()', async (t) => {
  const { app: a, store } = await app(t)
  const cookie = cookieOf(await a.inject({ method: 'POST', url: '/cart' })) as string
  t.same((await a.inject({ method: 'POST', url: '/cart', headers: { cookie } })).json(), { cart: ['apple', 'apple'] })
  t.same((await a.inject({ method: 'POST', url: '/cart-json', headers: { cookie } })).json(), { cart: ['apple', 'apple', 'pear'] })
  t.same((await a.inject({ method: 'POST', url: '/cart-twice', headers: { cookie } })).json(), { cart: ['kiwi', 'lime'] })
  t.same((await a.inject({ url: '/counter', headers: { cookie } })).statusCode, 200)
  t.same(store.calls.patch, 3, 'every change written')
})

t.test('deleting what is not there creates no session; setting back and forth still writes the last value', async (t) => {
  const { app: a, store } = await app(t)
  const res = await a.inject({ method: 'POST', url: '/forget' })
  t.equal(cookieOf(res), undefined)
  t.equal(writesOf(store), 0)
  const cookie = cookieOf(await a.inject({ method: 'POST', url: '/same-after-other' })) as string
  t.ok(cookie)
  t.equal(store.calls.insert, 1)
})

t.test('regenerate(keys): only the listed keys survive; the user stays; anonymous and pending too', async (t) => {
  const { app: a } = await app(t)
  const anon = await a.inject({ method: 'POST', url: '/regenerate-anonymous' })
  t.same(anon.json(), { keep: 1 })
  const anonCookie = cookieOf(anon) as string
  t.same((await a.inject({ url: '/me', headers: { cookie: anonCookie } })).json().name, null)
  const bad = await a.inject({ method: 'POST', url: '/regenerate-bad' })
  t.match(bad.json(), { code: 'FST_SESSION_OPTION_INVALID', message: /keys/ })
  t.equal(cookieOf(await a.inject({ method: 'POST', url: '/regenerate-unchanged' })), undefined, 'nothing pending, nothing stored')

  const login = await a.inject({ method: 'POST', url: '/login', payload: { user: 'alice' } })
  const cookie = cookieOf(login) as string
  await a.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { key: 'other', value: true } })
  const renewed = await a.inject({ method: 'POST', url: '/regenerate-keep', headers: { cookie } })
  t.same(renewed.json(), { data: { name: 'alice' }, userId: 'alice' })
  const next = cookieOf(renewed) as string
  t.not(next, cookie)
  t.equal((await a.inject({ url: '/me', headers: { cookie } })).json().userId, null, 'the old id is dead')
  t.same((await a.sessions.getAll('alice')).map((s) => s.data), [{ name: 'alice' }])
})
