import assert from 'node:assert/strict'
import { randomBytes, randomInt } from 'node:crypto'
import { caseClock, HOUR, MINUTE, silentLog, type ConformanceCase, type TestFunction } from './shared.js'
import { newOwnerKey, newSessionId, userTag } from '../crypto/ids.js'
import type { SealedSession, StatelessStore, StoreContext } from '../stores/store.js'

// The conformance suite of a stateless store (the whole session sealed into the cookie), in
// the style of runConformance:
//
//   runStatelessConformance(test, { createStore: (context) => new MyCookieStore(context) })

export interface StatelessConformanceOptions {
  /**
   * Builds a store on `context`: its `secrets` (newest first: the first seals, all open),
   * its `cookieName` and its `clock` (real time plus however far the case moved it). A case
   * builds several, with other secrets or another cookie name; `name` is unique per case.
   * The suite closes each store after the case.
   */
  createStore: (context: StoreContext & { secrets: ReadonlyArray<string | Buffer>, cookieName: string }, name: string) =>
    StatelessStore | Promise<StatelessStore>
}

interface StatelessFixture {
  /** A store on the case's clock; secrets: one of its own, cookie name: 'sid', unless given. */
  create: (secrets?: ReadonlyArray<string | Buffer>, cookieName?: string) => Promise<StatelessStore>
  /** A session to seal, valid for an hour on the case's clock. */
  make: (userId?: string, changes?: Partial<SealedSession>) => SealedSession
  /** Moves the case's clock forward. */
  tick: (ms: number) => void
}

const newKey = (): string => randomBytes(32).toString('base64url')
// RFC 6265's cookie-octet: printable ASCII but space, '"', ',', ';' and '\'.
const COOKIE_OCTETS = /^[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]+$/

/** Asserts that `store` opens `value` to `session`, sealed with its newest key or not (`renew`). */
function assertOpens (store: StatelessStore, value: string, session: SealedSession, renew = false): void {
  assert.deepEqual(store.open(value), { session, renew })
}

/** Values that differ from `value` in one place: each character changed, each truncation, appendices. */
function tampered (value: string): string[] {
  const out: string[] = []
  for (let i = 0; i < value.length; i++) {
    for (const c of value[i] === 'A' ? 'B.' : 'A.') {
      if (value[i] !== c) out.push(value.slice(0, i) + c + value.slice(i + 1))
    }
    out.push(value.slice(0, i))
  }
  out.push(value + 'A', value + '.', value + '=', value + ' ', ' ' + value, value + value, value.toLowerCase(), value.toUpperCase())
  return out.filter((v) => v !== value)
}

function randomString (alphabet: string, length: number): string {
  let s = ''
  for (let i = 0; i < length; i++) s += alphabet[randomInt(alphabet.length)]
  return s
}

type Body = (f: StatelessFixture) => Promise<void>

