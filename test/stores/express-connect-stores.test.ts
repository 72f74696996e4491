import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import session from 'express-session'
import memorystore from 'memorystore'
import sessionFileStore from 'session-file-store'
import t, { type Test } from 'tap'
import { fromExpressStore, type ExpressStoreLike } from '../../lib/index.js'
import { buildApp, cookieOf } from '../helpers/app.js'

// More real connect stores from npm behind the 'express' adapter: session-file-store (files;
// a missing session is an ENOENT error, which means "no session", as in express-session) and
// memorystore (an LRU with all()). Each: login, read, per-user operations where the store has
// all(), logout, and a restart of the app on the same store.

const FileStore = sessionFileStore(session)
const LruStore = memorystore(session)

/** Login, reads and a change, then a new app on `reopen()` (the same store): the session is still there. */
async function throughRestart (t: Test, open: () => ExpressStoreLike, user: string): Promise<string> {
  const app = await buildApp({ store: 'express', storeOptions: { store: open() } })
  const login = await app.inject({ method: 'POST', url: '/login', payload: { user } })
  t.equal(login.statusCode, 200, 'login (the new id is looked up first: missing, not an error)')
  const cookie = cookieOf(login) as string
  t.equal((await app.inject({ method: 'POST', url: '/counter', headers: { cookie } })).json().counter, 1)
  t.match((await app.inject({ url: '/me', headers: { cookie } })).json(), { userId: user, name: user })
  const unknown = await app.inject({ url: '/me', headers: { cookie: 'sid=' + (cookie.slice(4, -5) + 'AAAAA') } })
  t.match(unknown.json(), { userId: null }, 'a forged cookie is no session')
  await app.close()

  const restarted = await buildApp({ store: fromExpressStore(open()) })
  t.teardown(() => restarted.close())
  t.match((await restarted.inject({ url: '/me', headers: { cookie } })).json(), { userId: user, name: user }, 'the session survives a restart')
  t.equal((await restarted.inject({ method: 'POST', url: '/counter', headers: { cookie } })).json().counter, 2)
  return cookie
}

t.test('session-file-store: files in a directory; no all(), so no per-user operations', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fus-file-store-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const open = (): ExpressStoreLike => new FileStore({ path: dir, retries: 0, reapInterval: -1, logFn: () => {} })
  const cookie = await throughRestart(t, open, 'alice')
  t.equal(readdirSync(dir).length, 2, 'two files: the anonymous session was never written, the login one and the owner key are')

  const app = await buildApp({ store: 'express', storeOptions: { store: open() } })
  t.teardown(() => app.close())
  await t.rejects(app.sessions.getAll('alice'), { code: 'FST_SESSION_STORE_UNSUPPORTED', statusCode: 501 })
  t.equal((await app.inject({ method: 'POST', url: '/logout', headers: { cookie } })).statusCode, 200)
  t.match((await app.inject({ url: '/me', headers: { cookie } })).json(), { userId: null }, 'logged out')
  t.same(readdirSync(dir), ['fastify-user-sessions-owner-key.json'], 'the file is gone; the owner key stays')
  t.equal(await app.sessions.delete('B'.repeat(22) + '.' + 'A'.repeat(22)), false, 'deleting a session without a file: ENOENT, none')
})

t.test('session-file-store with its default retries: a missing session is still "none"', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fus-file-store-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const app = await buildApp({ store: 'express', storeOptions: { store: new FileStore({ path: dir, reapInterval: -1, logFn: () => {} }) } })
  t.teardown(() => app.close())
  const login = await app.inject({ method: 'POST', url: '/login', payload: { user: 'carol' } })
  t.equal(login.statusCode, 200)
  t.match((await app.inject({ url: '/me', headers: { cookie: cookieOf(login) } })).json(), { userId: 'carol' })
})

t.test('memorystore: an LRU in process, with all(): devices, logout everywhere, restart on the same instance', async (t) => {
  const store = new LruStore({ checkPeriod: 86_400_000 })
  t.teardown(() => store.stopInterval())
  const cookie = await throughRestart(t, () => store, 'bob')
  const app = await buildApp({ store: fromExpressStore(store, { maxSessionsPerUser: 2 }) })
  t.teardown(() => app.close())
  const second = cookieOf(await app.inject({ method: 'POST', url: '/login', payload: { user: 'bob' } })) as string
  t.equal((await app.sessions.getAll('bob')).length, 2, 'getAll through all()')
  const third = cookieOf(await app.inject({ method: 'POST', url: '/login', payload: { user: 'bob' } })) as string
  t.equal((await app.sessions.getAll('bob')).length, 2, 'maxSessionsPerUser evicts the least recently used')
  t.match((await app.inject({ url: '/me', headers: { cookie } })).json(), { userId: null })
  t.same((await app.inject({ method: 'POST', url: '/logout-others', headers: { cookie: third } })).json(), { deleted: 1 })
  t.match((await app.inject({ url: '/me', headers: { cookie: second } })).json(), { userId: null })
  t.equal((await app.inject({ method: 'POST', url: '/logout', headers: { cookie: third } })).statusCode, 200)
  t.match((await app.inject({ url: '/me', headers: { cookie: third } })).json(), { userId: null }, 'logged out')
  t.same(await app.sessions.getAll('bob'), [])
  t.equal(await app.sessions.deleteAll('bob'), 0)
})

t.test('an ENOENT from get() is no session; other errors stay a 503', async (t) => {
  const inner = new session.MemoryStore()
  let code = 'ENOENT'
  const store: ExpressStoreLike = {
    get: (sid, cb) => inner.get(sid, (err, value) => {
      if (value === null || value === undefined) cb(Object.assign(new Error('no such file'), { code }))
      else cb(err, value)
    }),
    set: (sid, sess, cb) => inner.set(sid, sess as never, cb),
    destroy: (sid, cb) => inner.destroy(sid, cb)
  }
  const app = await buildApp({ store: 'express', storeOptions: { store } })
  t.teardown(() => app.close())
  const cookie = cookieOf(await app.inject({ method: 'POST', url: '/login', payload: { user: 'dan' } })) as string
  t.match((await app.inject({ url: '/me', headers: { cookie } })).json(), { userId: 'dan' })
  code = 'EACCES'
  const res = await app.inject({ method: 'POST', url: '/login', payload: { user: 'dan' } })
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'FST_SESSION_STORE_UNAVAILABLE')
})
