import fc from 'fast-check'
import t from 'tap'
import { knownStores } from '../../lib/index.js'
import { buildApp, setCookieOf, storeNamed } from '../helpers/app.js'

// The Cookie header as a whole: many cookies, names that mean something to JavaScript objects,
// and the session cookie's name more than once. The first occurrence of the name decides, as
// browsers send the most specific cookie first (RFC 6265, 5.4): a duplicate planted for a parent
// domain or a shorter path ("cookie tossing") comes later and replaces nothing. Nothing else
// loads a session, and nothing answers 500.

const HOSTILE_NAMES = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf',
  'SID', 'Sid', 'sid2', 'xsid', 'sid_', '__Host-sid', '__Secure-sid', 'alt', '$sid']
const name = fc.oneof(
  fc.constantFrom(...HOSTILE_NAMES),
  fc.stringMatching(/^[A-Za-z0-9!#$&'*+.^_`|~-]{1,12}$/).filter((n) => n !== 'sid')
)
const value = fc.stringMatching(/^[A-Za-z0-9!#$%&'()*+./:<=>?@[\]^_`{|}~-]{0,40}$/)
type Sid = 'alice' | 'bob' | 'mutated' | 'empty' | 'garbage'

for (const store of ['memory', 'cookie'] as const) {
  t.test(`property (${store}): many cookies and duplicated session cookies: the first sid decides, never a 500`, async (t) => {
    if (!knownStores().includes(store)) {
      t.plan(0, `store '${store}' is not registered`)
      return
    }
    const app = await buildApp(storeNamed(store))
    app.get('/probe', async (req) => ({ loaded: !req.session.isNew, userId: req.session.userId ?? null, sid: req.cookies.sid ?? null }))
    t.teardown(() => app.close())
    const issue = async (user: string): Promise<string> =>
      (setCookieOf(await app.inject({ method: 'POST', url: '/login', payload: { user } })) as { value: string }).value
    const values = { alice: await issue('alice'), bob: await issue('bob') }
    const sidValue = (kind: Sid, at: number): string => {
      if (kind === 'alice' || kind === 'bob') return values[kind]
      if (kind === 'empty') return ''
      if (kind === 'garbage') return `g${at}`
      const i = at % values.alice.length
      return values.alice.slice(0, i) + (values.alice[i] === 'A' ? 'B' : 'A') + values.alice.slice(i + 1)
    }
    const seen = { alice: 0, bob: 0, none: 0 }
    await fc.assert(fc.asyncProperty(
      fc.array(fc.tuple(name, value), { maxLength: 80 }),
      fc.array(fc.tuple(fc.constantFrom<Sid>('alice', 'bob', 'mutated', 'empty', 'garbage'), fc.nat()), { maxLength: 4 }),
      fc.constantFrom('; ', ';', ';  '),
      async (junk, sids, separator) => {
        const pairs = junk.map(([n, v]) => `${n}=${v}`)
        for (const [kind, at] of sids) pairs.splice(at % (pairs.length + 1), 0, `sid=${sidValue(kind, at)}`)
        const res = await app.inject({ url: '/probe', headers: { cookie: pairs.join(separator) } })
        if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}: ${res.body}`)
        const body = res.json() as { loaded: boolean, userId: string | null, sid: string | null }
        const first = pairs.find((p) => p.startsWith('sid='))
        const expected = first === `sid=${values.alice}` ? 'alice' : first === `sid=${values.bob}` ? 'bob' : null
        if (body.userId !== expected || body.loaded !== (expected !== null)) {
          throw new Error(`the first sid is ${JSON.stringify(first?.slice(0, 20))}, expected ${expected}, loaded ${JSON.stringify(body)}`)
        }
        seen[expected ?? 'none']++
      }), { numRuns: 400 })
    t.ok(seen.alice > 0 && seen.bob > 0 && seen.none > 0, `each outcome was exercised: ${JSON.stringify(seen)}`)
  })
}

t.test('a cookie named like an Object.prototype member never reaches the session or the prototype', async (t) => {
  const app = await buildApp({ cookieName: 'constructor' })
  app.get('/probe', async (req) => ({ loaded: !req.session.isNew, own: Object.keys(req.cookies) }))
  t.teardown(() => app.close())
  const res = await app.inject({ url: '/probe', headers: { cookie: '__proto__=x; toString=y; hasOwnProperty=z' } })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { loaded: false, own: ['__proto__', 'toString', 'hasOwnProperty'] }, 'own keys of a null-prototype object')
  t.equal(({} as Record<string, unknown>).x, undefined)
})
