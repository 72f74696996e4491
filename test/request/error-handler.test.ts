import t, { type Test } from 'tap'
import { isStoreUnavailable, sessionErrorHandler } from '../../lib/index.js'
import { buildApp, cookieOf, logSink } from '../helpers/app.js'
import { redisServer } from '../helpers/redis.js'

// The log during an outage: Fastify's default error handler writes one error line per 503;
// with sessionErrorHandler() the clients still get every typed 503, and the log gets a warning
// per interval with the count since the last one.

const REQUESTS = 300
const server = await redisServer(t, { own: true })
if (server !== undefined) {
  /** A Redis app whose store is down, the logged-in cookie, and the log lines it wrote. */
  const outage = async (t: Test, setup?: (app: Awaited<ReturnType<typeof buildApp>>) => void): Promise<{
    app: Awaited<ReturnType<typeof buildApp>>, cookie: string, sink: ReturnType<typeof logSink>
  }> => {
    const sink = logSink('info')
    const app = await buildApp({ store: 'redis', storeOptions: { url: server.url, timeout: 300, prefix: 'log:' } }, sink.logger, setup)
    app.get('/boom', async () => { throw new Error('a bug, not the store') })
    app.post('/save', async (req) => {
      req.session.set('name', 'x')
      await req.session.save() // fails: the reply is the 503, and onSend does not try again
      return { saved: true }
    })
    t.teardown(() => app.close())
    const cookie = cookieOf(await app.inject({ method: 'POST', url: '/login', payload: { user: 'alice' } })) as string
    await server.stop()
    t.teardown(() => server.start())
    t.equal((await app.inject({ url: '/me', headers: { cookie } })).statusCode, 503, 'the client knows the store is down')
    return { app, cookie, sink }
  }
  const flood = async (app: Awaited<ReturnType<typeof buildApp>>, cookie: string): Promise<Set<string>> => {
    const replies = new Set<string>()
    for (let i = 0; i < REQUESTS; i++) {
      const [method, url] = ([['GET', '/me'], ['GET', '/devices'], ['POST', '/counter'], ['POST', '/save']] as const)[i % 4] as ['GET' | 'POST', string]
      const res = await app.inject({ method, url, headers: { cookie } })
      replies.add(`${res.statusCode} ${res.json().code as string}`)
    }
    return replies
  }
  const atLeast = (sink: ReturnType<typeof logSink>, level: number): Array<Record<string, unknown>> => sink.lines.filter((l) => (l.level as number) >= level)

  t.test('without it: Fastify logs one error line per 503 (the flood)', async (t) => {
    const { app, cookie, sink } = await outage(t)
    t.same([...await flood(app, cookie)], ['503 FST_SESSION_STORE_UNAVAILABLE'])
    t.ok(atLeast(sink, 50).length > REQUESTS, `${atLeast(sink, 50).length} error lines for ${REQUESTS} requests`)
  })

  t.test('with sessionErrorHandler(): every 503 still answered, a few warnings, no error line', async (t) => {
    const { app, cookie, sink } = await outage(t, (app) => app.setErrorHandler(sessionErrorHandler()))
    t.same([...await flood(app, cookie)], ['503 FST_SESSION_STORE_UNAVAILABLE'], 'every client gets the typed 503')
    const res = await app.inject({ url: '/me', headers: { cookie } })
    t.match(res.json(), { statusCode: 503, code: 'FST_SESSION_STORE_UNAVAILABLE', error: 'Service Unavailable', message: /^Session store unavailable: the Redis connection is down/ }, 'the body Fastify would send')
    t.same(atLeast(sink, 50), [], 'no error-level line')
    const warnings = atLeast(sink, 40)
    t.ok(warnings.length <= 3, `${warnings.length} warning lines for ${REQUESTS + 2} requests`)
    t.comment(warnings.map((l) => l.msg as string).join(' | '))
    t.match(warnings.find((l) => (l.msg as string).startsWith('session store unavailable: answering 503')), { since: 1, err: { code: 'FST_SESSION_STORE_UNAVAILABLE' } })
    const boom = await app.inject({ url: '/boom' })
    t.equal(boom.statusCode, 500, 'other errors go on to Fastify\'s default handler')
    t.same(atLeast(sink, 50).map((l) => l.msg), ['a bug, not the store'], 'which logs them as before')
  })

  t.test('the interval counts what it folded; other errors go to the app\'s own handler', async (t) => {
    let mine = 0
    const { app, cookie, sink } = await outage(t, (app) => app.setErrorHandler(sessionErrorHandler(async function (error, _request, reply) {
      mine++
      t.equal(this, app, 'called with the app as this, as Fastify does')
      return await reply.code(500).send({ mine: error.message })
    }, { interval: 0 })))
    await flood(app, cookie)
    t.equal(atLeast(sink, 40).filter((l) => l.since === 1).length, REQUESTS + 1, 'interval 0: a warning per 503, each counting one')
    t.same((await app.inject({ url: '/boom' })).json(), { mine: 'a bug, not the store' })
    t.equal(mine, 1)
  })

  t.test('a request in flight when the store goes down: its failed save() is not tried again by onSend', async (t) => {
    const sink = logSink('info')
    const app = await buildApp({ store: 'redis', storeOptions: { url: server.url, timeout: 300, prefix: 'inflight:' } }, sink.logger,
      (app) => app.setErrorHandler(sessionErrorHandler()))
    app.post('/save-in-flight', async (req) => {
      req.session.get('name') // loaded while Redis was up
      await server.stop()
      req.session.set('name', 'y')
      await req.session.save()
      return { saved: true }
    })
    t.teardown(() => app.close())
    const cookie = cookieOf(await app.inject({ method: 'POST', url: '/login', payload: { user: 'bob' } })) as string
    t.teardown(() => server.start())
    const res = await app.inject({ method: 'POST', url: '/save-in-flight', headers: { cookie } })
    t.equal(res.statusCode, 503)
    t.equal(res.json().code, 'FST_SESSION_STORE_UNAVAILABLE')
    t.same(atLeast(sink, 50), [], 'the 5xx reply saves nothing, so no second failure reaches Fastify\'s default handler')
  })

  t.test('isStoreUnavailable and the checks of sessionErrorHandler', async (t) => {
    t.equal(isStoreUnavailable({ code: 'FST_SESSION_STORE_NOT_REPLICATED' }), true)
    t.equal(isStoreUnavailable(new Error('x')), false)
    t.equal(isStoreUnavailable(null), false)
    t.throws(() => sessionErrorHandler('x' as never), { code: 'FST_SESSION_OPTION_INVALID', message: /sessionErrorHandler\(next\)/ })
    for (const interval of [-1, Number.NaN, Infinity]) {
      t.throws(() => sessionErrorHandler(undefined, { interval }), { code: 'FST_SESSION_OPTION_INVALID', message: /sessionErrorHandler\.interval/ })
    }
  })
}
