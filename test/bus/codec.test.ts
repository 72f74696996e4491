import fc from 'fast-check'
import t from 'tap'
import type { Revocation } from '../../lib/bus/bus.js'
import { decode, encode, fitted, MAX_MESSAGE_BYTES, revocationKey, sessionKey } from '../../lib/bus/codec.js'
import { newSessionId } from '../../lib/crypto/ids.js'
import { testTag } from '../helpers/ids.js'
import { revocationOf } from '../helpers/bus.js'

// The wire format of the revocation buses: what a bus sends comes back the same, and what
// anyone else puts on the channel is dropped, never thrown.

t.test('round trip: ids, user-wide with except, every reason', async (t) => {
  const anonymous = revocationOf(undefined)
  t.same(decode(encode(anonymous)), anonymous)
  const alice = { ...revocationOf('alice', 3), reason: 'deleteAll' } as const
  t.same(decode(encode(alice)), alice)
  const wide: Revocation = { ids: [], userId: 'bob', except: [newSessionId(testTag('bob'))], reason: 'deleteAll', at: 1 }
  t.same(decode(encode(wide)), wide)
  for (const reason of ['delete', 'deleteAll', 'destroy', 'replaced', 'evicted', 'expired'] as const) {
    t.equal(decode(encode({ ...alice, reason }))?.reason, reason)
  }
  t.match(encode(alice), /^\{"i":\[.*\],"r":"deleteAll","a":\d+\}$/, 'short keys, nothing else')
  t.notOk('userId' in (decode(encode(alice)) as object), 'no key for what was not sent')
  t.same(decode('{"i":[],"u":"carol","r":"expired","a":0,"later":1}'), { ids: [], userId: 'carol', reason: 'expired', at: 0 },
    'a key of a later version is ignored')
})

t.test('malformed messages are dropped', async (t) => {
  const id = newSessionId(testTag('alice'))
  const anon = newSessionId(undefined)
  const good = { i: [id], r: 'delete', a: 5 }
  const bad: unknown[] = [
    'not json', '', 'null', '[]', '"x"', '42',
    { ...good, i: 'x' }, { ...good, i: [1] }, { ...good, i: ['not-an-id'] }, { ...good, i: undefined },
    { ...good, u: 7 }, { ...good, u: '' }, { ...good, u: 'é'.repeat(129) },
    { ...good, x: 'x' }, { ...good, x: [1] },
    { ...good, r: 'other' }, { ...good, r: 1 }, { ...good, r: undefined },
    { ...good, a: -1 }, { ...good, a: 1.5 }, { ...good, a: '5' }, { ...good, a: 2 ** 53 },
    { ...good, i: [] }, // neither a user nor an id: concerns nobody
    { ...good, i: [id, anon] }, // two routing units
    { ...good, i: [anon, newSessionId(undefined)] },
    { ...good, i: [id, newSessionId(testTag('bob'))] } // two users' ids
  ]
  for (const message of bad) {
    const text = typeof message === 'string' ? message : JSON.stringify(message)
    t.equal(decode(text), undefined, text)
  }
  t.ok(decode(JSON.stringify(good)), 'the good one passes')
  t.ok(decode(JSON.stringify({ ...good, i: [], u: 'é'.repeat(128) })), 'a user id of 256 bytes passes')
})

t.test('decode never throws and accepts only what encode could have sent', async () => {
  fc.assert(fc.property(fc.oneof(fc.string(), fc.json(), fc.jsonValue().map((v) => JSON.stringify(v))), (text) => {
    const revocation = decode(text)
    if (revocation !== undefined && decode(encode(revocation)) === undefined) throw new Error('not stable: ' + text)
  }), { numRuns: 2000 })
  fc.assert(fc.property(fc.string({ minLength: 1, maxLength: 40 }), fc.integer({ min: 0, max: 5 }), (userId, n) => {
    const revocation = revocationOf(userId, n + 1)
    const back = decode(encode(revocation))
    if (JSON.stringify(back) !== JSON.stringify(revocation)) throw new Error('round trip lost ' + JSON.stringify(revocation))
  }))
})

t.test('routing keys: the user\'s tag, or the anonymous id', async (t) => {
  const anon = newSessionId(undefined)
  const id = newSessionId(testTag('alice'))
  t.equal(sessionKey(anon), anon)
  t.equal(sessionKey(id), testTag('alice'))
  t.equal(revocationKey({ ids: [anon], reason: 'delete', at: 0 }), anon)
  t.equal(revocationKey({ ids: [id], userId: 'alice', reason: 'delete', at: 0 }), testTag('alice'))
  t.equal(revocationKey({ ids: [], userId: 'alice', reason: 'deleteAll', at: 0 }), undefined, 'user-wide: the bus asks its store for the tag')
  t.equal(revocationKey({ ids: [], reason: 'deleteAll', at: 0 }), undefined, 'one that names nobody')
})

t.test('fitted: a revocation too large to send becomes user-wide', async (t) => {
  const small = revocationOf('alice', 3)
  t.equal(fitted(small, MAX_MESSAGE_BYTES), small, 'a small one is sent as it is')
  const large = { ...revocationOf('alice', 400), userId: 'alice', except: [newSessionId(testTag('alice'))] }
  t.ok(encode(large).length > MAX_MESSAGE_BYTES)
  const wide = fitted(large, MAX_MESSAGE_BYTES)
  t.same(wide, { ids: [], userId: 'alice', except: large.except, reason: 'delete', at: large.at })
  t.ok(Buffer.byteLength(encode(wide)) <= MAX_MESSAGE_BYTES)
  t.same(fitted({ ...large, except: undefined }, MAX_MESSAGE_BYTES).except, [], 'no except: none kept')
  const unnamed = { ...large, userId: undefined }
  t.equal(fitted(unnamed, MAX_MESSAGE_BYTES), unnamed, 'no user named: an id does not say whose it is, so it is sent as it is')
  const hugeExcept = { ...revocationOf('alice', 1), userId: 'alice', except: Array.from({ length: 400 }, () => newSessionId(testTag('alice'))) }
  t.same(fitted(hugeExcept, MAX_MESSAGE_BYTES), { ids: [], userId: 'alice', reason: 'delete', at: hugeExcept.at },
    'except goes too when even the user-wide one is too large')
  const anonymous = revocationOf(undefined)
  t.equal(fitted(anonymous, 10), anonymous, 'one anonymous id cannot be said more briefly')
  t.same(fitted({ ids: [], reason: 'delete', at: 0 }, 10), { ids: [], reason: 'delete', at: 0 })
  const unicode = { ...revocationOf('é'.repeat(100), 30), userId: 'é'.repeat(100) }
  t.ok(Buffer.byteLength(encode(fitted(unicode, 2000))) <= 2000, 'the limit is in bytes')
})
