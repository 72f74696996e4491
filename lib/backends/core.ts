import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import { FST_SESSION_COOKIE_TOO_LARGE } from '../errors.js'
import type { CookieAttributeOverrides } from './cookie-overrides.js'
import type { NormalizedOptions } from '../options.js'
import { decodePolicy, DEFAULT_POLICY, type Policy } from './policy.js'
import { storeError } from './store-errors.js'

// What every backend and every session of one plugin instance share, whatever the store:
// the options, the clock and the deadlines, the session cookie's attributes, and the log
// lines for refused cookies and store outages. Nothing here depends on the kind of store.

/** Longest cookie value read at all: anything longer is refused without a look inside. */
export const MAX_COOKIE_LENGTH = 4096
const UNAVAILABLE_LOG_INTERVAL = 10_000
/** Name, value and attributes of a Set-Cookie (ASVS V3.3; browsers drop larger cookies silently). */
const MAX_SET_COOKIE_BYTES = 4096
/** A value that goes into Set-Cookie as it is (no percent-encoding): its length is its size. */
const COOKIE_SAFE = /^[\w.~-]*$/
const MAX_USER_AGENT_LENGTH = 512

const REJECTED = Object.freeze({ kind: 'rejected' as const })

export interface ClientInfo {
  ip: string | undefined
  userAgent: string | undefined
}

export const UNTRACKED: ClientInfo = Object.freeze({ ip: undefined, userAgent: undefined })

export class SessionCore {
  readonly options: NormalizedOptions
  readonly ttlMs: number
  readonly absoluteTtlMs: number
  /** The idle deadline is pushed back once it is at least this much later than the stored one. */
  readonly refreshStepMs: number
  readonly #attributes: Readonly<Record<string, unknown>>
  #lastUnavailableWarning = -Infinity
  #attributesBound: number | undefined

