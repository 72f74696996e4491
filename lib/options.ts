import { boolean, fail, knownKeys, nonEmptyString, oneOf, optionsObject, positiveInteger, Problems } from './util/check.js'
import { FST_SESSION_SECRET_INVALID } from './errors.js'
import type { DbscAlgorithm } from './crypto/dbsc-proof.js'
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
  /** Record the client's IP and User-Agent when a signed-in session is created (for a devices page; an anonymous one keeps neither). @default true */
  trackClient?: boolean
  /**
   * Accept `Authorization: Bearer <token>` as the session credential, for API clients (mobile
   * apps, CLIs) that keep no cookies: `login(id, { transport: 'bearer' })` issues the token
   * (`request.session.token`). A request with a bearer token never reads nor sets the session
   * cookie. Needs a server-side store. @default false
   */
  bearer?: boolean
  /**
   * Device Bound Session Credentials (DBSC, docs/device-bound-sessions.md): a browser that
   * supports it binds the session to a key it keeps on the device at login, and a copy of the
   * session cookie works for `cookieTtl` seconds at most. `true` for the defaults, or options.
   * Needs a server-side store. Browsers without DBSC (and API clients) carry on as without it.
   * @default false
   */
  dbsc?: boolean | DbscOptions
  /** Clock in milliseconds since the epoch; for tests. @default Date.now */
  clock?: () => number
}

export interface DbscOptions {
  /** Seconds a bound session's cookie authenticates after it was issued; the browser refreshes it before. @default 600 */
  cookieTtl?: number
  /** The route the browser posts its new public key to, after a login. @default '/dbsc/registration' */
  registrationPath?: string
  /** The route the browser asks for a fresh cookie at, proving it holds the key. @default '/dbsc/refresh' */
  refreshPath?: string
  /** The signature algorithms offered, in order of preference. @default ['ES256', 'RS256'] */
  algorithms?: ReadonlyArray<DbscAlgorithm>
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
  /** Undefined when DBSC is off. */
  readonly dbsc: NormalizedDbscOptions | undefined
  readonly clock: () => number
}

export interface NormalizedDbscOptions {
  readonly cookieTtl: number
  readonly registrationPath: string
  readonly refreshPath: string
  readonly algorithms: readonly DbscAlgorithm[]
}

const MIN_SECRET_LENGTH = 32
const DEFAULT_TTL = 86_400 // 1 day
const DEFAULT_ABSOLUTE_TTL = 2_592_000 // 30 days
/** 400 days, in seconds: what browsers cap a cookie's lifetime at (RFC 6265bis); no session outlives it. */
export const MAX_LIFETIME = 34_560_000
// RFC 6265 cookie-name: a token, no separators.
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const OPTION_KEYS = ['secret', 'store', 'storeOptions', 'cookieName', 'cookie', 'ttl', 'absoluteTtl',
  'rolling', 'refreshFraction', 'maxSessionsPerUser', 'trackClient', 'bearer', 'dbsc', 'clock'] as const
const COOKIE_KEYS = ['path', 'domain', 'httpOnly', 'secure', 'sameSite', 'partitioned', 'priority'] as const
const DBSC_KEYS = ['cookieTtl', 'registrationPath', 'refreshPath', 'algorithms'] as const
const DBSC_ALGORITHMS: readonly DbscAlgorithm[] = ['ES256', 'RS256']
/** A path that goes into a structured header's string and a route as it is. */
const ROUTE_PATH = /^\/[A-Za-z0-9/._~-]*$/
const NO_SECRETS: ReadonlyArray<string | Buffer> = Object.freeze([])
/** Stands in for an invalid secret while the other options are checked: never used, register() throws first. */
const REFUSED_SECRET: ReadonlyArray<string | Buffer> = Object.freeze([Buffer.alloc(MIN_SECRET_LENGTH)])

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

