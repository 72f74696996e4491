import t from 'tap'
import fc from 'fast-check'
import { parseToken, isSessionId, secretMatches, hashSecret, newSecret } from '../../lib/crypto/ids.js'
import { buildApp, cookieOf } from '../helpers/app.js'

t.test('property: parseToken never throws and only accepts the exact shape', async () => {
  fc.assert(fc.property(fc.string({ maxLength: 500 }), (s) => {
    const parsed = parseToken(s)
    if (parsed !== undefined) {
      if (!isSessionId(parsed.id) || parsed.secret.length !== 43) throw new Error('accepted a bad shape')
    }
  }), { numRuns: 2000 })
})

t.test('parseToken: the id and the secret must both have their shape', async (t) => {
  const id = 'A'.repeat(22)
  t.same(parseToken(`${id}.${'B'.repeat(43)}`), { id, secret: 'B'.repeat(43) })
  t.equal(parseToken(`${id}.${'B'.repeat(42)}!`), undefined, 'bad secret characters')
  t.equal(parseToken(`${id}.${'B'.repeat(42)}`), undefined, 'short secret')
  t.equal(parseToken(`${'A'.repeat(21)}.${'B'.repeat(43)}`), undefined, 'short id')
  t.equal(parseToken(`.${id}.${'B'.repeat(43)}`), undefined, 'empty tag')
  t.equal(parseToken(`a!b.${id}.${'B'.repeat(43)}`), undefined, 'bad tag')
  t.equal(parseToken(`YQ.${id}.${'B'.repeat(43)}`), undefined, 'a user key of 0.1 (base64url of the user id): not a tag')
  t.equal(parseToken(`${'C'.repeat(21)}!.${id}.${'B'.repeat(43)}`), undefined, 'a tag of the length but not the alphabet')
  t.same(parseToken(`${'C'.repeat(22)}.${id}.${'B'.repeat(43)}`), { id: `${'C'.repeat(22)}.${id}`, secret: 'B'.repeat(43) })
})

t.test('secretMatches compares hashes of any input without throwing', async (t) => {
  const secret = newSecret()
  t.equal(secretMatches(hashSecret(secret), secret), true)
  fc.assert(fc.property(fc.string({ maxLength: 100 }), (s) => secretMatches(hashSecret(secret), s) === (s === secret)))
  t.equal(secretMatches('short', secret), false)
})

t.test('property: random and bit-flipped cookies never authenticate and never 500', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())
  const login = await app.inject({ method: 'POST', url: '/login', payload: { user: 'alice' } })
  const value = (cookieOf(login) as string).slice(4)
  const raw = decodeURIComponent(value)
  await fc.assert(fc.asyncProperty(
    fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.string({ unit: 'binary', maxLength: 120 }),
      fc.nat({ max: raw.length - 1 }).chain((i) => fc.integer({ min: 1, max: 127 }).map((x) =>
        raw.slice(0, i) + String.fromCharCode(raw.charCodeAt(i) ^ x) + raw.slice(i + 1)))
    ),
    async (mutated) => {
      if (mutated === raw) return
      const res = await app.inject({ url: '/me', headers: { cookie: `sid=${encodeURIComponent(mutated)}` } })
      if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`)
      if (res.json().userId !== null) throw new Error('a mutated cookie authenticated')
    }), { numRuns: 500 })
  t.equal((await app.inject({ url: '/me', headers: { cookie: `sid=${value}` } })).json().userId, 'alice')
})
