import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import t from 'tap'
import { loadSodium, nodeAead, pickAead, sodiumAead, TAG_BYTES, type Aead } from '../../lib/crypto/aead.js'
import { CookieStore } from '../../lib/index.js'
import { Sealer } from '../../lib/crypto/seal.js'
import { buildApp, cookieOf, SECRET } from '../helpers/app.js'

// Both implementations of ChaCha20-Poly1305 must give the same bytes: processes with and
// without sodium-native share cookies. sodium-native is a dev dependency (through
// @fastify/secure-session), so the suite runs both.

const sodium = loadSodium()
const implementations: Aead[] = sodium === undefined ? [nodeAead] : [nodeAead, sodiumAead(sodium)]
if (sodium === undefined) t.comment('sodium-native cannot be loaded here: only node:crypto is tested')

function seal (aead: Aead, plaintext: Buffer, aad: Buffer, nonce: Buffer, key: Buffer): Buffer {
  const out = Buffer.alloc(plaintext.length + TAG_BYTES)
  aead.seal(out, plaintext, aad, nonce, key)
  return out
}

t.test('RFC 8439 §2.8.2: the AEAD test vector, by each implementation', async (t) => {
  const key = Buffer.from('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f', 'hex')
  const nonce = Buffer.from('070000004041424344454647', 'hex')
  const aad = Buffer.from('50515253c0c1c2c3c4c5c6c7', 'hex')
  const plaintext = Buffer.from("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.")
  const expected = 'd31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b' +
    '1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de' +
    '576d26586cec64b6116' + '1ae10b594f09e26a7e902ecbd0600691'
  for (const aead of implementations) {
    t.equal(seal(aead, plaintext, aad, nonce, key).toString('hex'), expected, `${aead.name}: ciphertext ‖ tag`)
    t.equal(aead.open(Buffer.from(expected, 'hex'), aad, nonce, key)?.toString(), plaintext.toString(), `${aead.name}: opens`)
  }
})

t.test('property: each implementation opens what the other sealed, byte for byte, and nothing altered', { skip: sodium === undefined && 'needs sodium-native' }, async (t) => {
  const [node, native] = implementations as [Aead, Aead]
  fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), fc.uint8Array({ maxLength: 64 }), fc.nat(), (bytes, aadBytes, flip) => {
    const plaintext = Buffer.from(bytes)
    const aad = Buffer.from(aadBytes)
    const key = randomBytes(32)
    const nonce = randomBytes(12)
    const a = seal(node, plaintext, aad, nonce, key)
    const b = seal(native, plaintext, aad, nonce, key)
    if (!a.equals(b)) throw new Error('the implementations disagree')
    if (!native.open(a, aad, nonce, key)?.equals(plaintext) || !node.open(b, aad, nonce, key)?.equals(plaintext)) throw new Error('round trip')
    const altered = Buffer.from(a)
    const i = flip % altered.length
    altered[i] = (altered[i] as number) ^ (1 << (flip % 8))
    for (const aead of implementations) {
      if (aead.open(altered, aad, nonce, key) !== undefined) throw new Error(`${aead.name} opened an altered seal`)
      if (aead.open(a, Buffer.concat([aad, Buffer.from([0])]), nonce, key) !== undefined) throw new Error(`${aead.name}: other aad`)
      if (aead.open(a, aad, randomBytes(12), key) !== undefined) throw new Error(`${aead.name}: other nonce`)
    }
  }), { numRuns: 500 })
})

t.test('cookies sealed by one implementation open with the other, under the same secrets', { skip: sodium === undefined && 'needs sodium-native' }, async (t) => {
  const [node, native] = implementations as [Aead, Aead]
  const a = new Sealer([SECRET], 'sid', Date.now, node)
  const b = new Sealer(['a-newer-secret-of-thirty-two-bytes!!', SECRET], 'sid', Date.now, native)
  t.equal(a.aead, 'node:crypto')
  t.equal(b.aead, 'sodium-native')
  t.same(b.open(a.seal('from node')), { plaintext: 'from node', renew: true }, 'an older secret opens, and asks for a new seal')
  t.same(a.open(b.seal('from sodium')), undefined, 'sealed with a secret the other does not know')
  const c = new Sealer([SECRET], 'sid', Date.now, native)
  t.same(a.open(c.seal('héllo')), { plaintext: 'héllo', renew: false })
  t.same(c.open(a.seal('wörld')), { plaintext: 'wörld', renew: false })
})

t.test('loadSodium: sodium-native when it loads and has the AEAD, undefined otherwise', async (t) => {
  t.equal(loadSodium(() => { throw new Error('Cannot find module') }), undefined, 'not installed')
  t.equal(loadSodium(() => ({})), undefined, 'something else under the name')
  t.equal(loadSodium(() => null), undefined)
  const fake = { crypto_aead_chacha20poly1305_ietf_encrypt () {}, crypto_aead_chacha20poly1305_ietf_decrypt () {} }
  t.equal(loadSodium(() => fake), fake)
})

t.test('the crypto option: auto, or insist on one; anything else is a typed error at start', async (t) => {
  const missing = (): undefined => undefined
  t.equal(pickAead('node:crypto', () => { throw new Error('must not even try to load sodium-native') }).name, 'node:crypto')
  t.equal(pickAead('auto', missing).name, 'node:crypto', 'auto without sodium-native')
  t.throws(() => pickAead('sodium-native', missing),
    { code: 'FST_SESSION_OPTION_INVALID', message: /storeOptions\.crypto.*'sodium-native' cannot be loaded: npm install sodium-native/ })
  for (const bad of ['sodium', '', 1, null]) {
    t.throws(() => pickAead(bad), { code: 'FST_SESSION_OPTION_INVALID', message: /storeOptions\.crypto.*must be one of 'auto', 'sodium-native', 'node:crypto'/ }, String(bad))
  }
  const context = { clock: Date.now, log: console as never, maxSessionsPerUser: 1, secrets: [SECRET], cookieName: 'sid' }
  t.equal(new CookieStore({}, context).crypto, sodium === undefined ? 'node:crypto' : 'sodium-native', 'auto')
  t.equal(new CookieStore({ crypto: 'node:crypto' }, context).crypto, 'node:crypto')
  if (sodium !== undefined) t.equal(new CookieStore({ crypto: 'sodium-native' }, context).crypto, 'sodium-native')
  t.throws(() => new CookieStore({ crypto: 'aes' as never }, context), { code: 'FST_SESSION_OPTION_INVALID' })
})

t.test('through the app: a process on node:crypto and one on sodium-native share their cookies', { skip: sodium === undefined && 'needs sodium-native' }, async (t) => {
  const plain = await buildApp({ store: 'cookie', storeOptions: { crypto: 'node:crypto', revocation: 'memory' } })
  const native = await buildApp({ store: 'cookie', storeOptions: { crypto: 'sodium-native', revocation: 'memory' } })
  t.teardown(() => Promise.all([plain.close(), native.close()]))
  const fromPlain = cookieOf(await plain.inject({ method: 'POST', url: '/login', payload: { user: 'alice' } }))
  t.equal((await native.inject({ url: '/me', headers: { cookie: fromPlain } })).json().userId, 'alice')
  const fromNative = cookieOf(await native.inject({ method: 'POST', url: '/login', payload: { user: 'bob' } }))
  t.equal((await plain.inject({ url: '/me', headers: { cookie: fromNative } })).json().userId, 'bob')
})
