// The fuzzer's inputs, as fast-check arbitraries. A case is a plain description (which
// mutation, at which position, of which pool cookie), generated from the run's seed and the
// case's index alone, so `--seed S --case N` regenerates it; the cookies it applies to are
// those the live server issued in this run.
import fc from 'fast-check'

/** Node's default --max-http-header-size. */
export const HEADER_LIMIT = 16_384

export const HOSTILE_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty',
  '__defineGetter__', 'isPrototypeOf', 'then', 'length']
export const JUNK_NAMES = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'alt', 'SID',
  'sid2', 'Sid', '__Host-sid', '$sid', 'sid ', 'si d']
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_='

/** A 32-bit seed for case `i` of the run seeded with `seed` (murmur3's finaliser). */
export function caseSeed (seed, i) {
  let h = (seed ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0
  return (h ^ (h >>> 16)) | 0
}

const pos = fc.nat({ max: 1 << 20 }) // a position, taken modulo the length it applies to
const rec = (op, fields) => fc.record({ op: fc.constant(op), ...fields })

export const mutation = fc.oneof(
  { weight: 4, arbitrary: rec('flip', { at: pos, bit: fc.nat({ max: 7 }) }) },
  { weight: 2, arbitrary: rec('set', { at: pos, byte: fc.nat({ max: 255 }) }) },
  { weight: 3, arbitrary: rec('alphabet', { at: pos, char: fc.constantFrom(...B64) }) },
  { weight: 2, arbitrary: rec('truncate', { at: pos }) },
  { weight: 2, arbitrary: rec('delete', { at: pos, len: fc.integer({ min: 1, max: 8 }) }) },
  { weight: 2, arbitrary: rec('insert', { at: pos, text: fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 8 }) }) },
  { weight: 1, arbitrary: rec('dup', { at: pos, len: fc.integer({ min: 1, max: 24 }) }) },
  { weight: 3, arbitrary: rec('reorder', { keys: fc.array(fc.nat(), { minLength: 6, maxLength: 6 }) }) },
  { weight: 4, arbitrary: rec('swapPart', { part: fc.nat({ max: 5 }), other: fc.nat() }) },
  { weight: 2, arbitrary: rec('splice', { other: fc.nat(), at: pos }) },
  { weight: 3, arbitrary: rec('bodyFlip', { at: pos, bit: fc.nat({ max: 7 }) }) },
  { weight: 2, arbitrary: rec('bodySwap', { other: fc.nat(), which: fc.constantFrom('head16', 'tail16', 'middle') }) },
  { weight: 1, arbitrary: rec('case', { at: pos }) },
  { weight: 2, arbitrary: rec('pct', { at: pos, broken: fc.boolean() }) },
  { weight: 1, arbitrary: rec('wrap', { left: fc.constantFrom('"', ' ', '\t', '', '%20', '='), right: fc.constantFrom('"', ' ', '', ';', ',', '=') }) },
  { weight: 1, arbitrary: rec('dropPart', { part: fc.nat({ max: 5 }) }) },
  { weight: 1, arbitrary: rec('padding', { n: fc.integer({ min: 1, max: 3 }) }) }
)

const source = fc.constantFrom('user', 'user', 'anon')
const bytesArb = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 64 }),
  fc.uint8Array({ minLength: 1, maxLength: 16 }).map((a) => a.map((b) => (b % 33 === 32 ? 127 : b % 32))), // C0 controls, DEL
  fc.uint8Array({ minLength: 1, maxLength: 32 }).map((a) => a.map((b) => 128 | b)), // obs-text, invalid UTF-8
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 16 }).map((s) => new Uint8Array(Buffer.from(s, 'utf8')))
)

