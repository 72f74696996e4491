import { FST_SESSION_OPTION_INVALID, FST_SESSION_SECRET_INVALID } from './errors.js'
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

export interface FastifyUserSessionsOptions {
  /** At least 32 characters; or a list of them: the first signs, all verify (key rotation). */
  secret: string | Buffer | ReadonlyArray<string | Buffer>
  /** A registered store name ('memory', 'ets', 'cookie', 'redis', ...) or a store object. @default 'memory' */
  store?: string | SessionStore | StatelessStore
  /** Handed to the store alone. @default {} */
  storeOptions?: object
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
  /** Clock in milliseconds since the epoch; for tests. @default Date.now */
  clock?: () => number
}

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
  readonly clock: () => number
}

const MIN_SECRET_LENGTH = 32
// RFC 6265 cookie-name: a token, no separators.
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const OPTION_KEYS = new Set(['secret', 'store', 'storeOptions', 'cookieName', 'cookie', 'ttl', 'absoluteTtl',
  'rolling', 'refreshFraction', 'maxSessionsPerUser', 'trackClient', 'clock'])
const COOKIE_KEYS = new Set(['path', 'domain', 'httpOnly', 'secure', 'sameSite', 'partitioned', 'priority'])

function fail (option: string, message: string): never {
  throw new FST_SESSION_OPTION_INVALID(option, message)
}

function normalizeSecrets (secret: unknown): ReadonlyArray<string | Buffer> {
  const secrets: unknown[] = Array.isArray(secret) ? secret : [secret]
  if (secret === undefined) throw new FST_SESSION_SECRET_INVALID('is required')
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

function positiveInteger (name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) fail(name, 'must be a positive integer')
  return value
}

function boolean (name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') fail(name, 'must be a boolean')
  return value
}

function oneOf<T extends string> (name: string, value: unknown, allowed: readonly T[], fallback: T | undefined): T | undefined {
  if (value === undefined) return fallback
  if (!allowed.includes(value as T)) fail(name, `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}`)
  return value as T
}

function normalizeCookie (cookieName: string, cookie: unknown): NormalizedCookieOptions {
  if (cookie === undefined) cookie = {}
  if (cookie === null || typeof cookie !== 'object') fail('cookie', 'must be an object')
  const c = cookie as Record<string, unknown>
  for (const key of Object.keys(c)) {
    if (!COOKIE_KEYS.has(key)) {
      fail(`cookie.${key}`, key === 'maxAge' || key === 'expires'
        ? 'the cookie lifetime follows the session deadline; use ttl and absoluteTtl'
        : `unknown cookie option; known: ${[...COOKIE_KEYS].join(', ')}`)
    }
  }
  const path = c.path ?? '/'
  if (typeof path !== 'string' || !path.startsWith('/')) fail('cookie.path', 'must be a string starting with /')
  if (c.domain !== undefined && (typeof c.domain !== 'string' || c.domain.length === 0)) {
    fail('cookie.domain', 'must be a non-empty string')
  }
  let secure: boolean | 'auto' = 'auto'
  if (c.secure !== undefined) {
    if (c.secure !== 'auto' && typeof c.secure !== 'boolean') fail('cookie.secure', "must be true, false or 'auto'")
    secure = c.secure
  }
  const sameSite = oneOf('cookie.sameSite', c.sameSite, ['lax', 'strict', 'none'] as const, 'lax') as 'lax' | 'strict' | 'none'
  if (sameSite === 'none' && secure === false) fail('cookie.sameSite', "'none' requires a Secure cookie")
  // Browsers drop a __Host- or __Secure- cookie without Secure; __Host- also wants Path=/ and no Domain.
  if (cookieName.startsWith('__Host-') || cookieName.startsWith('__Secure-')) {
    if (secure === false) fail('cookie.secure', `${cookieName.split('-')[0]}- cookies must be Secure`)
    secure = true
    if (cookieName.startsWith('__Host-') && (path !== '/' || c.domain !== undefined)) {
      fail('cookie.path', '__Host- cookies need path "/" and no domain')
    }
  }
  return Object.freeze({
    path,
    domain: c.domain as string | undefined,
    httpOnly: boolean('cookie.httpOnly', c.httpOnly, true),
    secure,
    sameSite,
    partitioned: boolean('cookie.partitioned', c.partitioned, false),
    priority: oneOf('cookie.priority', c.priority, ['low', 'medium', 'high'] as const, undefined)
  })
}

/** Validates the plugin's options once, at register(); returns a new frozen object. */
export function normalizeOptions (options: FastifyUserSessionsOptions): NormalizedOptions {
  if (options === null || typeof options !== 'object') fail('options', 'must be an object')
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) fail(key, `unknown option; known: ${[...OPTION_KEYS].join(', ')}`)
  }
  const secrets = normalizeSecrets(options.secret)

  const store = options.store === undefined ? 'memory' : options.store
  if (typeof store !== 'string' && (store === null || typeof store !== 'object')) {
    fail('store', 'must be a store name or a store object')
  }
  const storeOptions = options.storeOptions === undefined ? {} : options.storeOptions
  if (storeOptions === null || typeof storeOptions !== 'object') fail('storeOptions', 'must be an object')

  const cookieName = options.cookieName ?? 'sid'
  if (typeof cookieName !== 'string' || !COOKIE_NAME.test(cookieName)) {
    fail('cookieName', 'must be a non-empty cookie name token')
  }

  const ttl = positiveInteger('ttl', options.ttl, 86_400)
  const absoluteTtl = positiveInteger('absoluteTtl', options.absoluteTtl, Math.max(2_592_000, ttl))
  if (absoluteTtl < ttl) fail('absoluteTtl', `must be at least ttl (${ttl})`)

  const refreshFraction = options.refreshFraction ?? 0.1
  if (typeof refreshFraction !== 'number' || !(refreshFraction > 0 && refreshFraction <= 1)) {
    fail('refreshFraction', 'must be a number above 0 and at most 1')
  }

  const clock = options.clock ?? Date.now
  if (typeof clock !== 'function') fail('clock', 'must be a function returning milliseconds')

  return Object.freeze({
    secrets,
    store,
    storeOptions,
    cookieName,
    cookie: normalizeCookie(cookieName, options.cookie),
    ttl,
    absoluteTtl,
    rolling: boolean('rolling', options.rolling, true),
    refreshFraction,
    maxSessionsPerUser: positiveInteger('maxSessionsPerUser', options.maxSessionsPerUser, 100),
    trackClient: boolean('trackClient', options.trackClient, true),
    clock
  })
}
