import { setTimeout as delay } from 'node:timers/promises'
import t from 'tap'
import { Redis } from 'ioredis'
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { MemoryStore } from '../../lib/index.js'
import { buildApp, cookieOf, delegate, logSink, testClock } from '../helpers/app.js'
import { redisServer, until } from '../helpers/redis.js'

// Lifecycle events (`app.sessions.on` / `off`) and `onRevoked` on one instance: what each event
// carries (never a secret, a token or data), listeners and callbacks that throw, bad arguments,
// and a subscriber that lost its connection while a revocation was published (issue 14).

async function withRoutes (options: object = {}, logger: boolean | object = false): Promise<FastifyInstance> {
  return await buildApp(options, logger, (app) => {
    app.post('/regenerate', async (req) => {
      await req.session.regenerate()
      return { id: req.session.id }
    })
    app.post('/watch', async (req) => {
      req.session.onRevoked(() => { throw new Error('a callback that throws') })
      return { id: req.session.id }
    })
    app.post('/watch-unsaved', async (req) => {
      req.session.onRevoked(() => {})
      return { id: req.session.id }
    })
    app.post('/watch-bad', async (req) => {
      req.session.onRevoked('nope' as never)
      return { id: req.session.id }
    })
  })
}

t.test('created, login, regenerated, destroyed and revoked: who, when, from where; nothing secret', async (t) => {
  const app = await withRoutes()
  t.teardown(() => app.close())
  const events: Array<[string, Record<string, unknown>]> = []
  for (const name of ['created', 'login', 'regenerated', 'destroyed', 'revoked'] as const) {
    app.sessions.on(name, (e) => { events.push([name, e as unknown as Record<string, unknown>]) })
  }
  const anonymous = await app.inject({ method: 'POST', url: '/counter', headers: { 'user-agent': 'UA/1' } })
  let cookie = cookieOf(anonymous) as string
  const anonymousId = decodeURIComponent(cookie.slice(4)).split('.')[0]
  const login = await app.inject({ method: 'POST', url: '/login', headers: { cookie, 'user-agent': 'UA/1' }, payload: { user: 'alice' } })
  cookie = cookieOf(login) as string
  const loggedIn = login.json().id as string
  const regenerated = await app.inject({ method: 'POST', url: '/regenerate', headers: { cookie } })
  cookie = cookieOf(regenerated) as string
  const newId = regenerated.json().id as string
  await app.inject({ method: 'POST', url: '/logout', headers: { cookie } })
  // 'revoked' comes through the bus, on a later turn.
  await until('three revocations heard', async () => events.filter(([name]) => name === 'revoked').length >= 3 ? true : undefined)
  const names = events.map(([name]) => name)
  t.same(names.filter((n) => n !== 'revoked'), ['created', 'login', 'regenerated', 'destroyed'])
  const byName = new Map(events.map(([name, e]) => [name, e]))
  t.match(byName.get('created'), { id: anonymousId, userId: undefined, ip: '127.0.0.1', userAgent: 'UA/1' })
  t.match(byName.get('login'), { id: loggedIn, userId: 'alice', previousId: anonymousId })
  t.match(byName.get('regenerated'), { id: newId, userId: 'alice', previousId: loggedIn })
  t.match(byName.get('destroyed'), { id: newId, userId: 'alice' })
  const revoked = events.filter(([name]) => name === 'revoked').map(([, e]) => [e.id, e.reason])
  t.same(revoked, [[anonymousId, 'replaced'], [loggedIn, 'replaced'], [newId, 'destroy']], 'every session that ended, with why')
  for (const [, e] of events) {
    t.type(e.at, 'number')
    const text = JSON.stringify(e)
    t.notOk(text.includes(decodeURIComponent(cookie.slice(4)).split('.').at(-1) as string), 'no secret')
    t.notOk(text.includes('counter'), 'no data')
  }
})

t.test('a listener or a callback that throws is logged; the request, the others and the process go on', async (t) => {
  const sink = logSink('error')
  const app = await withRoutes({}, sink.logger)
  t.teardown(() => app.close())
  const heard: string[] = []
  app.sessions.on('login', () => { throw new Error('a listener that throws') })
  app.sessions.on('login', (e) => { heard.push(e.id) })
  app.sessions.on('revoked', () => { throw new Error('a revoked listener that throws') })
  const login = await app.inject({ method: 'POST', url: '/login', payload: { user: 'bob' } })
  t.equal(login.statusCode, 200, 'the login went through')
  t.same(heard, [login.json().id], 'the next listener heard it')
  await app.inject({ method: 'POST', url: '/watch', headers: { cookie: cookieOf(login) as string } })
  await app.sessions.deleteAll('bob')
  await until('both logged', async () => sink.text().includes('an onRevoked callback threw') &&
    sink.text().includes('a revoked listener that throws')
    ? true
    : undefined)
  t.match(sink.text(), 'a session event listener threw')
  t.match(sink.text(), 'an onRevoked callback threw')
})

