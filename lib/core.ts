import type { FastifyReply, FastifyRequest } from 'fastify'
import { FST_SESSION_COOKIE_TOO_LARGE } from './errors.js'
import type { CookieAttributeOverrides } from './cookie-overrides.js'
import type { NormalizedOptions } from './options.js'
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

const UNTRACKED: ClientInfo = Object.freeze({ ip: undefined, userAgent: undefined })

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

  /** The effective deadline of a session created at `createdAt`, active at `now`. */
  deadline (createdAt: number, now: number, ttlMs = this.ttlMs): number {
    return Math.min(now + ttlMs, createdAt + this.absoluteTtlMs)
  }

  /** Where the request came from, for a devices page; nothing when `trackClient` is off. */
  client (request: FastifyRequest): ClientInfo {
    if (!this.options.trackClient) return UNTRACKED
    const userAgent = request.headers['user-agent']
    return { ip: request.ip, userAgent: typeof userAgent === 'string' ? userAgent.slice(0, MAX_USER_AGENT_LENGTH) : undefined }
  }

  /** A cookie that does not authenticate: a debug line says why, never what it held. */
  reject (request: FastifyRequest, reason: string): typeof REJECTED {
    request.log.debug({ reason }, 'session cookie refused; starting a fresh session')
    return REJECTED
  }

  /** A warning at most every UNAVAILABLE_LOG_INTERVAL ms (real time), debug lines between: an outage must not flood the log. */
  unavailable (request: FastifyRequest, err: unknown): { kind: 'unavailable', error: Error } {
    const error = storeError(err)
    const now = Date.now()
    const details = { err: { message: error.message, code: (error as { code?: string }).code } }
    if (now - this.#lastUnavailableWarning >= UNAVAILABLE_LOG_INTERVAL) {
      this.#lastUnavailableWarning = now
      request.log.warn(details, 'session store unavailable while loading a session')
    } else {
      request.log.debug(details, 'session store unavailable while loading a session')
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

  /** `overrides`: what `request.session.options()` accepted for this response (already checked), which can lengthen the header. */
  writeCookie (reply: FastifyReply, value: string, expiresAt: number, overrides?: CookieAttributeOverrides): void {
    if (overrides !== undefined) this.checkCookieSize(reply.request, value, expiresAt, overrides)
    reply.setCookie(this.options.cookieName, value, { ...this.#attributes, ...overrides, maxAge: this.maxAge(expiresAt) })
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