const dataKey = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...HOSTILE_KEYS) },
  { weight: 4, arbitrary: fc.string({ minLength: 1, maxLength: 10 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 6 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 6 }) },
  { weight: 1, arbitrary: fc.constantFrom('', 'k'.repeat(257), 'k'.repeat(256)) },
  // Lone surrogates: JSON escapes them, UTF-8 cannot hold them.
  { weight: 1, arbitrary: fc.constantFrom('x\ud800', 'x\udc00', '\udfff', 'a\ud83d') }
)
const { node: dataNode } = fc.letrec((tie) => ({
  node: fc.oneof({ depthSize: 'small', maxDepth: 4 }, tie('prim'), tie('obj'), tie('arr')),
  prim: fc.oneof(fc.constant(null), fc.boolean(), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.string({ maxLength: 24 }), fc.string({ unit: 'grapheme', maxLength: 8 }), fc.string({ unit: 'binary', maxLength: 8 }),
    fc.constantFrom('\ud800', 'x\udc00y'))
    .map((v) => ({ t: 'v', v })),
  obj: fc.array(fc.tuple(dataKey, tie('node')), { maxLength: 5 }).map((entries) => ({ t: 'o', entries })),
  arr: fc.array(tie('node'), { maxLength: 4 }).map((items) => ({ t: 'a', items }))
}))

const loginUser = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.string({ minLength: 250, maxLength: 270 }),
  fc.string({ unit: 'grapheme', minLength: 60, maxLength: 90 }),
  fc.integer(),
  fc.constantFrom(null, true, 1.5, -0, 2 ** 53, '', '__proto__', 'constructor', 'a.b', '{x}', '*', 'a:b', '\ud800', 'x\udc00y')
)

const junkBody = fc.oneof(
  fc.constant(undefined),
  fc.string({ maxLength: 100 }),
  fc.json({ maxDepth: 2 }),
  fc.constantFrom('{"user":{}}', '{"user":[1]}', '{"user":"x","__proto__":{"a":1}}', '[]', 'null', '{"user":1e400}',
    '{"user":"x","constructor":{"prototype":{"a":1}}}', '{', '{"a":' + '['.repeat(5000))
)

export const caseArb = fc.oneof(
  { weight: 35, arbitrary: fc.record({ kind: fc.constant('mutate'), source, base: fc.nat(), ops: fc.array(mutation, { minLength: 1, maxLength: 3 }) }) },
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('random'),
      whole: fc.boolean(),
      prefix: fc.constantFrom('', '', 'v2.', 'v1.', 'YWxpY2U.', 'cG9vbC0w.'),
      value: fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: 'grapheme', maxLength: 100 }),
        fc.string({ unit: 'binary', maxLength: 100 }), fc.base64String({ maxLength: 200 }), fc.uint8Array({ maxLength: 300 }))
    })
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('control'), source, base: fc.nat() }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('otherName'), variant: fc.nat({ max: 7 }), base: fc.nat() }) },
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('many'),
      n: fc.oneof(fc.integer({ min: 2, max: 20 }), fc.integer({ min: 20, max: 400 }), fc.integer({ min: 400, max: 3000 })),
      sids: fc.array(fc.constantFrom('valid', 'mutated', 'random', 'empty', 'other'), { maxLength: 4 }),
      positions: fc.array(pos, { minLength: 4, maxLength: 4 }),
      base: fc.nat(),
      ops: fc.array(mutation, { minLength: 1, maxLength: 2 }),
      junk: fc.nat({ max: 1000 }),
      sep: fc.constantFrom('; ', ';', ', ', ';;  ', ' ; ')
    })
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('huge'),
      size: fc.oneof({ weight: 20, arbitrary: fc.integer({ min: HEADER_LIMIT - 600, max: HEADER_LIMIT + 600 }) },
        { weight: 4, arbitrary: fc.constantFrom(HEADER_LIMIT * 2, 65_536) }, { weight: 1, arbitrary: fc.constant(1 << 20) }),
      shape: fc.constantFrom('cookie', 'headers', 'url', 'userAgent', 'cookies'),
      base: fc.nat()
    })
  },
  {
    weight: 10,
    arbitrary: fc.record({
      kind: fc.constant('bytes'),
      where: fc.constantFrom('cookieValue', 'cookieName', 'cookieHeader', 'userAgent', 'header', 'path', 'query'),
      bytes: bytesArb,
      base: fc.nat(),
      at: pos
    })
  },
  { weight: 12, arbitrary: fc.record({ kind: fc.constant('data'), entries: fc.array(fc.tuple(dataKey, dataNode), { maxLength: 8 }), escapes: fc.oneof(fc.constant(0), fc.nat()) }) },
  { weight: 7, arbitrary: fc.record({ kind: fc.constant('login'), user: loginUser, ua: fc.option(bytesArb) }) },
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('junk'),
      method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'FOO'),
      path: fc.constantFrom('/me', '/login', '/data', '/anon', '/alt/me', '/alt/login', '/nope', '/me/../login', '//me',
        '/me?x=%ZZ', '/%00', '/login?user=x', '/data?__proto__[a]=1'),
      contentType: fc.constantFrom(undefined, 'application/json', 'text/plain', 'application/x-www-form-urlencoded',
        'application/json; charset=utf-16', 'multipart/form-data; boundary=x'),
      body: junkBody,
      cookie: fc.constantFrom('none', 'valid', 'mutated'),
      base: fc.nat(),
      ops: fc.array(mutation, { minLength: 1, maxLength: 2 })
    })
  }
)

