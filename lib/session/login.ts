import type { SessionCore } from '../backends/core.js'
import { MAX_LIFETIME, type Policy, type SessionTransport } from '../backends/policy.js'
import { fail, knownKeys, optionsObject } from '../util/check.js'

// login()'s options: checked in full before anything changes, turned into the new session's
// settings (lib/backends/policy.ts), which the backends keep and enforce.

const LOGIN_KEYS = ['keepData', 'persistent', 'ttl', 'absoluteTtl', 'transport'] as const

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
