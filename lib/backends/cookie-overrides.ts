import { FST_SESSION_OPTION_INVALID } from '../errors.js'
import type { NormalizedCookieOptions } from '../options.js'

// `request.session.options(opts)`: per-response overrides of the session cookie's attributes,
// in the dialect of @fastify/secure-session (whose `options()` @fastify/csrf-protection calls
// from `reply.generateCsrf(opts)`). Only overrides that cannot weaken the configured cookie, nor
// make a second cookie of the same name, are accepted.

/** What `request.session.options()` accepts. Each can only make the configured cookie stricter. */
export interface SessionCookieOverrides {
  /** Only `true`: Secure on this response even when `cookie.secure` is `'auto'`. */
  secure?: boolean
  /** Only `true` (or what is configured). */
  httpOnly?: boolean
  /** At least as strict as `cookie.sameSite` (`'none'` < `'lax'` < `'strict'`); `true` means `'strict'`. */
  sameSite?: 'lax' | 'strict' | 'none' | boolean
  priority?: 'low' | 'medium' | 'high'
  /** @fastify/csrf-protection's, passed along by `reply.generateCsrf(opts)`; ignored here. */
  userInfo?: string
}

/** What `cookieOverrides` accepted, normalized. */
export interface CookieAttributeOverrides {
  secure?: boolean
  httpOnly?: boolean
  sameSite?: 'lax' | 'strict' | 'none'
  priority?: 'low' | 'medium' | 'high'
}

const STRICTNESS = { none: 0, lax: 1, strict: 2 } as const
const IDENTITY = new Set(['path', 'domain', 'partitioned'])
const LIFETIME = new Set(['maxAge', 'expires'])

function fail (key: string, message: string): never {
  throw new FST_SESSION_OPTION_INVALID(`session.options().${key}`, message)
}

/** Checks what `options()` was given against the configured cookie; undefined when nothing is overridden. */
export function cookieOverrides (opts: unknown, cookie: NormalizedCookieOptions): CookieAttributeOverrides | undefined {
  if (opts === undefined || opts === null) return undefined
  if (typeof opts !== 'object' || Array.isArray(opts)) throw new FST_SESSION_OPTION_INVALID('session.options()', 'must be an object')
  const out: CookieAttributeOverrides = {}
  for (const [key, value] of Object.entries(opts)) {
    if (value === undefined || key === 'userInfo') continue
    if (key === 'secure' || key === 'httpOnly') {
      if (value === cookie[key]) continue
      if (value !== true) fail(key, 'can only be true: a response cannot weaken the session cookie')
      out[key] = true
    } else if (key === 'sameSite') {
      const sameSite = value === true ? 'strict' : value
      if (typeof sameSite !== 'string' || !Object.hasOwn(STRICTNESS, sameSite)) fail(key, "must be 'lax', 'strict', 'none' or true")
      if (STRICTNESS[sameSite as keyof typeof STRICTNESS] < STRICTNESS[cookie.sameSite]) {
        fail(key, `cannot be looser than the configured '${cookie.sameSite}'`)
      }
      out.sameSite = sameSite as keyof typeof STRICTNESS
    } else if (key === 'priority') {
      if (value !== 'low' && value !== 'medium' && value !== 'high') fail(key, "must be 'low', 'medium' or 'high'")
      out.priority = value
    } else if (IDENTITY.has(key)) {
      fail(key, 'would make a second cookie of the same name; set it in the plugin options (cookie)')
    } else if (LIFETIME.has(key)) {
      fail(key, 'the cookie lifetime follows the session deadline; use ttl and absoluteTtl')
    } else {
      fail(key, 'unknown; known: secure, httpOnly, sameSite, priority (and userInfo, which is ignored)')
    }
  }
  return Object.keys(out).length === 0 ? undefined : out
}
