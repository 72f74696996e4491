import { boolean, fail, knownKeys, nonEmptyString, oneOf, optionsObject, positiveInteger } from './util/check.js'
import { FST_SESSION_SECRET_INVALID } from './errors.js'
import type { CookieStoreOptions } from './stores/cookie.js'
import type { ExpressStoreOptions } from './stores/express.js'
import type { MemoryStoreOptions } from './stores/memory.js'
import type { PostgresStoreOptions } from './stores/postgres/store.js'
import type { RedisStoreOptions } from './stores/redis/store.js'
import type { SessionStore, StatelessStore } from './stores/store.js'

export interface SessionCookieOptions {
  /** @default '/' */
  path?: string
  /** @default undefined (host-only cookie) */
  domain?: string
  /** @default true */
  httpOnly?: boolean
  /** `'auto'`: Secure when the request came over https (honouring Fastify's trustProxy). @default 'auto' */
  secure?: boolean | 'auto'
  /** @default 'lax' */
  sameSite?: 'lax' | 'strict' | 'none'
  /** CHIPS partitioned cookie. @default false */
  partitioned?: boolean
  /** @default undefined */
  priority?: 'low' | 'medium' | 'high'
}

/**
 * The options type of each registered store name, so that `storeOptions` is checked against
 * the store chosen by `store`. A store you register joins it by augmentation:
 *
 * ```ts
 * declare module 'fastify-user-sessions' {
 *   interface StoreOptionsMap { mine: { path: string } }
 * }
 * registerStore('mine', (options: { path: string }, context) => new MyStore(options, context))
 * ```
 */
export interface StoreOptionsMap {
  memory: MemoryStoreOptions
  ets: MemoryStoreOptions
  cookie: CookieStoreOptions
  redis: RedisStoreOptions
  postgres: PostgresStoreOptions
  express: ExpressStoreOptions
}

/** The names of the registered stores: the built-in ones, and yours once added to `StoreOptionsMap`. */
export type StoreName = keyof StoreOptionsMap

/**
 * The store choice: a registered name with its own options, or a store object (which takes
 * none). A name held in a `string` (`process.env.STORE ?? 'memory'`) is accepted too, with the
 * options of any registered store; the store it names checks them at register(), and an
 * unknown name fails there with the list of the known ones.
 */
export type StoreSelection =
  | { [K in StoreName]: { store: K, storeOptions?: StoreOptionsMap[K] } }[StoreName]
  | { store?: undefined, storeOptions?: MemoryStoreOptions }
  | { store: SessionStore | StatelessStore, storeOptions?: undefined }
  // `string & {}` keeps the known names offered by editors.
  | { store: string & {}, storeOptions?: StoreOptionsMap[StoreName] }

export interface SessionOptions {
  /**
   * At least 32 bytes; or a list of them: the first seals, all open (key rotation). Required
   * by the cookie store, which seals sessions with it; server-side stores need none (the
   * cookie's 256-bit secret, checked against its hash in the store, authenticates it).
   * @default undefined
   */
  secret?: string | Buffer | ReadonlyArray<string | Buffer>
  /** @default 'sid' */
  cookieName?: string
  cookie?: SessionCookieOptions
  /** Idle timeout, in seconds. @default 86400 (1 day) */
  ttl?: number
  /** Lifetime cap, in seconds, whatever the activity. @default 2592000 (30 days) */
  absoluteTtl?: number
  /** Extend the idle deadline on activity. @default true */
  rolling?: boolean
  /**
   * The idle deadline is pushed back (one store write, one Set-Cookie) only once this fraction
   * of `ttl` has passed since the last push, so that reads stay reads. @default 0.1
   */
  refreshFraction?: number
  /** Most concurrent sessions per user; one more login evicts the user's least recently used. @default 100 */
  maxSessionsPerUser?: number
  /** Record the client's IP and User-Agent when a session is created (for a devices page). @default true */
  trackClient?: boolean
  /**
   * Accept `Authorization: Bearer <token>` as the session credential, for API clients (mobile
   * apps, CLIs) that keep no cookies: `login(id, { transport: 'bearer' })` issues the token
   * (`request.session.token`). A request with a bearer token never reads nor sets the session
   * cookie. Needs a server-side store. @default false
   */
  bearer?: boolean
  /** Clock in milliseconds since the epoch; for tests. @default Date.now */
  clock?: () => number
}

/**
 * The plugin's options. `store` is a registered name ('memory', 'ets', 'cookie', 'redis',
 * 'postgres', 'express', or one of yours, see `StoreOptionsMap`) or a store object;
 * `storeOptions` is handed to that store alone. @default { store: 'memory' }
 */
export type FastifyUserSessionsOptions = SessionOptions & StoreSelection

export interface NormalizedCookieOptions {
  readonly path: string
  readonly domain: string | undefined
  readonly httpOnly: boolean
  readonly secure: boolean | 'auto'
  readonly sameSite: 'lax' | 'strict' | 'none'
  readonly partitioned: boolean
  readonly priority: 'low' | 'medium' | 'high' | undefined
}

export interface NormalizedOptions {
  readonly secrets: ReadonlyArray<string | Buffer>
  readonly store: string | SessionStore | StatelessStore
  readonly storeOptions: object
  readonly cookieName: string
  readonly cookie: NormalizedCookieOptions
  readonly ttl: number
  readonly absoluteTtl: number
  readonly rolling: boolean
  readonly refreshFraction: number
  readonly maxSessionsPerUser: number
  readonly trackClient: boolean
  readonly bearer: boolean
  readonly clock: () => number
}

