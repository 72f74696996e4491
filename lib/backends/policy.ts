// A session's own settings, chosen at login (issue 13): its idle and absolute timeouts, whether
// its cookie outlives the browser, and its transport (a cookie, or a bearer token). A session
// on the app's defaults has none (`undefined`), which costs nothing on any store. Stores keep
// the encoded form as an opaque string, e.g. `b` (bearer), `s.t3600.a86400` (a browser-session
// cookie, one hour idle, one day at most); the plugin decodes it, and refuses a session whose
// settings it cannot read rather than guess its deadlines.

import { MAX_LIFETIME } from '../options.js'

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

export { MAX_LIFETIME }
const SECONDS = /^[1-9][0-9]{0,7}$/
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
