import session from 'express-session'
import t, { type Test } from 'tap'
import type { FastifyUserSessionsOptions } from '../../lib/index.js'
import { newOwnerKey, userTag } from '../../lib/crypto/ids.js'
import { buildApp, cookieOf } from '../helpers/app.js'
import { testDatabase } from '../helpers/postgres.js'
import { redisCluster, redisServer } from '../helpers/redis.js'

// Issue 21, "Done when": session ids, cookies and bearer tokens are meaningless (OWASP Session
// Management Cheat Sheet, "Session ID Content (or Value)"). An e-mail user logs in on every store,
// with a cookie and with a bearer token, and the user id is in none of the cookie, the token,
// the session id or the ids getAll lists: not in clear, nor in base64, base64url or hex, at any
// alignment. SECURITY.md names this file.

const USER = 'alice.liddell@example.com'

/** Every way `userId` (or a run of 3 or more of its bytes at any alignment) could be spelled in a credential. */
function spellings (userId: string): string[] {
  const bytes = Buffer.from(userId, 'utf8')
  const out = new Set<string>([userId, userId.toLowerCase(), encodeURIComponent(userId), bytes.toString('hex'), bytes.toString('hex').toUpperCase()])
  // base64 of the id starting at each of the 3 alignments of a larger stream: the characters
  // that depend on nothing but the id's own bytes, i.e. all but the last group.
  for (let skip = 0; skip < 3; skip++) {
    for (const encoding of ['base64', 'base64url'] as const) {
      const text = bytes.subarray(skip).toString(encoding).replace(/=+$/, '')
      out.add(text.slice(0, Math.floor((bytes.length - skip) / 3) * 4))
    }
  }
  return [...out].filter((s) => s.length >= 4)
}

function revealsNobody (t: Test, what: string, value: string): void {
  const found = spellings(USER).filter((s) => value.includes(s) || decodeURIComponent(value).includes(s))
  t.same(found, [], `${what} holds no spelling of the user id`)
}

interface Target { name: string, options: () => Promise<Partial<FastifyUserSessionsOptions> | undefined>, bearer: boolean }

const targets: Target[] = [
  { name: 'memory', options: async () => ({ store: 'memory' }), bearer: true },
  {
    name: 'redis',
    options: async () => {
      const server = await redisServer(t)
      return server === undefined ? undefined : { store: 'redis', storeOptions: { url: server.url, prefix: 'content:' } }
    },
    bearer: true
  },
  {
    name: 'redis cluster',
    options: async () => {
      const cluster = await redisCluster(t)
      if (cluster === undefined) return undefined
      const client = cluster.client()
      t.teardown(() => client.disconnect())
      return { store: 'redis', storeOptions: { client, prefix: 'content:' } }
    },
    bearer: true
  },
  {
    name: 'postgres',
    options: async () => {
      const db = await testDatabase(t)
      return db.skip !== false ? undefined : { store: 'postgres', storeOptions: db.options() }
    },
    bearer: true
  },
  { name: 'connect adapter', options: async () => ({ store: 'express', storeOptions: { store: new session.MemoryStore() } }), bearer: true },
  { name: 'cookie, memory revocation', options: async () => ({ store: 'cookie', storeOptions: { revocation: 'memory' } }), bearer: false },
  {
    name: 'cookie, redis revocation',
    options: async () => {
      const server = await redisServer(t)
      return server === undefined ? undefined : { store: 'cookie', storeOptions: { revocation: { type: 'redis', url: server.url, prefix: 'content-rv:' } } }
    },
    bearer: false
  }
]

for (const target of targets) {
  t.test(`${target.name}: an e-mail user's cookie, token, session ids and getAll ids reveal nobody`, async (t) => {
    const options = await target.options()
    if (options === undefined) return
    const app = await buildApp({ ...options, ...(target.bearer ? { bearer: true } : {}) }, false, (app) => {
      app.post<{ Body: { user: string } }>('/api/login', async (req) => {
        await req.session.login(req.body.user, { transport: 'bearer' })
        return { id: req.session.id, token: req.session.token }
      })
    })
    t.teardown(() => app.close())
    const login = await app.inject({ method: 'POST', url: '/login', payload: { user: USER } })
    t.equal(login.statusCode, 200)
    const cookie = cookieOf(login) as string
    revealsNobody(t, 'the cookie', cookie)
    revealsNobody(t, 'the session id', login.json().id as string)
    t.equal((await app.inject({ url: '/me', headers: { cookie } })).json().userId, USER, 'the session is the user\'s all the same')
    const ids = [login.json().id as string]
    if (target.bearer) {
      const api = await app.inject({ method: 'POST', url: '/api/login', payload: { user: USER } })
      const { id, token } = api.json() as { id: string, token: string }
      revealsNobody(t, 'the bearer token', token)
      revealsNobody(t, 'the bearer session\'s id', id)
      t.equal((await app.inject({ url: '/me', headers: { authorization: `Bearer ${token}` } })).json().userId, USER)
      ids.push(id)
    }
    if (!options.store?.toString().startsWith('cookie')) {
      const listed = (await app.sessions.getAll(USER)).map((s) => s.id)
      t.same(listed.sort(), ids.sort(), 'getAll lists them')
      for (const id of listed) revealsNobody(t, 'an id getAll lists', id)
      const devices = await app.inject({ url: '/devices', headers: { cookie } })
      revealsNobody(t, 'the ids on the devices route', JSON.stringify(devices.json().map((s: { id: string }) => s.id)))
      t.equal(await app.sessions.delete(ids[0] as string, USER), true, 'delete(id, userId) still knows whose it is')
      t.equal(await app.sessions.delete(ids[1] as string, 'bob@example.com'), false, 'and that it is not another user\'s')
    }
  })
}

t.test('spellings: the check would see the user id in any of the encodings it covers', async (t) => {
  const inside = (s: string): string => 'x' + s + '.AAAA'
  for (const skip of [0, 1, 2]) {
    const stream = Buffer.concat([Buffer.alloc(skip, 1), Buffer.from(USER)])
    for (const encoding of ['base64', 'base64url', 'hex'] as const) {
      const value = inside(stream.toString(encoding))
      t.ok(spellings(USER).some((s) => value.includes(s)), `${encoding} after ${skip} byte(s)`)
    }
  }
  t.ok(spellings(USER).some((s) => inside(USER).includes(s)), 'in clear')
})

t.test('two user ids one character apart get unrelated tags', async (t) => {
  const key = newOwnerKey()
  const pairs = [[USER, 'alice.liddell@example.con'], [USER, 'blice.liddell@example.com'], ['1000', '1001'], ['a', 'b']]
  for (const [a, b] of pairs as Array<[string, string]>) {
    const [x, y] = [Buffer.from(userTag(key, a), 'base64url'), Buffer.from(userTag(key, b), 'base64url')]
    let bits = 0
    for (let i = 0; i < x.length; i++) bits += [...((x[i] as number) ^ (y[i] as number)).toString(2)].filter((c) => c === '1').length
    // 128 bits, half of them expected to differ (64, standard deviation 5.7): 36 to 92 is 5 deviations.
    t.ok(bits >= 36 && bits <= 92, `${a} / ${b}: ${bits} of 128 bits differ`)
    t.not(userTag(key, a).slice(0, 4), userTag(key, b).slice(0, 4), 'not even their first characters alike')
  }
  t.not(userTag(newOwnerKey(), USER), userTag(key, USER), 'another store (another owner key): another tag')
})