/** A lifetime in seconds, at most 400 days; the message of a longer one says what it meant, and what it would be in milliseconds. */
function lifetime (option: string, value: unknown, fallback: number): number {
  const seconds = positiveInteger(option, value, fallback)
  if (seconds > MAX_LIFETIME) {
    const ms = seconds % 1000 === 0 && seconds / 1000 <= MAX_LIFETIME ? `; milliseconds by mistake? That is ${option}: ${seconds / 1000}` : ''
    fail(option, `is in seconds, at most ${MAX_LIFETIME} (400 days, the longest a browser keeps a cookie); ` +
      `got ${seconds} seconds (${Math.round(seconds / 86_400)} days)${ms}`)
  }
  return seconds
}

function normalizeCookie (cookieName: string, cookie: unknown, p: Problems): NormalizedCookieOptions {
  const c = p.check({}, () => optionsObject('cookie', cookie === undefined ? {} : cookie))
  for (const key of Object.keys(c)) {
    if (key === 'maxAge' || key === 'expires') {
      p.fail(`cookie.${key}`, 'the cookie lifetime follows the session deadline; use ttl and absoluteTtl')
    }
  }
  p.check(undefined, () => knownKeys(Object.fromEntries(Object.entries(c).filter(([key]) => key !== 'maxAge' && key !== 'expires')),
    COOKIE_KEYS, 'cookie.'))
  const path = p.check('/', () => {
    const path = c.path ?? '/'
    if (typeof path !== 'string' || !path.startsWith('/')) fail('cookie.path', 'must be a string starting with /')
    return path
  })
  const domain = p.check(undefined, () => nonEmptyString('cookie.domain', c.domain))
  const secure = p.check<boolean | 'auto'>('auto', () => {
    if (c.secure !== undefined && c.secure !== 'auto' && typeof c.secure !== 'boolean') fail('cookie.secure', "must be true, false or 'auto'")
    return (c.secure as boolean | 'auto' | undefined) ?? 'auto'
  })
  const sameSite = p.check('lax', () => oneOf('cookie.sameSite', c.sameSite, ['lax', 'strict', 'none'] as const, 'lax'))
  if (sameSite === 'none' && secure === false) p.fail('cookie.sameSite', "'none' requires a Secure cookie")
  // Browsers drop a __Host- or __Secure- cookie without Secure; __Host- also wants Path=/ and no Domain.
  const prefixed = cookieName.startsWith('__Host-') || cookieName.startsWith('__Secure-')
  if (prefixed && secure === false) p.fail('cookie.secure', `${cookieName.split('-')[0]}- cookies must be Secure`)
  if (cookieName.startsWith('__Host-') && (path !== '/' || domain !== undefined)) {
    p.fail('cookie.path', '__Host- cookies need path "/" and no domain')
  }
  return Object.freeze({
    path,
    domain,
    httpOnly: p.check(true, () => boolean('cookie.httpOnly', c.httpOnly, true)),
    secure: prefixed ? true : secure,
    sameSite,
    partitioned: p.check(false, () => boolean('cookie.partitioned', c.partitioned, false)),
    priority: p.check(undefined, () => oneOf('cookie.priority', c.priority, ['low', 'medium', 'high'] as const, undefined))
  })
}

function routePath (option: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback
  if (typeof value !== 'string' || !ROUTE_PATH.test(value)) fail(option, 'must be a path starting with /, of letters, digits and / . _ ~ -')
  return value
}

function normalizeDbsc (dbsc: unknown, cookie: NormalizedCookieOptions): NormalizedDbscOptions | undefined {
  if (dbsc === undefined || dbsc === false) return undefined
  const o = dbsc === true ? {} : optionsObject('dbsc', dbsc)
  knownKeys(o, DBSC_KEYS, 'dbsc.')
  // The browser's session and its cookie must match: a cookie it could send over http, or
  // partitioned by top-level site, is one DBSC cannot bind (the spec refuses Partitioned).
  if (cookie.secure === false) fail('dbsc', 'needs a Secure cookie (cookie.secure true or \'auto\'): browsers bind sessions over https only')
  if (cookie.partitioned) fail('dbsc', 'cannot bind a Partitioned cookie (cookie.partitioned)')
  const registrationPath = routePath('dbsc.registrationPath', o.registrationPath, '/dbsc/registration')
  const refreshPath = routePath('dbsc.refreshPath', o.refreshPath, '/dbsc/refresh')
  if (registrationPath === refreshPath) fail('dbsc.refreshPath', 'must differ from dbsc.registrationPath')
  const algorithms = o.algorithms ?? DBSC_ALGORITHMS
  if (!Array.isArray(algorithms) || algorithms.length === 0 || algorithms.some((a) => !DBSC_ALGORITHMS.includes(a)) ||
    new Set(algorithms).size !== algorithms.length) {
    fail('dbsc.algorithms', `must be a non-empty list of distinct algorithms among ${DBSC_ALGORITHMS.join(', ')}`)
  }
  return Object.freeze({
    cookieTtl: positiveInteger('dbsc.cookieTtl', o.cookieTtl, 600),
    registrationPath,
    refreshPath,
    algorithms: Object.freeze([...algorithms as DbscAlgorithm[]])
  })
}

