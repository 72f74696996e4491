import * as crypto from 'node:crypto'
import t from 'tap'

// Constant-time comparison is a property of the code, not of an output: prove that the secret
// check and the cookie signature check go through crypto.timingSafeEqual (CVE-2016-1000236).

t.test('the secret check compares with timingSafeEqual', async (t) => {
  const calls: number[] = []
  const ids = await t.mockImport<typeof import('../lib/ids.js')>('../lib/ids.js', {
    'node:crypto': { ...crypto, timingSafeEqual: (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => { calls.push(a.byteLength); return crypto.timingSafeEqual(a, b) } }
  })
  const secret = ids.newSecret()
  t.equal(ids.secretMatches(ids.hashSecret(secret), secret), true)
  t.equal(ids.secretMatches(ids.hashSecret(secret), ids.newSecret()), false)
  t.same(calls, [43, 43], 'both comparisons, of equal-length hashes, were constant-time')
})

t.test('the cookie signature is checked with timingSafeEqual', async (t) => {
  const { Signer } = await import('@fastify/cookie')
  const original = crypto.timingSafeEqual
  let calls = 0
  const signer = new Signer(['x'.repeat(32)])
  const signed = signer.sign('value')
  // @fastify/cookie's signer is CommonJS and reads crypto.timingSafeEqual at call time.
  const cjsCrypto = (await import('node:module')).createRequire(import.meta.url)('node:crypto') as typeof crypto
  cjsCrypto.timingSafeEqual = (a, b) => { calls++; return original(a, b) }
  t.teardown(() => { cjsCrypto.timingSafeEqual = original })
  t.equal(signer.unsign(signed).valid, true)
  t.equal(signer.unsign(signed.slice(0, -1) + (signed.endsWith('A') ? 'B' : 'A')).valid, false)
  t.equal(calls, 2)
})
