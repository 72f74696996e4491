import { createSecretKey, generateKeyPairSync, sign } from 'node:crypto'
import { CompactSign, exportJWK } from 'jose'
import t from 'tap'
import { algorithmOf, dbscKey, MAX_PROOF_LENGTH, verifyRefresh, verifyRegistration, type DbscKey } from '../../lib/crypto/dbsc-proof.js'
import { proof, rsaKeyWithExponent, testKey } from '../helpers/dbsc.js'

// The checks of DBSC proofs, with keys the test makes: what a registration and a refresh must
// hold, and every way one can fail, each a refusal with a reason, never an exception.

const BOTH = ['ES256', 'RS256'] as const
const b64 = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')

t.test('a registration proof signed by the key in its header: the challenge and the key, reduced to its defining members', async (t) => {
  for (const alg of BOTH) {
    const key = await testKey(alg)
    const checked = await verifyRegistration(await proof(key, { jti: 'challenge-1', withKey: true }), BOTH)
    t.ok(checked.ok, alg)
    if (!checked.ok) continue
    t.equal(checked.value.jti, 'challenge-1')
    t.same(checked.value.key, alg === 'ES256'
      ? { kty: 'EC', crv: 'P-256', x: key.jwk.x, y: key.jwk.y }
      : { kty: 'RSA', n: key.jwk.n, e: key.jwk.e })
    t.equal(algorithmOf(checked.value.key), alg)
    const refreshed = await verifyRefresh(await proof(key, { jti: 'challenge-2' }), checked.value.key, BOTH)
    t.same(refreshed, { ok: true, value: 'challenge-2' }, `${alg}: a refresh proof signed by the registered key`)
  }
  const withExtras = await testKey('ES256')
  const checked = await verifyRegistration(await proof(withExtras, { jti: 'c', withKey: true, header: { jwk: { ...withExtras.jwk, kid: 'k', use: 'sig' } } }), BOTH)
  t.same(checked.ok && Object.keys(checked.value.key), ['kty', 'crv', 'x', 'y'], 'members beyond those are not kept')
})

t.test('registration refusals: wrong alg, wrong typ, no or a bad key, a malformed header or payload', async (t) => {
  const es = await testKey('ES256')
  const rs = await testKey('RS256')
  const refused = async (name: string, jws: string, reason: RegExp | string, algorithms: ReadonlyArray<'ES256' | 'RS256'> = BOTH): Promise<void> => {
    const checked = await verifyRegistration(jws, algorithms)
    t.notOk(checked.ok, name)
    if (!checked.ok) t.match(checked.reason, reason, `${name}: ${checked.reason}`)
  }
  await refused('an algorithm the server did not offer', await proof(rs, { jti: 'c', withKey: true }), /ERR_JOSE_ALG_NOT_ALLOWED/, ['ES256'])
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' })
  await refused('ES384', await new CompactSign(new TextEncoder().encode('{"jti":"c"}'))
    .setProtectedHeader({ alg: 'ES384', typ: 'dbsc+jwt', jwk: await exportJWK(p384.publicKey) }).sign(p384.privateKey), /ERR_JOSE_ALG_NOT_ALLOWED/)
  await refused('HS256', await new CompactSign(new TextEncoder().encode('{"jti":"c"}'))
    .setProtectedHeader({ alg: 'HS256', typ: 'dbsc+jwt' }).sign(createSecretKey(Buffer.alloc(32, 1))), /ERR_JOSE_ALG_NOT_ALLOWED/)
  await refused('alg none, unsigned', `${b64({ alg: 'none', typ: 'dbsc+jwt', jwk: es.jwk })}.${b64({ jti: 'c' })}.`, /ERR_JOSE_ALG_NOT_ALLOWED/)
  await refused('alg ES256 over an RSA key', `${b64({ alg: 'ES256', typ: 'dbsc+jwt', jwk: rs.jwk })}.${b64({ jti: 'c' })}.AAAA`, /ERR_JOSE_NOT_SUPPORTED|ERR_JWK_INVALID|TypeError|ERR/)
  await refused('wrong typ', await proof(es, { jti: 'c', withKey: true, header: { typ: 'JWT' } }), 'typ is not dbsc+jwt')
  await refused('no typ', await proof(es, { jti: 'c', withKey: true, header: { typ: undefined } }), 'typ is not dbsc+jwt')
  await refused('no key in the header', await proof(es, { jti: 'c' }), /ERR_JWS_INVALID/)
  await refused('a key that did not sign it', await proof(es, { jti: 'c', withKey: true, header: { jwk: (await testKey('ES256')).jwk } }),
    'ERR_JWS_SIGNATURE_VERIFICATION_FAILED')
  const { d: _d, ...publicPart } = (await exportJWK(es.privateKey))
  t.same(publicPart, es.jwk)
  await refused('a private key in the header', await proof(es, { jti: 'c', withKey: true, header: { jwk: await exportJWK(es.privateKey) } }), /ERR_JWS_INVALID/)
  const p256 = { ...es.jwk, crv: 'P-256' }
  await refused('a key of another kind than the alg says', await proof(es, { jti: 'c', withKey: true, header: { jwk: { ...p256, kty: 'OKP' } } }), /ERR/)
  const small = await testKey('RS256', 1024)
  const input = `${b64({ alg: 'RS256', typ: 'dbsc+jwt', jwk: small.jwk })}.${b64({ jti: 'c' })}`
  await refused('an RSA key under 2048 bits', `${input}.${sign('sha256', Buffer.from(input), small.privateKey).toString('base64url')}`, 'malformed')
  await refused('an RSA key with a public exponent too large to keep', await proof(await rsaKeyWithExponent(2n ** 61n - 1n), { jti: 'c', withKey: true }),
    'a key too large to keep')
  await refused('no jti', await proof(es, { withKey: true }), 'no jti')
  await refused('a jti that is not a string', await proof(es, { jti: 42, withKey: true }), 'no jti')
  await refused('an empty jti', await proof(es, { jti: '', withKey: true }), 'no jti')
  await refused('a jti too long', await proof(es, { jti: 'x'.repeat(257), withKey: true }), 'no jti')
  await refused('a payload that is not JSON', await proof(es, { withKey: true, payload: new TextEncoder().encode('{jti') }), 'payload is not JSON')
  await refused('a payload that is not UTF-8', await proof(es, { withKey: true, payload: Uint8Array.of(0xff, 0xfe) }), 'payload is not JSON')
  await refused('a payload that is null', await proof(es, { withKey: true, payload: new TextEncoder().encode('null') }), 'no jti')
  for (const [name, jws] of [['empty', ''], ['one part', 'abc'], ['two parts', 'a.b'], ['four parts', 'a.b.c.d'],
    ['a header that is not base64url', '!!.e30.AAAA'], ['a header that is not JSON', `${b64('{alg')}.e30.AAAA`],
    ['a header that is an array', `${b64([1])}.e30.AAAA`], ['a crit header', `${b64({ alg: 'ES256', typ: 'dbsc+jwt', jwk: es.jwk, crit: ['x'], x: 1 })}.e30.AAAA`]] as const) {
    await refused(name, jws, /ERR|malformed/)
  }
  await refused('a proof too long to read', 'a'.repeat(MAX_PROOF_LENGTH + 1), 'too long')
})

