import { fail, knownKeys, optionsObject } from '../util/check.js'
import type { SessionCore } from './core.js'

// A session's own settings, chosen at login (issue 13): its idle and absolute timeouts, whether
// its cookie outlives the browser, and its transport (a cookie, or a bearer token). A session
// on the app's defaults has none (`undefined`), which costs nothing on any store. Stores keep
// the encoded form as an opaque string, e.g. `b` (bearer), `s.t3600.a86400` (a browser-session
// cookie, one hour idle, one day at most); the plugin decodes it, and refuses a session whose
// settings it cannot read rather than guess its deadlines.

export type SessionTransport = 'cookie' | 'bearer'

export interface Policy {
  /** Idle timeout in seconds; undefined: the app's `ttl`. */
  readonly ttl: number | undefined
  /** Absolute timeout in seconds; undefined: the app's `absoluteTtl`. */
  readonly absoluteTtl: number | undefined
  /** False: the cookie carries no Max-Age and dies with the browser. */
  readonly persistent: boolean
  readonly transport: SessionTransport
}

export const DEFAULT_POLICY: Policy = Object.freeze({ ttl: undefined, absoluteTtl: undefined, persistent: true, transport: 'cookie' })

/** 400 days: what browsers cap a cookie's lifetime at (RFC 6265bis); no session outlives it. */
export const MAX_LIFETIME = 34_560_000
const SECONDS = /^[1-9][0-9]{0,7}$/
const LOGIN_KEYS = ['keepData', 'persistent', 'ttl', 'absoluteTtl', 'transport'] as const
const decoded = new Map<string, Policy | undefined>()
const DECODED_LIMIT = 1000

export function encodePolicy (p: Policy): string | undefined {
  const parts: string[] = []
  if (p.transport === 'bearer') parts.push('b')
  if (!p.persistent) parts.push('s')
  if (p.ttl !== undefined) parts.push('t' + p.ttl)
  if (p.absoluteTtl !== undefined) parts.push('a' + p.absoluteTtl)
  return parts.length === 0 ? undefined : parts.join('.')
}

function parse (encoded: string): Policy | undefined {
  let transport: SessionTransport = 'cookie'
  let persistent = true
  let ttl: number | undefined
  let absoluteTtl: number | undefined
  for (const part of encoded.split('.')) {
    const tag = part[0]
    const seconds = SECONDS.test(part.slice(1)) ? Number(part.slice(1)) : undefined
    if (part === 'b' && transport === 'cookie') transport = 'bearer'
    else if (part === 's' && persistent) persistent = false
    else if (tag === 't' && ttl === undefined && seconds !== undefined && seconds <= MAX_LIFETIME) ttl = seconds
    else if (tag === 'a' && absoluteTtl === undefined && seconds !== undefined && seconds <= MAX_LIFETIME) absoluteTtl = seconds
    else return undefined
  }
  const policy = { ttl, absoluteTtl, persistent, transport }
  // Only the canonical form: one session's settings have one spelling.
  return encodePolicy(policy) === encoded ? Object.freeze(policy) : undefined
}

/** The settings a store kept for a session; undefined when they are not what `encodePolicy` writes. */
export function decodePolicy (encoded: string | undefined): Policy | undefined {
  if (encoded === undefined) return DEFAULT_POLICY
  let policy = decoded.get(encoded)
  if (policy === undefined && !decoded.has(encoded)) {
    policy = parse(encoded)
    // The distinct settings an app uses are few; a flood of made-up ones only empties the cache.
    if (decoded.size >= DECODED_LIMIT) decoded.clear()
    decoded.set(encoded, policy)
  }
  return policy
}

export interface LoginOptions {
  /** Carry the anonymous session's data into the new one; `true` for all keys, or a list of keys. @default false */
  keepData?: boolean | readonly string[]
  /**
   * `false`: the session cookie carries neither Max-Age nor Expires, so the browser drops it when
   * it closes ("remember me" unchecked). The server enforces both deadlines either way. @default true
   */
  persistent?: boolean
  /** This session's idle timeout in seconds, instead of the app's `ttl`. @default the app's */
  ttl?: number
  /** This session's absolute timeout in seconds, instead of the app's `absoluteTtl`. @default the app's */
  absoluteTtl?: number
  /**
   * `'bearer'`: the session is carried by a token (`request.session.token`) instead of a cookie;
   * needs the plugin option `bearer: true`. @default the request's: 'bearer' on a request that
   * came with a bearer token, else 'cookie'
   */
  transport?: SessionTransport
}

function seconds (name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0 || value > MAX_LIFETIME) {
    fail(name, `must be a positive integer of seconds, at most ${MAX_LIFETIME} (400 days)`)
  }
  return value
}

/**
 * Checks `login()`'s options; returns the new session's settings. `bearerRequest`: the request
 * came with a bearer token, whose response never sets the session cookie.
 */
export function loginPolicy (options: LoginOptions, core: SessionCore, maxAbsoluteTtl: number, bearerRequest: boolean): Policy {
  const o = optionsObject('options', options)
  knownKeys(o, LOGIN_KEYS, 'options.')
  const keep = o.keepData
  if (keep !== undefined && typeof keep !== 'boolean' && !Array.isArray(keep)) fail('options.keepData', 'must be a boolean or a list of keys')
  if (o.persistent !== undefined && typeof o.persistent !== 'boolean') fail('options.persistent', 'must be a boolean')
  const ttl = seconds('options.ttl', o.ttl)
  const absoluteTtl = seconds('options.absoluteTtl', o.absoluteTtl)
  if (absoluteTtl !== undefined && absoluteTtl > maxAbsoluteTtl) {
    fail('options.absoluteTtl', `must not be above ${maxAbsoluteTtl}: the cookie store keeps revocations for the app's absoluteTtl`)
  }
  const effectiveAbsolute = absoluteTtl ?? core.options.absoluteTtl
  if (ttl !== undefined && ttl > effectiveAbsolute) {
    fail('options.ttl', `must not be above ${absoluteTtl === undefined ? "the app's absoluteTtl" : 'options.absoluteTtl'} (${effectiveAbsolute})`)
  }
  const transport = o.transport ?? (bearerRequest ? 'bearer' : 'cookie')
  if (transport !== 'cookie' && transport !== 'bearer') fail('options.transport', "must be 'cookie' or 'bearer'")
  if (transport === 'bearer' && !core.options.bearer) fail('options.transport', "'bearer' needs the plugin option bearer: true")
  if (transport === 'cookie' && bearerRequest) fail('options.transport', "a request that came with a bearer token never sets the session cookie; use 'bearer'")
  return { ttl, absoluteTtl, persistent: o.persistent ?? true, transport }
}