  constructor (options: NormalizedOptions) {
    this.options = options
    this.ttlMs = options.ttl * 1000
    this.absoluteTtlMs = options.absoluteTtl * 1000
    this.refreshStepMs = Math.max(1, Math.floor(this.ttlMs * options.refreshFraction))
    const c = options.cookie
    this.#attributes = Object.freeze({
      path: c.path,
      domain: c.domain,
      httpOnly: c.httpOnly,
      secure: c.secure,
      sameSite: c.sameSite,
      partitioned: c.partitioned || undefined,
      priority: c.priority
    })
  }

  now (): number {
    return this.options.clock()
  }

  /** The effective deadline of a session created at `createdAt`, active at `now`, under its own settings. */
  deadline (createdAt: number, now: number, policy: Policy = DEFAULT_POLICY, ttlMs = this.ttlOf(policy)): number {
    return Math.min(now + ttlMs, createdAt + this.absoluteTtlOf(policy))
  }

  /** A session's idle timeout in milliseconds: its own, or the app's. */
  ttlOf (policy: Policy): number {
    return policy.ttl === undefined ? this.ttlMs : policy.ttl * 1000
  }

  /** A session's absolute timeout in milliseconds: its own, or the app's. */
  absoluteTtlOf (policy: Policy): number {
    return policy.absoluteTtl === undefined ? this.absoluteTtlMs : policy.absoluteTtl * 1000
  }

  /** How far the idle deadline must move before a rolling refresh writes it. */
  refreshStepOf (policy: Policy): number {
    return policy.ttl === undefined ? this.refreshStepMs : Math.max(1, Math.floor(policy.ttl * 1000 * this.options.refreshFraction))
  }

  /**
   * The settings of a loaded session, when they are readable and its credential came the way
   * the session travels (a cookie value is no bearer token, nor the reverse; `bearer`
   * undefined: either way, as for `authenticate`); else undefined.
   */
  policyFor (encoded: string | undefined, bearer: boolean | undefined): Policy | undefined {
    if (encoded === undefined) return bearer === true ? undefined : DEFAULT_POLICY
    const policy = decodePolicy(encoded)
    return policy !== undefined && (bearer === undefined || (policy.transport === 'bearer') === bearer) ? policy : undefined
  }

  /** What a record shows of a session's settings: its transport, its cookie's persistence, its timeouts in seconds. */
  settingsOf (policy: Policy): { transport: Policy['transport'], persistent: boolean, ttl: number, absoluteTtl: number } {
    return { transport: policy.transport, persistent: policy.persistent, ttl: this.ttlOf(policy) / 1000, absoluteTtl: this.absoluteTtlOf(policy) / 1000 }
  }

  /** Where the request came from, for a devices page; nothing when `trackClient` is off. */
  client (request: FastifyRequest): ClientInfo {
    if (!this.options.trackClient) return UNTRACKED
    const userAgent = request.headers['user-agent']
    return { ip: request.ip, userAgent: typeof userAgent === 'string' ? userAgent.slice(0, MAX_USER_AGENT_LENGTH) : undefined }
  }

  /** A credential that does not authenticate: a debug line says why, never what it held. */
  reject (log: FastifyBaseLogger, reason: string): typeof REJECTED {
    log.debug({ reason }, 'session credential refused; starting a fresh session')
    return REJECTED
  }

  /** A warning at most every UNAVAILABLE_LOG_INTERVAL ms (real time), debug lines between: an outage must not flood the log. */
  unavailable (log: FastifyBaseLogger, err: unknown): { kind: 'unavailable', error: Error } {
    const error = storeError(err)
    const now = Date.now()
    const details = { err: { message: error.message, code: (error as { code?: string }).code } }
    if (now - this.#lastUnavailableWarning >= UNAVAILABLE_LOG_INTERVAL) {
      this.#lastUnavailableWarning = now
      log.warn(details, 'session store unavailable while loading a session')
    } else {
      log.debug(details, 'session store unavailable while loading a session')
    }
    return { kind: 'unavailable', error }
  }

  /** Seconds until `expiresAt`, for the cookie's Max-Age. */
  maxAge (expiresAt: number): number {
    return Math.max(0, Math.ceil((expiresAt - this.now()) / 1000))
  }

  /**
   * Throws `FST_SESSION_COOKIE_TOO_LARGE` when the Set-Cookie of `value` would pass what a
   * browser keeps. The exact size is computed only near the limit: below it, name + value +
   * the longest the attributes can be is enough.
   */
  checkCookieSize (request: FastifyRequest, value: string, expiresAt: number, overrides?: CookieAttributeOverrides): void {
    const name = this.options.cookieName
    this.#attributesBound ??= Buffer.byteLength(request.server.serializeCookie(name, '',
      { ...this.#attributes, secure: true, maxAge: this.options.absoluteTtl })) - name.length - 1
    if (overrides === undefined && COOKIE_SAFE.test(value) && name.length + 1 + value.length + this.#attributesBound <= MAX_SET_COOKIE_BYTES) return
    const attributes: Record<string, unknown> = { ...this.#attributes, ...overrides, maxAge: this.maxAge(expiresAt) }
    if (attributes.secure === 'auto') attributes.secure = request.protocol === 'https'
    const size = Buffer.byteLength(request.server.serializeCookie(name, value, attributes))
    if (size > MAX_SET_COOKIE_BYTES) throw new FST_SESSION_COOKIE_TOO_LARGE(size, MAX_SET_COOKIE_BYTES)
  }

  /**
   * `overrides`: what `request.session.options()` accepted for this response (already checked),
   * which can lengthen the header. `persistent: false`: no Max-Age, a cookie that dies with the browser.
   */
  writeCookie (reply: FastifyReply, value: string, expiresAt: number, overrides: CookieAttributeOverrides | undefined,
    persistent: boolean): void {
    if (overrides !== undefined) this.checkCookieSize(reply.request, value, expiresAt, overrides)
    reply.setCookie(this.options.cookieName, value,
      { ...this.#attributes, ...overrides, maxAge: persistent ? this.maxAge(expiresAt) : undefined })
    noStore(reply)
  }

  clearCookie (reply: FastifyReply): void {
    reply.clearCookie(this.options.cookieName, this.#attributes)
    noStore(reply)
  }
}

/** A response that sets the session cookie must not be stored by a shared cache (CVE-2025-48947). */
function noStore (reply: FastifyReply): void {
  if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store')
}
