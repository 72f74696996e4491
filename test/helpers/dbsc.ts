import { createPrivateKey, generateKeyPairSync, generatePrimeSync, type KeyObject } from 'node:crypto'
import { CompactSign, exportJWK, type JWK } from 'jose'

// A device-bound session client for tests that need no browser: key pairs the test makes,
// and DBSC proofs (JWS, `typ` "dbsc+jwt") signed with them, well-formed or not, on demand.

export interface TestKey {
  alg: 'ES256' | 'RS256'
  privateKey: KeyObject
  jwk: JWK
}

export async function testKey (alg: 'ES256' | 'RS256' = 'ES256', modulusLength = 2048): Promise<TestKey> {
  const { privateKey, publicKey } = alg === 'ES256'
    ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : generateKeyPairSync('rsa', { modulusLength })
  return { alg, privateKey, jwk: await exportJWK(publicKey) }
}

const big = (n: bigint): string => {
  const hex = n.toString(16)
  return Buffer.from(hex.length % 2 === 0 ? hex : '0' + hex, 'hex').toString('base64url')
}

function inverse (a: bigint, m: bigint): bigint {
  let [r0, r1, s0, s1] = [a % m, m, 1n, 0n]
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1, s0, s1] = [r1, r0 - q * r1, s1, s0 - q * s1]
  }
  return ((s0 % m) + m) % m
}

/** An RSA key of 2048 bits with a public exponent Node will not generate (it stops at 32 bits): `e` a prime. */
export async function rsaKeyWithExponent (e: bigint): Promise<TestKey> {
  for (;;) {
    const p = generatePrimeSync(1024, { bigint: true })
    const q = generatePrimeSync(1024, { bigint: true })
    const phi = (p - 1n) * (q - 1n)
    if (p === q || phi % e === 0n) continue
    const d = inverse(e, phi)
    const jwk = { kty: 'RSA', n: big(p * q), e: big(e), d: big(d), p: big(p), q: big(q), dp: big(d % (p - 1n)), dq: big(d % (q - 1n)), qi: big(inverse(q, p)) }
    const privateKey = createPrivateKey({ key: jwk, format: 'jwk' })
    return { alg: 'RS256', privateKey, jwk: { kty: 'RSA', n: jwk.n, e: jwk.e } }
  }
}

export interface ProofOptions {
  /** The challenge: the payload's jti. */
  jti?: unknown
  /** Put the public key in the header, as at registration. @default false */
  withKey?: boolean
  /** Header members to set (undefined removes one). */
  header?: Record<string, unknown>
  /** The payload, whole, instead of `{ jti }`. */
  payload?: Uint8Array
}

/** A DBSC proof signed with `key`. */
export async function proof (key: TestKey, { jti, withKey = false, header = {}, payload }: ProofOptions): Promise<string> {
  const protectedHeader: Record<string, unknown> = { alg: key.alg, typ: 'dbsc+jwt', ...(withKey ? { jwk: key.jwk } : {}), ...header }
  for (const name of Object.keys(protectedHeader)) if (protectedHeader[name] === undefined) delete protectedHeader[name]
  const body = payload ?? new TextEncoder().encode(JSON.stringify({ jti }))
  return await new CompactSign(body).setProtectedHeader(protectedHeader as { alg: string }).sign(key.privateKey)
}
