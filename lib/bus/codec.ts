import { isSessionId, tagOf } from '../crypto/ids.js'
import type { Revocation, RevocationReason } from './bus.js'

// A revocation on the wire: compact JSON with one-letter keys, `{"i":[ids],"u":userId,
// "x":[except],"r":reason,"a":at}`. What comes back from the wire is checked field by field:
// a malformed message is dropped (undefined), never thrown at the subscriber. Unknown keys are
// ignored, so that an instance of a later version can add one during a rolling upgrade.

const REASONS: ReadonlySet<string> = new Set<RevocationReason>(['delete', 'deleteAll', 'destroy', 'replaced', 'evicted', 'expired'])
const MAX_USER_ID_BYTES = 256

/** The largest message the buses send: PostgreSQL's NOTIFY takes less than 8000 bytes. */
export const MAX_MESSAGE_BYTES = 7999

/** The routing key of a session id: its user's tag, or the anonymous id itself. */
export function sessionKey (id: string): string {
  return tagOf(id) ?? id
}

/**
 * The routing key of a revocation that lists ids (all of one user, or one anonymous id); undefined
 * when it lists none: a user-wide revocation is routed by the user's tag, which the bus asks its store for.
 */
export function revocationKey (revocation: Revocation): string | undefined {
  const first = revocation.ids[0]
  return first === undefined ? undefined : sessionKey(first)
}

export function encode (revocation: Revocation): string {
  const wire: Record<string, unknown> = { i: revocation.ids }
  if (revocation.userId !== undefined) wire.u = revocation.userId
  if (revocation.except !== undefined) wire.x = revocation.except
  wire.r = revocation.reason
  wire.a = revocation.at
  return JSON.stringify(wire)
}

function stringArray (value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string')
}

/** The revocation in `text`, or undefined when it is not one this plugin sends. Never throws. */
export function decode (text: string): Revocation | undefined {
  let wire: unknown
  try {
    wire = JSON.parse(text)
  } catch {
    return undefined
  }
  if (wire === null || typeof wire !== 'object' || Array.isArray(wire)) return undefined
  const { i: ids, u: userId, x: except, r: reason, a: at } = wire as Record<string, unknown>
  if (!stringArray(ids) || !ids.every(isSessionId)) return undefined
  if (userId !== undefined && (typeof userId !== 'string' || userId.length === 0 ||
    Buffer.byteLength(userId, 'utf8') > MAX_USER_ID_BYTES)) return undefined
  if (except !== undefined && !stringArray(except)) return undefined
  if (typeof reason !== 'string' || !REASONS.has(reason)) return undefined
  if (typeof at !== 'number' || !Number.isSafeInteger(at) || at < 0) return undefined
  // One routing unit: every id of one user (or that anonymous id alone), or a user named.
  if (ids.length === 0 ? userId === undefined : !ids.every((id) => sessionKey(id) === sessionKey(ids[0] as string))) return undefined
  return {
    ids,
    ...(userId === undefined ? {} : { userId }),
    ...(except === undefined ? {} : { except }),
    reason: reason as RevocationReason,
    at
  }
}

/**
 * `revocation`, or when its message would be over `maxBytes`, the user-wide revocation that
 * says the same: every session of the user but `except`, ids left out (a subscriber checks the
 * sessions it follows against the store). When even that is too large, `except` goes too: it
 * only spares a subscriber that check.
 */
export function fitted (revocation: Revocation, maxBytes: number): Revocation {
  if (Buffer.byteLength(encode(revocation), 'utf8') <= maxBytes) return revocation
  const userId = revocation.userId
  if (userId === undefined) return revocation
  const wide: Revocation = { ids: [], userId, except: revocation.except ?? [], reason: revocation.reason, at: revocation.at }
  if (Buffer.byteLength(encode(wide), 'utf8') <= maxBytes) return wide
  return { ids: [], userId, reason: revocation.reason, at: revocation.at }
}