t.test('refresh refusals: a key swapped or added, wrong alg or typ, an algorithm no longer offered, malformed', async (t) => {
  const es = await testKey('ES256')
  const key = dbscKey(es.jwk) as DbscKey
  const refused = async (name: string, jws: string, reason: RegExp | string, stored: DbscKey = key,
    algorithms: ReadonlyArray<'ES256' | 'RS256'> = BOTH): Promise<void> => {
    const checked = await verifyRefresh(jws, stored, algorithms)
    t.notOk(checked.ok, name)
    if (!checked.ok) t.match(checked.reason, reason, `${name}: ${checked.reason}`)
  }
  const other = await testKey('ES256')
  await refused('signed by another key (swapped at refresh)', await proof(other, { jti: 'c' }), 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED')
  await refused('another key, announced in the header', await proof(other, { jti: 'c', withKey: true }), 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED')
  await refused('the registered key in the header: refresh proofs carry none', await proof(es, { jti: 'c', withKey: true }), 'a refresh proof carries a key')
  await refused('an RSA signature for an EC key', await proof(await testKey('RS256'), { jti: 'c' }), 'ERR_JOSE_ALG_NOT_ALLOWED')
  await refused('wrong typ', await proof(es, { jti: 'c', header: { typ: 'jwt' } }), 'typ is not dbsc+jwt')
  await refused('the session\'s algorithm is no longer offered', await proof(es, { jti: 'c' }), 'no longer offered', key, ['RS256'])
  await refused('a stored key that is not a key', await proof(es, { jti: 'c' }), /ERR|malformed/, { kty: 'EC', crv: 'P-256', x: 'A'.repeat(43), y: 'A'.repeat(43) })
  await refused('malformed', 'not.a.jws', /ERR|malformed/)
  await refused('too long', 'a'.repeat(MAX_PROOF_LENGTH + 1), 'too long')
  await refused('no jti', await proof(es, {}), 'no jti')
})

t.test('dbscKey keeps P-256 and RSA public keys only, by their defining members', async (t) => {
  const x = 'A'.repeat(43)
  t.same(dbscKey({ kty: 'EC', crv: 'P-256', x, y: x, kid: 'k' }), { kty: 'EC', crv: 'P-256', x, y: x })
  t.same(dbscKey({ kty: 'RSA', n: 'AQAB'.repeat(86), e: 'AQAB', alg: 'RS256' }), { kty: 'RSA', n: 'AQAB'.repeat(86), e: 'AQAB' })
  for (const jwk of [null, 'key', 1, {}, { kty: 'EC', crv: 'P-384', x, y: x }, { kty: 'EC', crv: 'P-256', x: x + 'A', y: x },
    { kty: 'EC', crv: 'P-256', x: 'A+'.repeat(21) + 'A', y: x }, { kty: 'EC', crv: 'P-256', x }, { kty: 'RSA', n: 'A'.repeat(1367), e: 'AQAB' },
    { kty: 'RSA', n: 'AQAB', e: 'A'.repeat(9) }, { kty: 'RSA', n: 1, e: 'AQAB' }, { kty: 'oct', k: 'AAAA' }]) {
    t.equal(dbscKey(jwk), undefined, JSON.stringify(jwk))
  }
})
