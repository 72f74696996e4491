import fastifyFlash from '@fastify/flash'
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import fastifyUserSessions, { type SessionStore } from '../../lib/index.js'
import { cookieOf, SECRET } from '../helpers/app.js'
import { countedStore, onEachStore, writesOf } from '../helpers/stores.js'

// @fastify/flash 6 calls session.set('flash', ...) on every reply.flash(), even with nothing
// pending: a set of a value equal as JSON to the current one is no change, so such a page
// costs no store write and sends no cookie.

async function flashApp (store: SessionStore): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(fastifyUserSessions, { secret: SECRET, store })
  await app.register(fastifyFlash)
  app.post('/save', async (request) => {
    request.flash('info', 'Saved')
    return { ok: true }
  })
  app.get('/page', async (_request, reply) => ({ messages: reply.flash() }))
  app.get('/theme', async (request) => {
    request.session.set('theme', 'dark')
    request.session.set('prefs', { lang: 'en', tags: ['a'] })
    return { ok: true }
  })
  return app
}

onEachStore(t, 'a page that renders flash messages writes nothing when none is pending', async (t, options) => {
  const store = countedStore(options)
  const app = await flashApp(store)
  t.teardown(() => app.close())
  const cookie = cookieOf(await app.inject({ method: 'POST', url: '/save' })) as string
  t.equal(writesOf(store), 1, 'flashing a message stores the session')
  const shown = await app.inject({ url: '/page', headers: { cookie } })
  t.same(shown.json(), { messages: { info: ['Saved'] } })
  t.equal(writesOf(store), 2, 'showing it clears it: one write')
  for (let i = 0; i < 3; i++) {
    const page = await app.inject({ url: '/page', headers: { cookie } })
    t.same(page.json(), { messages: {} })
    t.equal(cookieOf(page), undefined, 'no cookie')
  }
  t.equal(writesOf(store), 2, 'nothing pending: no store write')
  await app.inject({ method: 'POST', url: '/save', headers: { cookie } })
  t.equal(writesOf(store), 3, 'a new message is a change')
  t.same((await app.inject({ url: '/page', headers: { cookie } })).json(), { messages: { info: ['Saved'] } })
})

onEachStore(t, 'setting the same values on every request writes once', async (t, options) => {
  const store = countedStore(options)
  const app = await flashApp(store)
  t.teardown(() => app.close())
  const cookie = cookieOf(await app.inject({ url: '/theme' })) as string
  const before = writesOf(store)
  for (let i = 0; i < 3; i++) t.equal(cookieOf(await app.inject({ url: '/theme', headers: { cookie } })), undefined)
  t.equal(writesOf(store), before, 'no write, no refresh')
})
