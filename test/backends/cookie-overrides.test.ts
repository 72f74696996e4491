import t from 'tap'
import { cookieOverrides } from '../../lib/backends/cookie-overrides.js'
import { buildApp, cookieOf, setCookieOf, storeNamed } from '../helpers/app.js'

// request.session.options(opts): per-response overrides that can only make the cookie stricter.

const lax = { path: '/', domain: undefined, httpOnly: true, secure: 'auto', sameSite: 'lax', partitioned: false, priority: undefined } as const

t.test('what options() accepts and refuses', async (t) => {
  t.equal(cookieOverrides(undefined, lax), undefined)
  t.equal(cookieOverrides(null, lax), undefined)
  t.equal(cookieOverrides({ userInfo: 'u', secure: undefined }, lax), undefined, 'userInfo is ignored')
  t.equal(cookieOverrides({ secure: 'auto', httpOnly: true }, lax), undefined, 'the configured values are no override')
  t.same(cookieOverrides({ secure: true, sameSite: true, priority: 'high' }, lax), { secure: true, sameSite: 'strict', priority: 'high' })
  t.same(cookieOverrides({ sameSite: 'lax' }, { ...lax, sameSite: 'none' }), { sameSite: 'lax' })
  for (const [opts, pattern] of [
    ['strict', /must be an object/],
    [[], /must be an object/],
    [{ secure: false }, /can only be true/],
    [{ httpOnly: false }, /can only be true/],
    [{ sameSite: 'none' }, /looser/],
    [{ sameSite: false }, /must be 'lax', 'strict', 'none' or true/],
    [{ sameSite: 'toString' }, /must be 'lax'/],
    [{ priority: 'urgent' }, /must be 'low', 'medium' or 'high'/],
    [{ domain: 'evil.example' }, /second cookie/],
    [{ partitioned: true }, /second cookie/],
    [{ expires: new Date() }, /lifetime/],
    [{ encode: String }, /unknown/]
  ] as const) {
    t.throws(() => cookieOverrides(opts, lax), { code: 'FST_SESSION_OPTION_INVALID', message: pattern }, JSON.stringify(opts))
  }
})

for (const store of ['memory', 'cookie'] as const) {
  t.test(`options() on the ${store} store: applies to this response's Set-Cookie only, sends none by itself`, async (t) => {
    const app = await buildApp(storeNamed(store))
    t.teardown(() => app.close())
    app.post('/strict', async (request) => {
      request.session.options({ sameSite: 'strict', priority: 'high' })
      request.session.set('n', 1)
      return { ok: true }
    })
    app.post('/reset', async (request) => {
      request.session.options({ sameSite: 'strict' })
      request.session.options(undefined)
      request.session.set('n', 2)
      return { ok: true }
    })
    app.get('/options-only', async (request) => {
      request.session.options({ sameSite: 'strict' })
      return { ok: true }
    })
    const res = await app.inject({ method: 'POST', url: '/strict' })
    t.match(setCookieOf(res), { sameSite: 'Strict', priority: 'High', httpOnly: true })
    const cookie = cookieOf(res) as string
    t.same((await app.inject({ url: '/counter', headers: { cookie } })).statusCode, 200)
    t.equal(cookieOf(await app.inject({ url: '/options-only', headers: { cookie } })), undefined, 'no cookie by itself')
    t.equal(cookieOf(await app.inject({ url: '/options-only' })), undefined, 'no session by itself')
    const reset = await app.inject({ method: 'POST', url: '/reset', headers: { cookie } })
    if (store === 'cookie') t.match(setCookieOf(reset), { sameSite: 'Lax' }, 'undefined resets')
    else t.equal(cookieOf(reset), undefined, 'a server store sends no cookie on a plain change')
  })
}