/**
 * Validates the plugin's options once, at register(); returns a new frozen object. Every
 * problem is found before any is reported: given `problems`, they are left there for the
 * caller to report with its own (the store's), and fallbacks stand in for the values refused;
 * without, they are thrown at the end.
 */
export function normalizeOptions (options: FastifyUserSessionsOptions, problems?: Problems): NormalizedOptions {
  const p = problems ?? new Problems()
  const o = optionsObject('options', options)
  p.check(undefined, () => knownKeys(o, OPTION_KEYS))
  const secrets = p.check(REFUSED_SECRET, () => normalizeSecrets(o.secret))

  const store = p.check<string | SessionStore | StatelessStore>('memory', () => {
    const store = o.store === undefined ? 'memory' : o.store
    if (typeof store !== 'string' && (store === null || typeof store !== 'object')) {
      fail('store', 'must be a store name or a store object')
    }
    return store as string | SessionStore | StatelessStore
  })
  const storeOptions = p.check({}, () => optionsObject('storeOptions', o.storeOptions === undefined ? {} : o.storeOptions))

  const cookieName = p.check('sid', () => {
    const cookieName = o.cookieName ?? 'sid'
    if (typeof cookieName !== 'string' || !COOKIE_NAME.test(cookieName)) {
      fail('cookieName', 'must be a non-empty cookie name token')
    }
    return cookieName
  })

  const checkedTtl = p.check(undefined, () => lifetime('ttl', o.ttl, DEFAULT_TTL))
  const ttl = checkedTtl ?? DEFAULT_TTL
  const absoluteTtl = p.check(Math.max(DEFAULT_ABSOLUTE_TTL, ttl), () => lifetime('absoluteTtl', o.absoluteTtl, Math.max(DEFAULT_ABSOLUTE_TTL, ttl)))
  // Against a refused ttl, this would be a second report of the same mistake.
  if (checkedTtl !== undefined && absoluteTtl < ttl) p.fail('absoluteTtl', `must be at least ttl (${ttl})`)

  const refreshFraction = p.check(0.1, () => {
    const refreshFraction = o.refreshFraction ?? 0.1
    if (typeof refreshFraction !== 'number' || !(refreshFraction > 0 && refreshFraction <= 1)) {
      fail('refreshFraction', 'must be a number above 0 and at most 1')
    }
    return refreshFraction
  })

  const clock = p.check<() => number>(Date.now, () => {
    const clock = o.clock ?? Date.now
    if (typeof clock !== 'function') fail('clock', 'must be a function returning milliseconds')
    return clock as () => number
  })

  const cookie = normalizeCookie(cookieName, o.cookie, p)

  const normalized: NormalizedOptions = Object.freeze({
    secrets,
    store,
    storeOptions,
    cookieName,
    cookie,
    ttl,
    absoluteTtl,
    rolling: p.check(true, () => boolean('rolling', o.rolling, true)),
    refreshFraction,
    maxSessionsPerUser: p.check(100, () => positiveInteger('maxSessionsPerUser', o.maxSessionsPerUser, 100)),
    trackClient: p.check(true, () => boolean('trackClient', o.trackClient, true)),
    bearer: p.check(false, () => boolean('bearer', o.bearer, false)),
    dbsc: p.check(undefined, () => normalizeDbsc(o.dbsc, cookie)),
    clock
  })
  return problems === undefined ? p.result(normalized) : normalized
}
