import type { Test } from 'tap'
import type { RevocationOption } from '../../lib/index.js'
import { buildApp, cookieOf, logSink, testClock } from './app.js'

// What revocation must do for the cookie store, run against each revocation store (memory,
// Redis, Redis Cluster). The clock is frozen unless a case moves it: a "log out everywhere"
// and a new login in the same millisecond must not be confused.

type App = Awaited<ReturnType<typeof buildApp>>

async function loginAs (app: App, user: string, cookie?: string): Promise<{ cookie: string, id: string }> {
  const res = await app.inject({ method: 'POST', url: '/login', payload: { user }, headers: cookie === undefined ? {} : { cookie } })
  return { cookie: cookieOf(res) as string, id: res.json().id }
}

async function userOf (app: App, cookie: string): Promise<string | null> {
  return (await app.inject({ url: '/me', headers: { cookie } })).json().userId
}

/** `fakeClockExpires`: the store expires entries on the plugin's clock (memory), not on its own (Redis). */
export function revocationFlows (t: Test, revocation: () => RevocationOption, { fakeClockExpires = true } = {}): void {
  const build = async (t: Test, extra: object = {}): Promise<{ app: App, clock: ReturnType<typeof testClock> }> => {
    const clock = testClock()
    const app = await buildApp({ store: 'cookie', storeOptions: { revocation: revocation() }, clock: clock.now, ...extra })
    app.post('/regenerate', async (req) => { await req.session.regenerate(); return { id: req.session.id } })
    t.teardown(() => app.close())
    return { app, clock }
  }

  t.test('destroy() revokes the session: a copy of the cookie stops working (CVE-2024-31999)', async (t) => {
    const sink = logSink('debug')
    const { app } = await build(t, {})
    const logged = await buildApp({ store: 'cookie', storeOptions: { revocation: revocation() } }, sink.logger)
    t.teardown(() => logged.close())
    for (const target of [app, logged]) {
      const a = await loginAs(target, 'alice')
      const out = await target.inject({ method: 'POST', url: '/logout', headers: { cookie: a.cookie } })
      t.match(out.headers['set-cookie'], /^sid=; Max-Age=0/)
      const copy = await target.inject({ url: '/me', headers: { cookie: a.cookie } })
      t.same(copy.json(), { id: null, userId: null, name: null }, 'the copy is refused')
      t.match(copy.headers['set-cookie'], /^sid=; Max-Age=0/, 'and expired')
    }
    t.ok(sink.lines.some((l) => l.reason === 'revoked' && l.level === 20), 'a debug line says why')
  })

  t.test('login and regenerate revoke the old id, anonymous or not', async (t) => {
    const { app } = await build(t)
    const planted = cookieOf(await app.inject({ method: 'POST', url: '/set', payload: { key: '_csrf', value: 'known' } })) as string
    const victim = await loginAs(app, 'victim', planted)
    const anon = await app.inject({ url: '/counter', headers: { cookie: planted } })
    t.match(anon.headers['set-cookie'], /^sid=; Max-Age=0/, 'the planted anonymous cookie is refused after the login')
    const regen = await app.inject({ method: 'POST', url: '/regenerate', headers: { cookie: victim.cookie } })
    t.not(regen.json().id, victim.id)
    t.equal(await userOf(app, victim.cookie), null, 'the old id is revoked')
    t.equal(await userOf(app, cookieOf(regen) as string), 'victim')
  })

  t.test('deleteAll: log out everywhere, or every other device; new logins are not caught in it', async (t) => {
    const { app, clock } = await build(t)
    const a = await loginAs(app, 'alice')
    const b = await loginAs(app, 'alice')
    const bob = await loginAs(app, 'bob')
    const others = await app.inject({ method: 'POST', url: '/logout-others', headers: { cookie: a.cookie } })
    t.same(others.json(), { deleted: 0 }, 'a stateless store cannot count what it revoked')
    t.equal(await userOf(app, b.cookie), null, 'another device is out')
    t.equal(await userOf(app, a.cookie), 'alice', 'this device stays')
    t.equal(await userOf(app, bob.cookie), 'bob', 'other users untouched')

    const c = await loginAs(app, 'alice')
    t.equal(await userOf(app, c.cookie), 'alice', 'a login right after (same millisecond) works')
    const regen = await app.inject({ method: 'POST', url: '/regenerate', headers: { cookie: a.cookie } })
    const a2 = cookieOf(regen) as string
    t.equal(await userOf(app, a2), 'alice', 'the kept session keeps working under a new id')

    clock.tick(1000)
    t.equal(await app.sessions.deleteAll('alice', { except: [c.id, 'not-an-id', bob.id, 42 as unknown as string] }), 0)
    t.equal(await userOf(app, c.cookie), 'alice')
    t.equal(await userOf(app, a2), null, 'a second deleteAll revokes what the first kept')
    t.equal(await userOf(app, bob.cookie), 'bob', 'an except of another user protects nothing of theirs and changes nothing')
    await app.inject({ method: 'POST', url: '/logout-everywhere', headers: { cookie: c.cookie } })
    t.equal(await userOf(app, c.cookie), null)
    t.equal(await app.sessions.deleteAll(undefined), 0)
    await t.rejects(app.sessions.deleteAll({} as unknown as string), { code: 'FST_SESSION_USER_ID_INVALID' })
  })

  t.test('app.sessions.delete revokes one session; with a userId only if it is theirs', async (t) => {
    const { app } = await build(t)
    const a = await loginAs(app, 'alice')
    const m = await loginAs(app, 'mallory')
    t.equal(await app.sessions.delete(a.id, 'mallory'), false, 'mallory cannot revoke alice\'s session')
    t.equal(await app.sessions.delete(a.id, 'alice'), true)
    t.equal(await app.sessions.delete(a.id), false, 'already revoked')
    t.equal(await app.sessions.delete('not an id'), false)
    t.equal(await app.sessions.delete(42 as unknown as string), false)
    t.equal(await userOf(app, a.cookie), null)
    t.equal(await userOf(app, m.cookie), 'mallory')
  })

  t.test('revocations end with the sessions they revoke', async (t) => {
    const { app, clock } = await build(t, { ttl: 60, absoluteTtl: 120 })
    const a = await loginAs(app, 'alice')
    await app.inject({ method: 'POST', url: '/logout', headers: { cookie: a.cookie } })
    await app.sessions.deleteAll('alice')
    clock.tick(121_000)
    t.equal(await userOf(app, a.cookie), null, 'past its absolute deadline, the cookie is dead anyway')
    const b = await loginAs(app, 'alice')
    t.equal(await userOf(app, b.cookie), 'alice')
    if (fakeClockExpires) t.equal(await app.sessions.delete(a.id), true, 'a revocation can be made again once the first expired')
  })
}
