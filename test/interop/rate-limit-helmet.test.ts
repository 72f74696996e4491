import helmet from '@fastify/helmet'
import rateLimit from '@fastify/rate-limit'
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import fastifyUserSessions from '../../lib/index.js'
import { cookieOf, SECRET } from '../helpers/app.js'
import { countedStore, onEachStore, writesOf, type StoreOptions } from '../helpers/stores.js'

// docs/plugins.md's snippets for @fastify/rate-limit on the login route and @fastify/helmet.

async function app (store: StoreOptions): Promise<{ app: FastifyInstance, store: ReturnType<typeof countedStore> }> {
  const counted = countedStore(store)
  const app = Fastify()
  await app.register(helmet)
  await app.register(fastifyUserSessions, { secret: SECRET, store: counted })
  await app.register(rateLimit, { global: false })
  app.post<{ Body: { user: string, password: string } }>('/login', {
    config: { rateLimit: { max: 3, timeWindow: '1 minute' } }
  }, async (request, reply) => {
    if (request.body.password !== 'right') return await reply.code(401).send({ error: 'bad credentials' })
    await request.session.login(request.body.user)
    return { ok: true }
  })
  app.get('/me', async (request) => ({ userId: request.session.userId ?? null }))
  return { app, store: counted }
}

onEachStore(t, '@fastify/rate-limit on the login route: the 4th attempt in a minute is a 429, and writes nothing', async (t, options) => {
  const { app: a, store } = await app(options)
  t.teardown(() => a.close())
  for (let i = 0; i < 2; i++) {
    t.equal((await a.inject({ method: 'POST', url: '/login', payload: { user: 'alice', password: 'wrong' } })).statusCode, 401)
  }
  const ok = await a.inject({ method: 'POST', url: '/login', payload: { user: 'alice', password: 'right' } })
  t.equal(ok.statusCode, 200)
  const cookie = cookieOf(ok) as string
  const writes = writesOf(store)
  const limited = await a.inject({ method: 'POST', url: '/login', headers: { cookie }, payload: { user: 'alice', password: 'right' } })
  t.equal(limited.statusCode, 429)
  t.equal(cookieOf(limited), undefined)
  t.equal(writesOf(store), writes, 'a throttled login writes nothing')
  t.same((await a.inject({ url: '/me', headers: { cookie } })).json(), { userId: 'alice' }, 'other routes are not limited')
})

t.test('@fastify/helmet: its headers and the session cookie, with Cache-Control: no-store', async (t) => {
  const { app: a } = await app({ store: 'memory' })
  t.teardown(() => a.close())
  const res = await a.inject({ method: 'POST', url: '/login', payload: { user: 'bob', password: 'right' } })
  t.equal(res.headers['x-content-type-options'], 'nosniff')
  t.match(res.headers['content-security-policy'], /default-src 'self'/)
  t.equal(res.headers['cache-control'], 'no-store')
  t.match(res.cookies.find((c) => c.name === 'sid'), { httpOnly: true, sameSite: 'Lax', path: '/' })
  t.same((await a.inject({ url: '/me', headers: { cookie: cookieOf(res) } })).json(), { userId: 'bob' })
})
