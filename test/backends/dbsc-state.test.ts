import fc from 'fast-check'
import t from 'tap'
import {
  decodeDbsc, encodeDbsc, isBound, isPending, MAX_CHALLENGES, newChallenge, pending, withChallenge, type DbscState
} from '../../lib/backends/dbsc-state.js'
import { hashSecret, newSecret } from '../../lib/crypto/ids.js'
import { headerValue } from '../../lib/request/dbsc.js'

// The field a device-bound session keeps in the store: its one canonical spelling, and
// anything else refused (as a session's unreadable settings are), whatever a store gives back.

const x = 'A'.repeat(43)
const KEY = { kty: 'EC', crv: 'P-256', x, y: x } as const
const hash = (): string => hashSecret(newSecret())

t.test('offered and bound states round trip through their one spelling', async (t) => {
  const offered: DbscState = { key: undefined, credentials: [], challenges: [{ value: newChallenge(), until: 5 }] }
  const encoded = encodeDbsc(offered)
  t.match(encoded, /^\{"v":1,"p":\[\["[\w-]{22}",5\]\]\}$/)
  t.same(decodeDbsc(encoded), offered)
  t.equal(isBound(encoded), false)
  const bound: DbscState = { key: KEY, credentials: [{ hash: hash(), at: 2 }, { hash: hash(), at: 1 }], challenges: [] }
  t.same(decodeDbsc(encodeDbsc(bound)), bound)
  t.equal(isBound(encodeDbsc(bound)), true)
  t.equal(isBound(undefined), false)
  const rsa: DbscState = { key: { kty: 'RSA', n: 'AQAB'.repeat(86), e: 'AQAB' }, credentials: [{ hash: hash(), at: 0 }], challenges: [] }
  t.same(decodeDbsc(encodeDbsc(rsa)), rsa)
})

t.test('anything but the canonical form is refused', async (t) => {
  const h = hash()
  const good = encodeDbsc({ key: KEY, credentials: [{ hash: h, at: 1 }], challenges: [] })
  for (const bad of ['', 'null', '[]', '1', '{', '{"v":2,"p":[]}', '{"p":[]}', '{"v":1}', '{"v":1,"p":{}}',
    '{"v":1,"p":[["short",1]]}', `{"v":1,"p":[["${'a'.repeat(22)}",-1]]}`, `{"v":1,"p":[["${'a'.repeat(22)}",1.5]]}`,
    `{"v":1,"p":[["${'a'.repeat(22)}"]]}`, `{"v":1,"p":[${Array(MAX_CHALLENGES + 1).fill(`["${'a'.repeat(22)}",1]`).join(',')}]}`,
    '{"v":1,"c":[],"p":[]}', good.replace('"c":[', '"c":[]').replace(`["${h}",1]]`, ''), good.replace(`["${h}",1]`, `["${h}",1],["${h}",1],["${h}",1]`),
    good.replace('"kty":"EC"', '"kty":"RSA"'), good.replace('{"v":1,', '{"v":1,"z":0,'), good.replace('"x":', '"kid":"k","x":'),
    good.replace(`"${h}"`, '"not a hash"'), good.replace('"v":1', '"v":1.0'), ` ${good}`, good + ' ',
    '{"v":1,"p":[],"__proto__":{"polluted":1}}', `{"v":1,"p":[${'['.repeat(5000)}`, 'x'.repeat(5000)]) {
    t.equal(decodeDbsc(bad), undefined, bad.slice(0, 90))
  }
  t.equal(({} as Record<string, unknown>).polluted, undefined)
  t.ok(decodeDbsc(good))
})

t.test('challenges: pending ones are in time and unused, compared in constant time; at most MAX_CHALLENGES are kept', async (t) => {
  const [a, b, c] = [newChallenge(), newChallenge(), newChallenge()]
  const state: DbscState = { key: undefined, credentials: [], challenges: [{ value: a, until: 10 }, { value: b, until: 20 }] }
  t.equal(isPending(state, a, 9), true)
  t.equal(isPending(state, a, 10), false, 'past its time')
  t.equal(isPending(state, c, 0), false, 'never given')
  t.equal(isPending(state, a.slice(1), 0), false, 'another length')
  t.same(pending(state, 10), [{ value: b, until: 20 }])
  t.same(pending(state, 0, b), [{ value: a, until: 10 }], 'without the one used')
  let list = state.challenges
  for (let i = 0; i < MAX_CHALLENGES + 2; i++) list = withChallenge(list, { value: String(i), until: i })
  t.same(list.map((c) => c.value), ['2', '3', '4', '5'], 'the oldest go first')
  t.not(newChallenge(), newChallenge())
  t.match(newChallenge(), /^[\w-]{22}$/)
})

t.test('property: whatever a store gives back, decoding never throws, and what it reads is what it writes', async (t) => {
  const text = fc.oneof(fc.string({ maxLength: 60 }), fc.json({ maxDepth: 4 }),
    fc.constantFrom(encodeDbsc({ key: KEY, credentials: [{ hash: hash(), at: 1 }], challenges: [] })).chain((s) =>
      fc.tuple(fc.nat(s.length), fc.string({ maxLength: 3 })).map(([at, insert]) => s.slice(0, at) + insert + s.slice(at))))
  let read = 0
  fc.assert(fc.property(text, (s) => {
    const state = decodeDbsc(s)
    if (state !== undefined) {
      read++
      if (encodeDbsc(state) !== s) throw new Error('read a value it would not write')
    }
  }), { numRuns: 3000 })
  t.pass(`${read} values read back`)
})

t.test('property: the DBSC request headers are read as a bare value or a structured-field string, anything else refused', async (t) => {
  t.equal(headerValue('abc.DEF-_1'), 'abc.DEF-_1')
  t.equal(headerValue('"abc.def"'), 'abc.def')
  t.equal(headerValue(' "abc";id="x" '), 'abc', 'parameters are ignored')
  t.equal(headerValue('abc;x=1'), 'abc')
  for (const bad of [undefined, ['a', 'b'], '', '""', '"a', 'a"', '"a\\"b"', 'a b', 'a,b', '"a" b', 'é']) {
    t.equal(headerValue(bad as string | undefined), undefined, JSON.stringify(bad))
  }
  fc.assert(fc.property(fc.string({ maxLength: 80 }), (s) => {
    const value = headerValue(s)
    if (value !== undefined && !/^[A-Za-z0-9._-]+$/.test(value)) throw new Error(`read ${JSON.stringify(value)} from ${JSON.stringify(s)}`)
  }), { numRuns: 3000 })
  fc.assert(fc.property(fc.stringMatching(/^[A-Za-z0-9._-]{1,40}$/), (v) => headerValue(v) === v && headerValue(`"${v}"`) === v))
})
