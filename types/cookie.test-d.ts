// Type tests of the cookie store, checked by `npm run test:types`: its options, the
// stateless store contract and the revocation store contract.
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import session, {
  CookieStore, cookieStore, MemoryRevocation, RedisRevocation, errors,
  type CookieStoreOptions, type RevocationOption, type RevocationStore, type SealedSession,
  type StatelessStore, type StoreContext
} from 'fastify-user-sessions'

declare const context: StoreContext

function expectType<T> (value: T): T { return value }

const app = Fastify()
await app.register(session, { secret: ['n'.repeat(32), 'o'.repeat(32)], store: 'cookie' })
await app.register(session, { secret: 'x'.repeat(32), store: 'cookie', storeOptions: { revocation: 'memory' } satisfies CookieStoreOptions })
await app.register(session, {
  secret: 'x'.repeat(32),
  store: 'cookie',
  storeOptions: { revocation: { type: 'redis', client: new Redis(), prefix: 'app:', timeout: 500 } } satisfies CookieStoreOptions
})
const options: CookieStoreOptions[] = [
  {},
  { revocation: { type: 'memory', maxEntries: 10_000, sweepInterval: 60_000 } },
  { revocation: { type: 'redis', url: 'redis://127.0.0.1:6379' } },
  { revocation: new MemoryRevocation({ type: 'memory' }, context) },
  { crypto: 'auto' },
  { crypto: 'sodium-native', revocation: 'memory' },
  { crypto: 'node:crypto' }
]
// @ts-expect-error crypto is 'auto', 'sodium-native' or 'node:crypto'
const badCrypto: CookieStoreOptions = { crypto: 'libsodium' }
// @ts-expect-error revocation is 'memory', a memory or redis configuration, or a revocation store
const bad: CookieStoreOptions = { revocation: 'postgres' }
// @ts-expect-error a redis revocation takes an ioredis client, not a url in `client`
const badClient: RevocationOption = { type: 'redis', client: 'redis://127.0.0.1' }
// @ts-expect-error maxEntries is a number
const badMemory: RevocationOption = { type: 'memory', maxEntries: '10' }

const store: StatelessStore = new CookieStore({ revocation: 'memory' }, context)
expectType<StatelessStore>(cookieStore({}, context))
expectType<RevocationStore | undefined>(store.revocation)
expectType<'sodium-native' | 'node:crypto'>(new CookieStore({}, context).crypto)
const sealed: string = store.seal({ id: 'i', userId: undefined, data: {}, createdAt: 0, expiresAt: 1, absoluteAt: 2, authenticatedAt: undefined, generation: 0 })
expectType<{ session: SealedSession, renew: boolean } | undefined>(store.open(sealed))
await app.register(session, { secret: 'x'.repeat(32), store })

class MyRevocation implements RevocationStore {
  async isRevoked (_id: string, _userId: string | undefined, _generation: number): Promise<boolean> { return false }
  async generation (_userId: string): Promise<number> { return 0 }
  async revoke (_id: string, _until: number): Promise<boolean> { return true }
  async revokeAll (_userId: string, _except: readonly string[], _until: number): Promise<void> {}
}
class MyStatelessStore implements StatelessStore {
  readonly stateless = true
  readonly revocation = new MyRevocation()
  seal (session: SealedSession): string { return JSON.stringify(session) }
  open (_value: string): { session: SealedSession, renew: boolean } | undefined { return undefined }
}
await app.register(session, { secret: 'x'.repeat(32), store: new MyStatelessStore() })
await app.register(session, { secret: 'x'.repeat(32), store: 'cookie', storeOptions: { revocation: new RedisRevocation({ type: 'redis', url: 'redis://x' }, context) } })
// @ts-expect-error a stateless store must open what it seals
await app.register(session, { secret: 'x'.repeat(32), store: { stateless: true, seal: () => '' } })

const tooLarge = new errors.FST_SESSION_COOKIE_TOO_LARGE(5000, 4096)
expectType<string>(tooLarge.code)
export { options, bad, badCrypto, badClient, badMemory }