const cases: Array<[name: string, title: string, body: Body]> = [
  ['roundtrip', 'seal then open gives the session back, bound or anonymous, with unicode and nested data, with its own settings (policy) or none', async ({ create, make }) => {
    const store = await create()
    assert.equal(store.stateless, true)
    const bound = make('alice', { data: { s: 'é ✓ 😀', n: 1.5, b: false, z: null, list: [1, 'two', { three: 3 }], 'a:b.c': { d: [] } }, generation: 7 })
    const anonymous = make(undefined, { data: {}, authenticatedAt: undefined })
    const own = make('alice', { policy: 's.t600.a3600' })
    for (const session of [bound, anonymous, own]) {
      const value = store.seal(session)
      assert.equal(typeof value, 'string')
      assert.match(value, COOKIE_OCTETS, 'a cookie value as it is, without encoding')
      assertOpens(store, value, session)
      assert.notEqual(store.seal(session), value, 'each seal is a new value')
    }
  }],
  ['clock', 'a value still opens after the clock moved on (deadlines are the plugin\'s to check)', async ({ create, make, tick }) => {
    const store = await create()
    const session = make('alice', { expiresAt: Date.now() + 3 * HOUR })
    const value = store.seal(session)
    tick(90 * MINUTE)
    assertOpens(store, value, session)
    assertOpens(await create(), value, session, false)
    assertOpens(store, store.seal(session), session)
  }],
  ['tampered', 'open refuses, without throwing, every changed, cut, lengthened or spliced value', async ({ create, make }) => {
    const store = await create()
    const a = store.seal(make('alice'))
    const b = store.seal(make('bob', { data: { other: 'x'.repeat(40) } }))
    for (const value of tampered(a)) assert.equal(store.open(value), undefined, JSON.stringify(value))
    for (let i = 1; i < Math.min(a.length, b.length); i++) {
      for (const spliced of [a.slice(0, i) + b.slice(i), b.slice(0, i) + a.slice(i)]) {
        if (spliced !== a && spliced !== b) assert.equal(store.open(spliced), undefined, JSON.stringify(spliced))
      }
    }
  }],
  ['garbage', 'open refuses, without throwing, empty, random and oversized strings', async ({ create, make }) => {
    const store = await create()
    const value = store.seal(make('alice'))
    const base64url = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    const junk = ['', '.', '..', 'v1.', 'v2.', 'undefined', 'null', '[]', '{}', '%', '\u0000', '😀', 'x'.repeat(100_000)]
    for (let i = 0; i < 200; i++) {
      const length = randomInt(1, 400)
      junk.push(randomString(base64url, length), randomString(base64url + '.=+/ %;"\\\u0000é😀', length),
        value.slice(0, randomInt(value.length)) + randomString(base64url, length), randomBytes(length).toString('latin1'))
    }
    for (const j of junk) assert.equal(store.open(j), undefined, JSON.stringify(j.slice(0, 80)))
  }],
  ['rotation', 'after a key rotation, old values open with renew: true; without the old key, not at all', async ({ create, make }) => {
    const older = newKey()
    const newer = newKey()
    const before = await create([older])
    const during = await create([newer, older])
    const after = await create([newer])
    const session = make('alice')
    const old = before.seal(session)
    assertOpens(during, old, session, true)
    assert.equal(after.open(old), undefined, 'the old key is gone')
    const fresh = during.seal(session)
    assertOpens(during, fresh, session)
    assertOpens(after, fresh, session)
    assert.equal(before.open(fresh), undefined, 'sealed with the newest key')
    const buffers = await create([Buffer.from(newer), Buffer.from(older)])
    assertOpens(buffers, old, session, true)
    assertOpens(buffers, fresh, session)
  }],
  ['secret', 'a store with another secret opens nothing of this one', async ({ create, make }) => {
    const value = (await create()).seal(make('alice'))
    assert.equal((await create([newKey()])).open(value), undefined)
  }],
  ['cookie-name', 'a value sealed for one cookie name does not open under another', async ({ create, make }) => {
    const secrets = [newKey()]
    const session = make('alice')
    const value = (await create(secrets, 'sid')).seal(session)
    for (const other of ['other', 'sid2', 'SID', '__Host-sid']) assert.equal((await create(secrets, other)).open(value), undefined, other)
    assertOpens(await create(secrets, 'sid'), value, session)
  }],
  ['size', 'a large session still seals to a string that opens (the plugin refuses a Set-Cookie over 4096 bytes)', async ({ create, make }) => {
    const store = await create()
    const data: Record<string, unknown> = { big: 'é'.repeat(20_000) }
    for (let i = 0; i < 500; i++) data['k' + i] = { i, list: [i, String(i)] }
    const session = make('alice', { data })
    const value = store.seal(session)
    assert.equal(typeof value, 'string')
    assert.ok(value.length > 4096)
    assertOpens(store, value, session)
  }],
  ['no-plaintext', 'the value holds none of the session data, in plain text or base64url', async ({ create, make }) => {
    const store = await create()
    const data = { profile: { name: 'Zoë Conformance', tags: ['alpha', 'beta'], note: 'the quick brown fox jumps over' } }
    const session = make('alice', { data })
    const value = store.seal(session)
    const plain = JSON.stringify(data)
    assert.ok(!value.includes('Conformance') && !value.includes('profile'), 'not in plain text')
    for (let shift = 0; shift < 3; shift++) {
      const encoded = Buffer.from(plain.slice(shift)).toString('base64url').slice(4, 24)
      assert.ok(!value.includes(encoded), `not in base64url (alignment ${shift})`)
    }
    for (const part of value.split(/[^A-Za-z0-9_-]/)) {
      assert.doesNotMatch(Buffer.from(part, 'base64url').toString('latin1'), /profile|Conformance/, 'not only encoded')
    }
  }],
  ['close-twice', 'close() twice is harmless (the suite closes the store once more after the case)', async ({ create }) => {
    const store = await create()
    await store.close?.()
    await store.close?.()
  }]
]

/** Sealed ids are tagged with the revocation store's owner key; a stateless store only checks that a user's id has a tag. */
const CASE_OWNER_KEY = newOwnerKey()

async function withFixture (options: StatelessConformanceOptions, name: string, body: Body): Promise<void> {
  const { now, tick } = caseClock()
  const stores: StatelessStore[] = []
  const defaultSecrets = [newKey()]
  const create = async (secrets: ReadonlyArray<string | Buffer> = defaultSecrets, cookieName = 'sid'): Promise<StatelessStore> => {
    const store = await options.createStore({ clock: now, log: silentLog, maxSessionsPerUser: 100, secrets, cookieName }, name)
    stores.push(store)
    return store
  }
  const make = (userId?: string, changes: Partial<SealedSession> = {}): SealedSession => {
    const time = now()
    return {
      id: newSessionId(userId === undefined ? undefined : userTag(CASE_OWNER_KEY, userId)),
      userId,
      data: { n: 1 },
      createdAt: time,
      expiresAt: time + HOUR,
      absoluteAt: time + 24 * HOUR,
      authenticatedAt: userId === undefined ? undefined : time,
      generation: 0,
      ...changes
    }
  }
  try {
    await body({ create, make, tick })
  } finally {
    for (const store of stores) await store.close?.()
  }
}

/** The cases of the stateless suite, each with stores of its own, for any test runner. */
export function statelessConformanceCases (options: StatelessConformanceOptions): ConformanceCase[] {
  return cases.map(([name, title, body]) => ({ name, title, run: () => withFixture(options, name, body) }))
}

/** Registers every case of the stateless suite with `test(title, fn)`, as `runConformance` does. */
export function runStatelessConformance (test: TestFunction, options: StatelessConformanceOptions): void {
  for (const c of statelessConformanceCases(options)) test(c.title, c.run)
}
