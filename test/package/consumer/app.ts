// A TypeScript app using the package, compiled by test/package/consumers.test.ts in a consumer
// project that installed the packed package: as index.ts with `module: commonjs` (resolution
// node10, which reads `types` and `typesVersions`, not `exports`), and with `module: nodenext` as
// esm.mts (an ES module) and cjs.cts (CommonJS, require() of the package). Then each output runs.
import assert from 'node:assert/strict'
import Fastify from 'fastify'
import fastifyUserSessions, {
  MemoryStore, Session, errors, type FastifyUserSessionsOptions, type SessionRecord, type SessionStore
} from 'fastify-user-sessions'
import { conformanceCases, type ConformanceOptions } from 'fastify-user-sessions/conformance'

declare module 'fastify-user-sessions' {
  interface SessionData {
    visits: number
  }
}

async function main (): Promise<void> {
  const app = Fastify()
  const options: FastifyUserSessionsOptions = { store: 'memory', ttl: 3600 }
  await app.register(fastifyUserSessions, options)
  app.post('/login', async (request) => {
    await request.session.login('ada')
    request.session.set('visits', 1)
    return { ok: request.session instanceof Session }
  })
  app.get('/me', async (request) => {
    const visits: number | undefined = request.session.get('visits')
    return { user: request.session.userId, visits }
  })
  const login = await app.inject({ method: 'POST', url: '/login' })
  assert.deepEqual(login.json(), { ok: true })
  const cookie = login.cookies[0]
  assert.ok(cookie !== undefined)
  const me = await app.inject({ url: '/me', cookies: { [cookie.name]: cookie.value } })
  assert.deepEqual(me.json(), { user: 'ada', visits: 1 })
  const records: SessionRecord[] = await app.sessions.getAll('ada')
  assert.equal(records.length, 1)
  await app.close()
  assert.equal(new errors.FST_SESSION_OPTION_INVALID('x', 'y').code, 'FST_SESSION_OPTION_INVALID')

  const conformance: ConformanceOptions = { createStore: (context): SessionStore => new MemoryStore({}, context), manySessions: 100 }
  const cases = conformanceCases(conformance)
  for (const c of cases) await c.run()
  process.stdout.write(JSON.stringify({ ok: true, node: process.version, cases: cases.length }) + '\n')
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`)
  process.exitCode = 1
})
