import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto'
import t from 'tap'
import { runStatelessConformance, statelessConformanceCases } from '../../lib/conformance/index.js'
import { CookieStore, type SealedSession, type StatelessStore } from '../../lib/index.js'

// The stateless suite, against the cookie store with either cipher and a store written here,
// as a user would: AES-256-GCM over JSON, the cookie name as additional data.

for (const crypto of ['node:crypto', 'sodium-native'] as const) {
  t.test(`cookie store, ${crypto}`, async (t) => {
    runStatelessConformance((title, fn) => t.test(title, fn), {
      createStore: (context) => {
        const store = new CookieStore({ crypto, revocation: 'memory' }, context)
        t.equal(store.crypto, crypto)
        return store
      }
    })
  })
}

class GcmStore implements StatelessStore {
  readonly stateless = true
  readonly #keys: Buffer[]
  readonly #aad: Buffer

  constructor (secrets: ReadonlyArray<string | Buffer>, cookieName: string) {
    this.#keys = secrets.map((secret) => createHash('sha256').update(secret).digest())
    this.#aad = Buffer.from(cookieName)
  }

  seal (session: SealedSession): string {
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', this.#keys[0] as Buffer, iv).setAAD(this.#aad)
    const body = Buffer.concat([cipher.update(JSON.stringify({ ...session, userId: session.userId ?? null, authenticatedAt: session.authenticatedAt ?? null })), cipher.final()])
    return Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url')
  }

  open (value: string): { session: SealedSession, renew: boolean } | undefined {
    const bytes = Buffer.from(value, 'base64url')
    if (bytes.length < 28 || bytes.toString('base64url') !== value) return undefined
    for (const [i, key] of this.#keys.entries()) {
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, 12)).setAAD(this.#aad).setAuthTag(bytes.subarray(-16))
        const session = JSON.parse(Buffer.concat([decipher.update(bytes.subarray(12, -16)), decipher.final()]).toString()) as SealedSession
        return { session: { ...session, userId: session.userId ?? undefined, authenticatedAt: session.authenticatedAt ?? undefined }, renew: i > 0 }
      } catch {}
    }
    return undefined
  }
}

t.test('a user-written store', async (t) => {
  runStatelessConformance((title, fn) => t.test(title, fn), { createStore: (context) => new GcmStore(context.secrets, context.cookieName) })
})

t.test('statelessConformanceCases lists named cases', async (t) => {
  const cases = statelessConformanceCases({ createStore: (context) => new GcmStore(context.secrets, context.cookieName) })
  t.ok(cases.length >= 8)
  t.equal(new Set(cases.map((c) => c.name)).size, cases.length, 'names are unique')
  t.ok(cases.every((c) => /^[a-z-]+$/.test(c.name)))
})

t.test('a store that fails a case fails it, and is closed all the same', async (t) => {
  let closed = 0
  const leaky: StatelessStore = {
    stateless: true,
    seal: (session) => Buffer.from(JSON.stringify(session)).toString('base64url'),
    open: () => undefined,
    close: async () => { closed++ }
  }
  const roundtrip = statelessConformanceCases({ createStore: () => leaky }).find((c) => c.name === 'roundtrip')
  await t.rejects(roundtrip?.run() as Promise<void>)
  t.equal(closed, 1)
})
