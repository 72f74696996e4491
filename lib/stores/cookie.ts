import { pickAead, type AeadName } from '../crypto/aead.js'
import { knownKeys, optionsObject } from '../util/check.js'
import { FST_SESSION_SECRET_INVALID, FST_SESSION_STORE_INVALID } from '../errors.js'
import { isLegacyId, isSessionId, tagOf } from '../crypto/ids.js'
import { parseValue } from '../util/json.js'
import { Sealer } from '../crypto/seal.js'
import { resolveRevocation, type RevocationOption } from './revocation/memory.js'
import type { RevocationStore, SealedSession, StatelessStore, StoreContext } from './store.js'

// The cookie store, after Plug.Session's `:cookie`: the whole session travels in the cookie,
// sealed (lib/crypto/seal.ts), as a JSON array:
//
//   [id, userId | null, createdAt, expiresAt, absoluteAt, authenticatedAt | null, generation, data, policy?]
//
// (`policy`, the session's own settings from login(), only when it has any.)
//
// read back with prototype-poisoning protection and checked field by field. The deadlines are
// checked by the plugin on its own clock; `revocation` (which the plugin requires) is what makes
// a logout or a "log out everywhere" stop copies of the cookie too.

export interface CookieStoreOptions {
  /**
   * Where revocations are kept, so that a logout, `app.sessions.delete` and `deleteAll` stop
   * copies of the cookie too: 'memory' (this process only, forgotten on restart),
   * `{ type: 'redis', client }` (shared by every instance), or a revocation store object.
   * Required by the plugin, which refuses the cookie store without it at register(). (Optional
   * here for a store built to seal and open only.) @default undefined
   */
  revocation?: RevocationOption
  /**
   * Who runs ChaCha20-Poly1305: `'auto'` takes `sodium-native` when the application has it
   * installed (an optional peer dependency; two to three times cheaper per cookie), else
   * node:crypto. `'sodium-native'` refuses to start without it; `'node:crypto'` never loads it.
   * Both give the same bytes, so processes with and without it share cookies. @default 'auto'
   */
  crypto?: 'auto' | AeadName
}

const STAND_IN: ReadonlyArray<string | Buffer> = Object.freeze([Buffer.alloc(32)])

function isTime (value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
}

/** The session in an opened payload, or undefined when any field is not what `seal` writes. */
function decode (plaintext: string): SealedSession | undefined {
  let value: unknown
  try {
    value = parseValue(plaintext)
  } catch {
    return undefined
  }
  if (!Array.isArray(value) || (value.length !== 8 && value.length !== 9)) return undefined
  const [id, userId, createdAt, expiresAt, absoluteAt, authenticatedAt, generation, data, policy] = value as unknown[]
  if (typeof id !== 'string' || !isSessionId(id)) return undefined
  // An anonymous id has no tag; a user's has one (none under a revocation store without an owner
  // key), and one of the format before 0.2, the user id in clear, is refused as unknown.
  if (userId === null ? tagOf(id) !== undefined : typeof userId !== 'string' || isLegacyId(id, userId)) return undefined
  if (!isTime(createdAt) || !isTime(expiresAt) || !isTime(absoluteAt) || createdAt > expiresAt || expiresAt > absoluteAt) return undefined
  if ((authenticatedAt !== null && !isTime(authenticatedAt)) || !isTime(generation)) return undefined
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return undefined
  if (value.length === 9 && typeof policy !== 'string') return undefined
  return {
    id,
    userId: (userId as string | null) ?? undefined,
    data: data as Record<string, unknown>,
    createdAt,
    expiresAt,
    absoluteAt,
    authenticatedAt: authenticatedAt ?? undefined,
    generation,
    ...(policy === undefined ? undefined : { policy: policy as string })
  }
}

export class CookieStore implements StatelessStore {
  readonly stateless = true
  readonly revocation: RevocationStore | undefined
  readonly #sealer: Sealer

  constructor (options: CookieStoreOptions, context: StoreContext) {
    optionsObject('storeOptions', options)
    knownKeys(options, ['revocation', 'crypto'], 'storeOptions.')
    const aead = pickAead(options.crypto ?? 'auto')
    const { cookieName, clock } = context
    let secrets = context.secrets
    if (secrets === undefined || secrets.length === 0) {
      const missing = new FST_SESSION_SECRET_INVALID('is required by the cookie store, which seals sessions with it')
      if (context.problems === undefined) throw missing
      // register() fails with it and the other problems: this stand-in never seals a cookie that is sent.
      context.problems.add(missing)
      secrets = STAND_IN
    }
    if (cookieName === undefined) throw new FST_SESSION_STORE_INVALID('the cookie store needs the cookie name in its context')
    this.#sealer = new Sealer(secrets, cookieName, clock, aead)
    this.revocation = resolveRevocation(options.revocation, context)
  }

  /** Who runs the cipher: 'sodium-native' or 'node:crypto' (the `crypto` option). */
  get crypto (): AeadName {
    return this.#sealer.aead
  }

  seal (session: SealedSession): string {
    const fields: unknown[] = [session.id, session.userId ?? null, session.createdAt, session.expiresAt,
      session.absoluteAt, session.authenticatedAt ?? null, session.generation, session.data]
    if (session.policy !== undefined) fields.push(session.policy)
    return this.#sealer.seal(JSON.stringify(fields))
  }

  open (value: string): { session: SealedSession, renew: boolean } | undefined {
    const opened = this.#sealer.open(value)
    if (opened === undefined) return undefined
    const session = decode(opened.plaintext)
    return session === undefined ? undefined : { session, renew: opened.renew }
  }

  /** The revocation store's check at the app's ready(), if it has one. */
  async ready (): Promise<void> {
    await this.revocation?.ready?.()
  }

  async close (): Promise<void> {
    await this.revocation?.close?.()
  }
}

export function cookieStore (options: CookieStoreOptions, context: StoreContext): CookieStore {
  return new CookieStore(options, context)
}