/** Case `i` of the run seeded with `seed`. */
export function caseAt (seed, i) {
  return fc.sample(caseArb, { seed: caseSeed(seed, i), numRuns: 1 })[0]
}

// --- applying mutations to a cookie value (a string of byte-sized characters) ---

const at = (p, length) => (length === 0 ? 0 : p % length)

function reencode (bytes, like) {
  return /[+/]/.test(like) ? Buffer.from(bytes).toString('base64').replace(/=+$/, '') : Buffer.from(bytes).toString('base64url')
}

/** `value` mutated by `op`; `others` are the other valid cookie values of the pool. */
export function mutate (value, op, others) {
  const n = value.length
  const other = others.length === 0 ? value : others[(op.other ?? 0) % others.length]
  switch (op.op) {
    case 'flip': {
      const i = at(op.at, n)
      return value.slice(0, i) + String.fromCharCode((value.charCodeAt(i) ^ (1 << op.bit)) & 0xff) + value.slice(i + 1)
    }
    case 'set': {
      const i = at(op.at, n)
      return value.slice(0, i) + String.fromCharCode(op.byte) + value.slice(i + 1)
    }
    case 'alphabet': {
      const i = at(op.at, n)
      return value.slice(0, i) + op.char + value.slice(i + 1)
    }
    case 'truncate': return value.slice(0, at(op.at, n))
    case 'delete': {
      const i = at(op.at, n)
      return value.slice(0, i) + value.slice(i + op.len)
    }
    case 'insert': {
      const i = at(op.at, n + 1)
      return value.slice(0, i) + op.text + value.slice(i)
    }
    case 'dup': {
      const i = at(op.at, n)
      return value.slice(0, i + op.len) + value.slice(i, i + op.len) + value.slice(i + op.len)
    }
    case 'reorder': {
      const parts = value.split('.')
      const order = parts.map((p, i) => [op.keys[i % op.keys.length] + i / 100, p]).sort((a, b) => a[0] - b[0])
      return order.map(([, p]) => p).join('.')
    }
    case 'swapPart': {
      const parts = value.split('.')
      const theirs = other.split('.')
      const i = op.part % parts.length
      const j = i === parts.length - 1 ? theirs.length - 1 : Math.min(i, theirs.length - 1) // the signature for the signature
      parts[i] = theirs[j]
      return parts.join('.')
    }
    case 'splice': {
      const i = at(op.at, Math.min(n, other.length))
      return value.slice(0, i) + other.slice(i)
    }
    case 'bodyFlip':
    case 'bodySwap': {
      const dot = value.lastIndexOf('.')
      const part = value.slice(dot + 1)
      const bytes = Buffer.from(part, 'base64')
      if (bytes.length === 0) return value + 'A'
      if (op.op === 'bodyFlip') {
        const i = at(op.at, bytes.length)
        bytes[i] ^= 1 << op.bit
      } else {
        const theirs = Buffer.from(other.slice(other.lastIndexOf('.') + 1), 'base64')
        const k = Math.min(16, bytes.length, theirs.length)
        if (op.which === 'head16') theirs.copy(bytes, 0, 0, k)
        else if (op.which === 'tail16') theirs.copy(bytes, bytes.length - k, theirs.length - k)
        else theirs.copy(bytes, k, k, Math.min(bytes.length, theirs.length) - k)
      }
      return value.slice(0, dot + 1) + reencode(bytes, part)
    }
    case 'case': {
      const i = at(op.at, n)
      const c = value[i] ?? ''
      return value.slice(0, i) + (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase()) + value.slice(i + 1)
    }
    case 'pct': {
      const i = at(op.at, n)
      const enc = op.broken ? '%G' : '%' + (value.charCodeAt(i) & 0xff).toString(16).padStart(2, '0').toUpperCase()
      return value.slice(0, i) + enc + value.slice(i + 1)
    }
    case 'wrap': return op.left + value + op.right
    case 'dropPart': {
      const parts = value.split('.')
      parts.splice(op.part % parts.length, 1)
      return parts.join('.')
    }
    case 'padding': return value + '='.repeat(op.n)
    default: throw new Error(`unknown mutation ${op.op}`)
  }
}

