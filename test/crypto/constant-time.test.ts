import * as crypto from 'node:crypto'
import t from 'tap'

// Constant-time comparison is a property of the code, not of an output: prove that the secret
// check goes through crypto.timingSafeEqual (CVE-2016-1000236). Server-side stores' cookies carry
// no signature (SECURITY.md); the cookie store relies on its AEAD's tag check.

t.test('the secret check compares with timingSafeEqual', async (t) => {
  const calls: number[] = []
  const ids = await t.mockImport<typeof import('../../lib/crypto/ids.js')>('../../lib/crypto/ids.js', {
    'node:crypto': { ...crypto, timingSafeEqual: (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => { calls.push(a.byteLength); return crypto.timingSafeEqual(a, b) } }
  })
  const secret = ids.newSecret()
  t.equal(ids.secretMatches(ids.hashSecret(secret), secret), true)
  t.equal(ids.secretMatches(ids.hashSecret(secret), ids.newSecret()), false)
  t.same(calls, [43, 43], 'both comparisons, of equal-length hashes, were constant-time')
})