const MIN_SECRET_LENGTH = 32
const DEFAULT_TTL = 86_400 // 1 day
const DEFAULT_ABSOLUTE_TTL = 2_592_000 // 30 days
// RFC 6265 cookie-name: a token, no separators.
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const OPTION_KEYS = ['secret', 'store', 'storeOptions', 'cookieName', 'cookie', 'ttl', 'absoluteTtl',
  'rolling', 'refreshFraction', 'maxSessionsPerUser', 'trackClient', 'bearer', 'clock'] as const
const COOKIE_KEYS = ['path', 'domain', 'httpOnly', 'secure', 'sameSite', 'partitioned', 'priority'] as const
const NO_SECRETS: ReadonlyArray<string | Buffer> = Object.freeze([])

/** The secrets, newest first; none when the option is absent (only a sealing store needs them, and says so). */
function normalizeSecrets (secret: unknown): ReadonlyArray<string | Buffer> {
  if (secret === undefined) return NO_SECRETS
  const secrets: unknown[] = Array.isArray(secret) ? secret : [secret]
  if (secrets.length === 0) throw new FST_SESSION_SECRET_INVALID('the list is empty')
  for (const s of secrets) {
    if (typeof s !== 'string' && !Buffer.isBuffer(s)) {
      throw new FST_SESSION_SECRET_INVALID('must be a string or a Buffer, or a list of them')
    }
    const length = typeof s === 'string' ? Buffer.byteLength(s) : s.length
    if (length < MIN_SECRET_LENGTH) {
      throw new FST_SESSION_SECRET_INVALID(`must be at least ${MIN_SECRET_LENGTH} bytes long, got ${length}`)
    }
  }
  return Object.freeze([...secrets as Array<string | Buffer>])
}

function normalizeCookie (cookieName: string, cookie: unknown): NormalizedCookieOptions {
  const c = optionsObject('cookie', cookie === undefined ? {} : cookie)
  for (const key of Object.keys(c)) {
    if (key === 'maxAge' || key === 'expires') {
      fail(`cookie.${key}`, 'the cookie lifetime follows the session deadline; use ttl and absoluteTtl')
    }
  }
  knownKeys(c, COOKIE_KEYS, 'cookie.')
  const path = c.path ?? '/'
  if (typeof path !== 'string' || !path.startsWith('/')) fail('cookie.path', 'must be a string starting with /')
  const domain = nonEmptyString('cookie.domain', c.domain)
  let secure: boolean | 'auto' = 'auto'
  if (c.secure !== undefined) {
    if (c.secure !== 'auto' && typeof c.secure !== 'boolean') fail('cookie.secure', "must be true, false or 'auto'")
    secure = c.secure
  }
  const sameSite = oneOf('cookie.sameSite', c.sameSite, ['lax', 'strict', 'none'] as const, 'lax')
  if (sameSite === 'none' && secure === false) fail('cookie.sameSite', "'none' requires a Secure cookie")
  // Browsers drop a __Host- or __Secure- cookie without Secure; __Host- also wants Path=/ and no Domain.
  if (cookieName.startsWith('__Host-') || cookieName.startsWith('__Secure-')) {
    if (secure === false) fail('cookie.secure', `${cookieName.split('-')[0]}- cookies must be Secure`)
    secure = true
    if (cookieName.startsWith('__Host-') && (path !== '/' || domain !== undefined)) {
      fail('cookie.path', '__Host- cookies need path "/" and no domain')
    }
  }
  return Object.freeze({
    path,
    domain,
    httpOnly: boolean('cookie.httpOnly', c.httpOnly, true),
    secure,
    sameSite,
    partitioned: boolean('cookie.partitioned', c.partitioned, false),
    priority: oneOf('cookie.priority', c.priority, ['low', 'medium', 'high'] as const, undefined)
  })
}

/** Validates the plugin's options once, at register(); returns a new frozen object. */
export function normalizeOptions (options: FastifyUserSessionsOptions): NormalizedOptions {
  const o = optionsObject('options', options)
  knownKeys(o, OPTION_KEYS)
  const secrets = normalizeSecrets(o.secret)

  const store = o.store === undefined ? 'memory' : o.store
  if (typeof store !== 'string' && (store === null || typeof store !== 'object')) {
    fail('store', 'must be a store name or a store object')
  }
  const storeOptions = optionsObject('storeOptions', o.storeOptions === undefined ? {} : o.storeOptions)

  const cookieName = o.cookieName ?? 'sid'
  if (typeof cookieName !== 'string' || !COOKIE_NAME.test(cookieName)) {
    fail('cookieName', 'must be a non-empty cookie name token')
  }

  const ttl = positiveInteger('ttl', o.ttl, DEFAULT_TTL)
  const absoluteTtl = positiveInteger('absoluteTtl', o.absoluteTtl, Math.max(DEFAULT_ABSOLUTE_TTL, ttl))
  if (absoluteTtl < ttl) fail('absoluteTtl', `must be at least ttl (${ttl})`)

  const refreshFraction = o.refreshFraction ?? 0.1
  if (typeof refreshFraction !== 'number' || !(refreshFraction > 0 && refreshFraction <= 1)) {
    fail('refreshFraction', 'must be a number above 0 and at most 1')
  }

  const clock = o.clock ?? Date.now
  if (typeof clock !== 'function') fail('clock', 'must be a function returning milliseconds')

  return Object.freeze({
    secrets,
    store: store as string | SessionStore | StatelessStore,
    storeOptions,
    cookieName,
    cookie: normalizeCookie(cookieName, o.cookie),
    ttl,
    absoluteTtl,
    rolling: boolean('rolling', o.rolling, true),
    refreshFraction,
    maxSessionsPerUser: positiveInteger('maxSessionsPerUser', o.maxSessionsPerUser, 100),
    trackClient: boolean('trackClient', o.trackClient, true),
    bearer: boolean('bearer', o.bearer, false),
    clock: clock as () => number
  })
}
