import { createHmac, hkdfSync, randomFillSync } from 'node:crypto'
import { NONCE_BYTES, nodeAead, TAG_BYTES, type Aead, type AeadName } from './aead.js'

// Sealing for the cookie store: ChaCha20-Poly1305 (lib/crypto/aead.ts: libsodium when installed, else node:crypto).
//
//   v2.<base64url( window[4] ‖ nonce[12] ‖ ciphertext ‖ tag[16] )>
//
// Each secret gives a master key (HKDF-SHA256 with a purpose label, so that the same secret
// signing the server stores' cookies never meets this use). The master key never seals: each
// hour of the clock (`window`, hours since the epoch, big-endian) has a key of its own, the
// first block of HKDF-Expand: HMAC(master, label ‖ window ‖ 1). Each seal draws a random
// 96-bit nonce. Random 96-bit nonces bound a key to 2^32 seals (NIST SP 800-38D's rule, which
// the same birthday bound makes hold for ChaCha20-Poly1305 too); a key that lives one hour
// reaches it only past a million seals per second, summed over every process that shares the
// secret. The window keys are cached, so a seal or an open is one AEAD call, not also an HMAC
// (v1, never released, derived a key per cookie). The version and the cookie name are the
// additional authenticated data, so a cookie opens only under the name it was sealed for.

export const SEAL_VERSION = 'v2'
const PREFIX = SEAL_VERSION + '.'
const WINDOW_MS = 3_600_000
const WINDOW_BYTES = 4
const HEADER_BYTES = WINDOW_BYTES + NONCE_BYTES
const MASTER_SALT = 'fastify-user-sessions'
const MASTER_INFO = 'cookie store v2: master key'
const WINDOW_INFO = Buffer.from('cookie store v2: window key')
const ONE = Buffer.from([1])
const BASE64URL = /^[A-Za-z0-9_-]+$/
/** Window keys kept per secret: 1,024 hours, about six weeks of cookies sealed and still opened. */
const CACHED_WINDOWS = 1024
// Nonces are drawn from a pool refilled 256 at a time: one randomFillSync per nonce costs more than the cipher.
const POOL_NONCES = 256
const pool = Buffer.alloc(NONCE_BYTES * POOL_NONCES)
let poolOffset = pool.length

function newNonce (): Buffer {
  if (poolOffset === pool.length) {
    randomFillSync(pool)
    poolOffset = 0
  }
  poolOffset += NONCE_BYTES
  return pool.subarray(poolOffset - NONCE_BYTES, poolOffset)
}

export interface Unsealed {
  plaintext: string
  /** Opened with an older secret: seal it again with the newest. */
  renew: boolean
}

function windowBytes (window: number): Buffer {
  const bytes = Buffer.alloc(WINDOW_BYTES)
  bytes.writeUInt32BE(window)
  return bytes
}

function windowKey (master: Buffer, window: number): Buffer {
  return createHmac('sha256', master).update(WINDOW_INFO).update(windowBytes(window)).update(ONE).digest()
}

export class Sealer {
  readonly #masters: Buffer[]
  /** Per secret, the keys of the windows it sealed or opened, oldest first. */
  readonly #windows: Array<Map<number, Buffer>>
  readonly #aad: Buffer
  readonly #clock: () => number
  readonly #aead: Aead
  /** The window seals currently go in: its number, its four bytes, the newest secret's key for it. */
  #sealing: { window: number, header: Buffer, key: Buffer } | undefined

  /** `secrets`: newest first; the first seals, all open. `clock`: milliseconds since the epoch. */
  constructor (secrets: ReadonlyArray<string | Buffer>, cookieName: string, clock: () => number = Date.now, aead: Aead = nodeAead) {
    this.#masters = secrets.map((secret) => Buffer.from(hkdfSync('sha256', secret, MASTER_SALT, MASTER_INFO, 32)))
    this.#windows = secrets.map(() => new Map())
    this.#aad = Buffer.from(`fastify-user-sessions ${SEAL_VERSION} ${cookieName}`)
    this.#clock = clock
    this.#aead = aead
  }

  /** The implementation that seals and opens: 'sodium-native' or 'node:crypto'. */
  get aead (): AeadName {
    return this.#aead.name
  }

  seal (plaintext: string): string {
    const window = Math.max(0, Math.floor(this.#clock() / WINDOW_MS))
    let sealing = this.#sealing
    if (sealing === undefined || window !== sealing.window) {
      const key = this.#key(0, window)
      this.#remember(0, window, key)
      sealing = this.#sealing = { window, header: windowBytes(window), key }
    }
    const message = Buffer.from(plaintext, 'utf8')
    const body = Buffer.allocUnsafe(HEADER_BYTES + message.length + TAG_BYTES)
    sealing.header.copy(body)
    newNonce().copy(body, WINDOW_BYTES)
    this.#aead.seal(body.subarray(HEADER_BYTES), message, this.#aad, body.subarray(WINDOW_BYTES, HEADER_BYTES), sealing.key)
    return PREFIX + body.toString('base64url')
  }

  /** The plaintext, or undefined for anything that was not sealed by one of our keys for this cookie name. */
  open (value: string): Unsealed | undefined {
    if (!value.startsWith(PREFIX)) return undefined
    const text = value.slice(PREFIX.length)
    if (!BASE64URL.test(text)) return undefined
    const body = Buffer.from(text, 'base64url')
    // Only the canonical encoding: a flip of a last character's unused bits is not the same cookie.
    if (body.length < HEADER_BYTES + TAG_BYTES || body.toString('base64url') !== text) return undefined
    const window = body.readUInt32BE(0)
    const nonce = body.subarray(WINDOW_BYTES, HEADER_BYTES)
    const sealed = body.subarray(HEADER_BYTES)
    for (let i = 0; i < this.#masters.length; i++) {
      const key = this.#key(i, window)
      const plaintext = this.#aead.open(sealed, this.#aad, nonce, key)
      if (plaintext === undefined) continue
      // Only a window that opened a cookie is kept: made-up windows cost an HMAC, never a cache entry.
      this.#remember(i, window, key)
      return { plaintext: plaintext.toString('utf8'), renew: i > 0 }
    }
    return undefined
  }

  /** The key of one secret for one window: cached, or derived. */
  #key (secret: number, window: number): Buffer {
    return (this.#windows[secret] as Map<number, Buffer>).get(window) ?? windowKey(this.#masters[secret] as Buffer, window)
  }

  #remember (secret: number, window: number, key: Buffer): void {
    const cache = this.#windows[secret] as Map<number, Buffer>
    if (cache.has(window)) return
    if (cache.size >= CACHED_WINDOWS) cache.delete(cache.keys().next().value as number)
    cache.set(window, key)
  }
}
