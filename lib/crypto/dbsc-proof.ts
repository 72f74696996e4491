import { compactVerify, EmbeddedJWK, importJWK, type CompactVerifyResult, type JWK } from 'jose'

// The proofs of Device Bound Session Credentials (w3c/webappsec-dbsc, "DBSC proof"): a JWS in
// compact form, header `typ` "dbsc+jwt" and an `alg` the server offered, payload `{"jti":
// <challenge>}`. At registration the header carries the browser's new public key (`jwk`) and
// the proof is checked against it; at refresh it must not, and the key registered for the
// session checks it. jose does the parsing and the signature; this file says what a proof
// must hold and keeps, of a key, only the members that define it.

export type DbscAlgorithm = 'ES256' | 'RS256'

/** A public key as a session keeps it: the members of its JWK that define it, nothing else. */
export type DbscKey =
  | { readonly kty: 'EC', readonly crv: 'P-256', readonly x: string, readonly y: string }
  | { readonly kty: 'RSA', readonly n: string, readonly e: string }

export type ProofCheck<T> = { readonly ok: true, readonly value: T } | { readonly ok: false, readonly reason: string }

/** Longest proof read at all: an RS256 proof with a 4096-bit key in its header is under 2 KB. */
export const MAX_PROOF_LENGTH = 8192
const BASE64URL = /^[A-Za-z0-9_-]+$/
/** An EC P-256 coordinate: 32 bytes. */
const COORDINATE_LENGTH = 43
/** RSA moduli up to 8192 bits (jose refuses those under 2048 for RS256). */
const MAX_MODULUS_LENGTH = 1366
const MAX_EXPONENT_LENGTH = 8
const MAX_JTI_LENGTH = 256

function refuse (reason: string): { ok: false, reason: string } {
  return { ok: false, reason }
}

/** The algorithm a key is used with; the header's must be the same. */
export function algorithmOf (key: DbscKey): DbscAlgorithm {
  return key.kty === 'EC' ? 'ES256' : 'RS256'
}

/** The defining members of a public JWK, or undefined when it is not a P-256 or RSA public key. */
export function dbscKey (jwk: unknown): DbscKey | undefined {
  if (jwk === null || typeof jwk !== 'object') return undefined
  const k = jwk as Record<string, unknown>
  const text = (v: unknown, max: number, exact = false): v is string =>
    typeof v === 'string' && BASE64URL.test(v) && (exact ? v.length === max : v.length <= max)
  if (k.kty === 'EC' && k.crv === 'P-256' && text(k.x, COORDINATE_LENGTH, true) && text(k.y, COORDINATE_LENGTH, true)) {
    return { kty: 'EC', crv: 'P-256', x: k.x, y: k.y }
  }
  if (k.kty === 'RSA' && text(k.n, MAX_MODULUS_LENGTH) && text(k.e, MAX_EXPONENT_LENGTH)) return { kty: 'RSA', n: k.n, e: k.e }
  return undefined
}

/** The challenge a verified proof signed, once its header and payload are what DBSC says. */
function challengeOf (result: CompactVerifyResult, registration: boolean): ProofCheck<string> {
  const header = result.protectedHeader
  if (header.typ !== 'dbsc+jwt') return refuse('typ is not dbsc+jwt')
  if (!registration && header.jwk !== undefined) return refuse('a refresh proof carries a key')
  let payload: unknown
  try {
    payload = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(result.payload))
  } catch {
    return refuse('payload is not JSON')
  }
  const jti = (payload as { jti?: unknown } | null)?.jti
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_JTI_LENGTH) return refuse('no jti')
  return { ok: true, value: jti }
}

function failure (err: unknown): { ok: false, reason: string } {
  const code = (err as { code?: unknown } | null)?.code
  return refuse(typeof code === 'string' ? code : 'malformed')
}

/**
 * A registration proof: signed by the key in its own header, with an algorithm of `algorithms`.
 * Resolves the challenge it signed and the key, or why it is refused; never rejects.
 */
export async function verifyRegistration (proof: string, algorithms: readonly DbscAlgorithm[]):
Promise<ProofCheck<{ jti: string, key: DbscKey }>> {
  if (proof.length > MAX_PROOF_LENGTH) return refuse('too long')
  let result: CompactVerifyResult
  try {
    result = await compactVerify(proof, EmbeddedJWK, { algorithms: [...algorithms] })
  } catch (err) {
    return failure(err)
  }
  // jose imported the key for the header's alg (ES256: EC P-256, RS256: RSA of 2048 bits or more)
  // and checked the signature with it; what is left to refuse is a key too large to keep.
  const key = dbscKey(result.protectedHeader.jwk)
  if (key === undefined) return refuse('a key too large to keep')
  const jti = challengeOf(result, true)
  return jti.ok ? { ok: true, value: { jti: jti.value, key } } : jti
}

/** A refresh proof, signed by the session's `key`; resolves the challenge it signed, or why it is refused; never rejects. */
export async function verifyRefresh (proof: string, key: DbscKey, algorithms: readonly DbscAlgorithm[]): Promise<ProofCheck<string>> {
  if (proof.length > MAX_PROOF_LENGTH) return refuse('too long')
  const alg = algorithmOf(key)
  if (!algorithms.includes(alg)) return refuse('the session\'s algorithm is no longer offered')
  let result: CompactVerifyResult
  try {
    result = await compactVerify(proof, await importJWK(key as JWK, alg), { algorithms: [alg] })
  } catch (err) {
    return failure(err)
  }
  return challengeOf(result, false)
}
