import fc from 'fast-check'
import t from 'tap'
import { isLegacyId, isSessionId, newOwnerKey, newSecret, newSessionId, normalizeUserId, parseToken, tagOf, userTag } from '../../lib/crypto/ids.js'

// User ids come from the app, but often from the network first (a login form, an OAuth
// subject). Whatever they hold, a user id is refused with a typed error or maps to one tag, of
// one shape, that a session id carries and a token splits back out.

const userIds = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 80 }),
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.string({ minLength: 250, maxLength: 300 }),
  fc.constantFrom('', '\ud800', 'a\udc00', 'x\ud83d', '{a}', 'a.b', '*', '[x]', 'a:b', '__proto__', '\u0000'),
  fc.integer(),
  fc.double(),
  fc.constantFrom(null, undefined, true, {}, [], 2 ** 53)
)

t.test('property: a user id is refused with a typed error or gives a tag the session id carries', async (t) => {
  const ownerKey = newOwnerKey()
  let accepted = 0
  let refused = 0
  fc.assert(fc.property(userIds, (raw) => {
    let id: string
    try {
      id = normalizeUserId(raw)
    } catch (err) {
      if ((err as { code?: string }).code !== 'FST_SESSION_USER_ID_INVALID') throw err
      refused++
      return
    }
    accepted++
    if (id !== (typeof raw === 'number' ? String(raw) : raw)) throw new Error('normalizeUserId changed the id')
    const tag = userTag(ownerKey, id)
    if (!/^[A-Za-z0-9_-]{22}$/.test(tag)) throw new Error(`tag ${tag} is not 22 base64url characters`)
    if (tag !== userTag(ownerKey, id)) throw new Error('the tag is not the same twice')
    const sessionId = newSessionId(tag)
    if (!isSessionId(sessionId) || tagOf(sessionId) !== tag || isLegacyId(sessionId, id)) throw new Error('the session id does not carry the tag')
    const secret = newSecret()
    const token = parseToken(`${sessionId}.${secret}`)
    if (token?.id !== sessionId || token.secret !== secret) throw new Error('the token does not split back into id and secret')
  }), { numRuns: 3000 })
  t.ok(accepted > 0 && refused > 0, `both outcomes exercised: ${accepted} accepted, ${refused} refused`)
})

t.test('property: isSessionId accepts exactly the shapes newSessionId makes', async (t) => {
  const shaped = fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{22}$/), fc.stringMatching(/^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{22}$/),
    fc.stringMatching(/^[A-Za-z0-9_-]{1,30}\.[A-Za-z0-9_-]{22}$/))
  const near = fc.oneof(
    fc.string({ maxLength: 400 }),
    fc.string({ unit: 'binary', maxLength: 60 }),
    shaped,
    // One character replaced, inserted or removed.
    fc.tuple(shaped, fc.nat(), fc.constantFrom('+', '/', '=', '.', '!', ' ', '{', '\u00e9', 'A', ''), fc.boolean())
      .map(([id, at, c, insert]) => id.slice(0, at % id.length) + c + id.slice(at % id.length + (insert ? 0 : 1)))
  )
  let accepted = 0
  fc.assert(fc.property(near, (s) => {
    if (!isSessionId(s)) return
    accepted++
    const dot = s.indexOf('.')
    const random = dot === -1 ? s : s.slice(dot + 1)
    if (!/^[A-Za-z0-9_-]{22}$/.test(random)) throw new Error(`accepted ${JSON.stringify(s)}`)
    if (dot !== -1 && !/^[A-Za-z0-9_-]{22}$/.test(s.slice(0, dot))) throw new Error(`accepted ${JSON.stringify(s)}`)
  }), { numRuns: 5000 })
  t.ok(accepted > 0, `${accepted} generated ids had the shape and were accepted`)
  t.ok(isSessionId(newSessionId(undefined)), 'an anonymous id')
  t.notOk(isSessionId('YWxpY2UubGlkZGVsbEBleGFtcGxlLmNvbQ.' + newSessionId(undefined)), 'an id of the format before 0.2, user id in clear, of another length than a tag')
})
