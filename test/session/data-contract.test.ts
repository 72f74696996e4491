import session from 'express-session'
import t, { type Test } from 'tap'
import { buildApp, cookieOf } from '../helpers/app.js'
import { onEveryStore, type StoreOptions } from '../helpers/stores.js'

// The data contract, on every store: a value is stored only if it comes back equal (type and
// JSON) on the next request; anything else is refused by set() and by property assignment with
// FST_SESSION_VALUE_INVALID naming the path.

type Bag = Record<string, any>

class Point { x = 1 }

const STORED: Bag = {
  text: 'é ✓ "quoted" \\ \n',
  int: 42,
  float: -1.5e-7,
  yes: true,
  none: null,
  list: [1, 'a', null, false, { x: [] }],
  nested: { a: { b: { c: 'd', n: [[0]] } } },
  empty: {},
  emptyList: [],
  bare: Object.assign(Object.create(null), { k: 'null prototype' })
}

const REFUSED: Array<[string, () => unknown, string, RegExp]> = [
  ['date', () => new Date(0), 'when', /Date/],
  ['nested date', () => ({ items: [{ at: 1 }, { at: 2 }, { at: new Date() }] }), 'when.items[2].at', /Date/],
  ['map', () => new Map([['a', 1]]), 'when', /Map/],
  ['set', () => ({ tags: new Set(['a']) }), 'when.tags', /Set/],
  ['regexp', () => [/x/], 'when[0]', /RegExp/],
  ['class instance', () => ({ p: new Point() }), 'when.p', /instance of Point/],
  ['NaN', () => ({ n: NaN }), 'when.n', /NaN would come back as null/],
  ['Infinity', () => Infinity, 'when', /Infinity/],
  ['-Infinity', () => [-Infinity], 'when[0]', /-Infinity/],
  ['function', () => ({ f: () => 1 }), 'when.f', /function/],
  ['symbol', () => ({ 'a key': Symbol('s') }), 'when["a key"]', /symbol/],
  ['bigint', () => ({ big: 1n }), 'when.big', /BigInt/],
  ['undefined in an array', () => [1, undefined], 'when[1]', /undefined in an array/],
  ['hole', () => [1, , 3], 'when[1]', /hole/], // eslint-disable-line no-sparse-arrays
  ['buffer', () => Buffer.from('x'), 'when', /instance of Buffer/],
  ['an object of a prototype without a constructor', () => ({ o: Object.create(Object.create(null)) }), 'when.o', /an instance of a class/]
]

async function contract (t: Test, store: StoreOptions): Promise<void> {
  const app = await buildApp(store)
  t.teardown(() => app.close())
  app.post('/store', async (req) => {
    const s = req.session as unknown as Bag
    for (const [k, v] of Object.entries(STORED)) {
      if (k === 'bare') req.session.set(k, v)
      else s[k] = v
    }
    s.dropped = { kept: 1, gone: undefined }
    return 'ok'
  })
  app.get('/read', async (req) => {
    const s = req.session as unknown as Bag
    return { same: Object.keys(STORED).map((k) => [k, s[k]]), dropped: s.dropped, hasGone: 'gone' in s.dropped }
  })
  app.post<{ Querystring: { i: string, how: string } }>('/refuse', async (req) => {
    const value = (REFUSED[Number(req.query.i)] as [string, () => unknown, string, RegExp])[1]()
    if (req.query.how === 'property') (req.session as unknown as Bag).when = value
    else req.session.set('when', value)
    return 'stored'
  })
  const cookie = cookieOf(await app.inject({ method: 'POST', url: '/store' })) as string
  t.ok(cookie)
  const read = (await app.inject({ url: '/read', headers: { cookie } })).json()
  for (const [k, v] of read.same as Array<[string, unknown]>) t.strictSame(v, JSON.parse(JSON.stringify(STORED[k])), `${k} comes back equal`)
  t.strictSame(read.dropped, { kept: 1 }, 'an undefined property is left out, as JSON leaves it out')
  t.equal(read.hasGone, false)
  for (const [i, [what, , path, reason]] of REFUSED.entries()) {
    for (const how of ['set', 'property']) {
      const res = await app.inject({ method: 'POST', url: `/refuse?i=${i}&how=${how}`, headers: { cookie } })
      t.equal(res.statusCode, 500, `${what} (${how})`)
      t.equal(res.json().code, 'FST_SESSION_VALUE_INVALID', `${what} (${how})`)
      t.match(res.json().message, `Session value at "${path}" cannot be stored: `, `${what} (${how}): the path`)
      t.match(res.json().message, reason, `${what} (${how}): the reason`)
    }
  }
  t.notOk('when' in (await app.inject({ url: '/read', headers: { cookie } })).json(), 'nothing refused was stored')
}

onEveryStore(t, 'the data contract', async (t, { store }) => { await contract(t, store) })

t.test('the data contract (a connect store through the express adapter)', async (t) => {
  await contract(t, { store: 'express', storeOptions: { store: new session.MemoryStore() } })
})