t.test('on/off and onRevoked refuse bad arguments with a typed error; off stops a listener', async (t) => {
  const app = await withRoutes()
  t.teardown(() => app.close())
  t.throws(() => app.sessions.on('nope' as never, () => {}), { code: 'FST_SESSION_OPTION_INVALID', message: /"event"/ })
  t.throws(() => app.sessions.on('login', 'nope' as never), { code: 'FST_SESSION_OPTION_INVALID', message: /"listener"/ })
  t.throws(() => app.sessions.off('login', 42 as never), { code: 'FST_SESSION_OPTION_INVALID' })
  const heard: string[] = []
  const listener = (e: { id: string }): void => { heard.push(e.id) }
  app.sessions.on('login', listener).on('login', listener)
  await app.inject({ method: 'POST', url: '/login', payload: { user: 'carol' } })
  t.equal(heard.length, 1, 'the same listener once')
  app.sessions.off('login', listener).off('login', listener).off('destroyed', listener)
  await app.inject({ method: 'POST', url: '/login', payload: { user: 'carol' } })
  t.equal(heard.length, 1, 'off stopped it')
  const unsaved = await app.inject({ method: 'POST', url: '/watch-unsaved' })
  t.equal(unsaved.json().code, 'FST_SESSION_OPTION_INVALID')
  t.match(unsaved.json().message, 'not stored yet')
  const login = await app.inject({ method: 'POST', url: '/login', payload: { user: 'carol' } })
  const bad = await app.inject({ method: 'POST', url: '/watch-bad', headers: { cookie: cookieOf(login) as string } })
  t.match(bad.json(), { code: 'FST_SESSION_OPTION_INVALID', message: /"callback"/ })
})

t.test('a subscriber that lost its connection while a revocation was published checks what it follows once back', async (t) => {
  const server = await redisServer(t, { own: true })
  if (server === undefined) return
  const options = { store: 'redis' as const, storeOptions: { url: server.url, prefix: 'ev:' } }
  const ended: string[] = []
  const b = await buildApp(options, false, (app) => {
    app.post('/watch', async (req) => {
      req.session.onRevoked((reason) => { ended.push(reason) })
      return { id: req.session.id }
    })
  })
  const a = await buildApp(options)
  t.teardown(() => Promise.all([a.close(), b.close()]))
  const admin = new Redis(server.url)
  t.teardown(() => admin.quit())
  const login = await b.inject({ method: 'POST', url: '/login', payload: { user: 'dan' } })
  await b.inject({ method: 'POST', url: '/watch', headers: { cookie: cookieOf(login) as string } })
  await until('B subscribed', async () => (await admin.pubsub('NUMSUB', 'ev:revoked') as [string, number])[1] === 1 ? true : undefined)
  await a.sessions.getAll('dan') // A's connection is open
  // The subscriber's connection is cut, and kept out (no room for a new client) until the
  // revocation is published: whatever the machine's load, it is missed.
  const connected = (await admin.client('LIST') as string).trim().split('\n').length
  const maxclients = (await admin.config('GET', 'maxclients') as string[])[1] as string
  await admin.multi().client('KILL', 'TYPE', 'pubsub').config('SET', 'maxclients', connected - 1).exec()
  await a.sessions.deleteAll('dan')
  await admin.config('SET', 'maxclients', maxclients)
  await until('the connection ends', async () => ended.length > 0 ? true : undefined)
  t.same(ended, ['unknown'], 'the resync found the session gone: the connection ends')

  // A restart of Redis (every session lost with it) while another one is followed.
  const again = await b.inject({ method: 'POST', url: '/login', payload: { user: 'dan' } })
  await b.inject({ method: 'POST', url: '/watch', headers: { cookie: cookieOf(again) as string } })
  await server.stop()
  await server.start()
  await until('the second connection ends', async () => ended.length > 1 ? true : undefined)
  t.same(ended, ['unknown', 'unknown'], 'after the restart, the session is found gone')
})