// --- session data with hostile keys, as JSON text, and what a store must give back ---

/** JSON text of a data tree; keys as written (`__proto__` an own key), some written with \u escapes when `escapes` says so. */
export function dataText (node, escapes = 0) {
  let n = 0
  const key = (k) => {
    if (((escapes >>> (n++ % 31)) & 1) === 0) return JSON.stringify(k)
    let out = '"'
    for (let i = 0; i < k.length; i++) out += i % 2 === 0 ? '\\u' + k.charCodeAt(i).toString(16).padStart(4, '0') : JSON.stringify(k[i]).slice(1, -1)
    return out + '"'
  }
  const write = (node) => {
    if (node.t === 'v') return JSON.stringify(node.v)
    if (node.t === 'a') return '[' + node.items.map(write).join(',') + ']'
    return '{' + node.entries.map(([k, v]) => key(k) + ':' + write(v)).join(',') + '}'
  }
  return write(node)
}

/** True when `value` holds a `__proto__` key, or a `constructor` key holding a `prototype`, at any depth. */
export function poisoned (value) {
  if (Array.isArray(value)) return value.some(poisoned)
  if (value === null || typeof value !== 'object') return false
  for (const key of Object.keys(value)) {
    const v = value[key]
    if (key === '__proto__') return true
    if (key === 'constructor' && v !== null && typeof v === 'object' && Object.hasOwn(v, 'prototype')) return true
    if (poisoned(v)) return true
  }
  return false
}

/**
 * The data a session must hold after `POST /data` with `body` (JSON.parse of the text, as the
 * lenient server parses it), by the documented rules of `set()`: it refuses `__proto__`, an
 * empty key, a key over 256 characters or with a lone surrogate (KEY_INVALID), and a value a
 * store could not read back as written: one holding a `__proto__` key or a `constructor` key
 * holding a `prototype`, at any depth, the key itself included (VALUE_INVALID). The rest must
 * read back exactly.
 */
export function expectedData (body) {
  const exact = {}
  let refused = 0
  for (const key of Object.keys(body)) {
    const value = body[key]
    if (key === '__proto__' || key.length === 0 || key.length > 256 || /\p{Cs}/u.test(key) || poisoned({ [key]: value })) {
      refused++
      continue
    }
    exact[key] = value
  }
  return { exact, refused }
}

export function deepEqual (a, b) {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  if (ka.length !== kb.length) return false
  for (const k of ka) {
    if (!Object.hasOwn(b, k) || !deepEqual(a[k], b[k])) return false
  }
  return true
}

/** Whether `login(user)` must accept `user`, by the documented rules. */
export function validUserId (user) {
  if (typeof user === 'number') return Number.isSafeInteger(user)
  if (typeof user !== 'string' || user.length === 0) return false
  if (/\p{Cs}/u.test(user)) return false
  return Buffer.byteLength(user, 'utf8') <= 256
}
