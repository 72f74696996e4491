'use strict'
// A CommonJS app using the package with require() (Node ≥ 22.12 loads an ES module so).
// test/package/consumers.test.ts runs it from a consumer project that installed the packed package.
const assert = require('node:assert/strict')
const Fastify = require('fastify')
const namespace = require('fastify-user-sessions')
const { fastifyUserSessions, MemoryStore, Session, errors, knownStores } = require('fastify-user-sessions')
const { conformanceCases, runConformance } = require('fastify-user-sessions/conformance')

async function signIn (plugin) {
  const app = Fastify()
  await app.register(plugin, { store: 'memory' })
  app.post('/login', async (request) => {
    await request.session.login('ada')
    request.session.set('visits', 1)
    return { ok: request.session instanceof Session }
  })
  app.get('/me', async (request) => ({ user: request.session.userId, visits: request.session.get('visits') }))
  const login = await app.inject({ method: 'POST', url: '/login' })
  assert.deepEqual(login.json(), { ok: true })
  const cookie = login.cookies[0]
  const me = await app.inject({ url: '/me', cookies: { [cookie.name]: cookie.value } })
  assert.deepEqual(me.json(), { user: 'ada', visits: 1 })
  assert.equal((await app.sessions.getAll('ada')).length, 1)
  await app.close()
}

async function main () {
  assert.equal(typeof namespace.default, 'function', 'the default export')
  assert.equal(namespace.default, fastifyUserSessions, 'the default export is the named one')
  assert.equal(namespace.__esModule, true, 'marked for transpiled code (__importDefault)')
  assert.equal(typeof MemoryStore, 'function')
  assert.equal(new errors.FST_SESSION_OPTION_INVALID('x', 'y').code, 'FST_SESSION_OPTION_INVALID')
  assert.ok(knownStores().includes('memory'))
  await signIn(namespace.default)
  await signIn(namespace) // the namespace as it is: Fastify takes its default export
  await assert.rejects(Fastify().register(fastifyUserSessions, { store: 'nowhere' }).ready(), { code: 'FST_SESSION_STORE_UNKNOWN' })

  // The conformance kit, on the built-in memory store.
  const options = { createStore: (context) => new MemoryStore({}, context), manySessions: 100 }
  const cases = conformanceCases(options)
  assert.ok(cases.length > 10)
  for (const c of cases) await c.run()
  const titles = []
  runConformance((title) => titles.push(title), options)
  assert.deepEqual(titles, cases.map((c) => c.title))
  process.stdout.write(JSON.stringify({ ok: true, node: process.version, cases: cases.length }) + '\n')
}

main().catch((err) => {
  process.stderr.write(`${err.stack}\n`)
  process.exitCode = 1
})