t.test('a check the store cannot answer is tried again a second later; then the connection ends', async (t) => {
  const memory = new MemoryStore({}, { clock: Date.now, log: pino({ level: 'silent' }), maxSessionsPerUser: 100 })
  t.teardown(() => memory.close())
  let failing = false
  let answered = 0
  const store = delegate(memory, {
    get: async (id) => {
      if (failing) throw new Error('store down')
      const found = await memory.get(id)
      answered++
      return found
    }
  })
  const sink = logSink('warn')
  const ended: string[] = []
  const app = await buildApp({ store }, sink.logger, (app) => {
    app.post('/watch', async (req) => {
      req.session.onRevoked((reason) => { ended.push(reason) })
      return { id: req.session.id }
    })
  })
  t.teardown(() => app.close())
  const login = await app.inject({ method: 'POST', url: '/login', payload: { user: 'olga' } })
  await app.inject({ method: 'POST', url: '/watch', headers: { cookie: cookieOf(login) as string } })
  await until('the check of a session just followed', async () => answered === 2 ? true : undefined) // after its load
  failing = true
  await app.sessions.deleteAll('olga') // a store without a bus: the message names the user, and the check fails
  await until('the failed check', async () => sink.text().includes('session store unavailable while checking a live connection') ? true : undefined)
  t.same(ended, [], 'not ended on a failed check')
  failing = false
  await until('the retry', async () => ended.length > 0 ? true : undefined)
  t.same(ended, ['deleteAll'], 'the retry found it gone')
})

t.test('getAll leaves out what a store returns past its deadline', async (t) => {
  const memory = new MemoryStore({}, { clock: Date.now, log: pino({ level: 'silent' }), maxSessionsPerUser: 100 })
  t.teardown(() => memory.close())
  const store = delegate(memory, {
    getAll: async (userId) => (await memory.getAll(userId)).map((s, i) => i === 0 ? { ...s, expiresAt: Date.now() - 1 } : s)
  })
  const app = await buildApp({ store })
  t.teardown(() => app.close())
  await app.inject({ method: 'POST', url: '/login', payload: { user: 'pia' } })
  const second = await app.inject({ method: 'POST', url: '/login', payload: { user: 'pia' } })
  t.same((await app.sessions.getAll('pia')).map((s) => s.id), [second.json().id])
})

t.test('a session no longer followed when its check returns is left alone; one gone before its known deadline ends as unknown', async (t) => {
  const clock = testClock()
  const memory = new MemoryStore({}, { clock: clock.now, log: pino({ level: 'silent' }), maxSessionsPerUser: 100 })
  t.teardown(() => memory.close())
  // The second get (the check of the first session followed, after its load) waits for release().
  let calls = 0
  let answered = 0
  let release = (): void => {}
  const held = new Promise<void>((resolve) => { release = resolve })
  const store = delegate(memory, {
    get: async (id) => {
      if (++calls === 2) await held
      const found = await memory.get(id)
      answered++
      return found
    }
  })
  const ended: string[] = []
  const stops: Array<() => void> = []
  // ttl 1 s on a clock that does not move: the timer fires after a second of real time, before the deadline the clock knows.
  const app = await buildApp({ store, clock: clock.now, ttl: 1 }, false, (app) => {
    app.post('/watch', async (req) => {
      stops.push(req.session.onRevoked((reason) => { ended.push(reason) }))
      return { id: req.session.id }
    })
  })
  t.teardown(() => app.close())
  const first = await app.inject({ method: 'POST', url: '/login', payload: { user: 'quinn' } })
  await app.inject({ method: 'POST', url: '/watch', headers: { cookie: cookieOf(first) as string } })
  t.equal(answered, 1, 'the load answered, the check of the session just followed not yet')
  ;(stops[0] as () => void)() // while its first check waits for the store
  release()
  await until('the check answered', async () => answered === 2 ? true : undefined)
  await delay(10)
  t.same(ended, [], 'stopped: its check changed nothing')

  const second = await app.inject({ method: 'POST', url: '/login', payload: { user: 'quinn' } })
  await app.inject({ method: 'POST', url: '/watch', headers: { cookie: cookieOf(second) as string } })
  await until('the check of the session just followed', async () => answered === 4 ? true : undefined)
  // Deleted behind the plugin's back (no announcement): the timer's check finds it gone before its deadline.
  t.equal(await memory.delete(second.json().id), true)
  await until('the timer\'s check', async () => ended.length > 0 ? true : undefined)
  t.same(ended, ['unknown'], 'not expired: gone, nobody said why')
})
