import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomFillSync } from 'node:crypto'

// Sealing for the cookie store: AES-256-GCM from node:crypto, no native addon.
//
//   v2.<base64url( window[4] ‖ nonce[12] ‖ ciphertext ‖ tag[16] )>
//
// Each secret gives a master key (HKDF-SHA256 with a purpose label, so that the same secret
// signing the server stores' cookies never meets this use). The master key never seals: each
// hour of the clock (`window`, hours since the epoch, big-endian) has a key of its own, the
// first block of HKDF-Expand: HMAC(master, label ‖ window ‖ 1). Each seal draws a random
// 96-bit nonce. AES-GCM with random nonces is bounded to 2^32 seals per key (NIST SP 800-38D);
// a key that lives one hour reaches that bound only past a million seals per second, summed
// over every process that shares the secret. The window keys are cached, so a seal or an open
// costs one AES-GCM call, not also an HMAC (v1 derived a key per cookie: an HMAC per seal and
// per open, about a third of the cost). The version and the cookie name are the additional
// authenticated data, so a cookie opens only under the name it was sealed for.

export const SEAL_VERSION = 'v2'
const PREFIX = SEAL_VERSION + '.'
const WINDOW_MS = 3_600_000
const WINDOW_BYTES = 4
const NONCE_BYTES = 12
const HEADER_BYTES = WINDOW_BYTES + NONCE_BYTES
const TAG_BYTES = 16
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

function windowKey (master: Buffer, header: Buffer): Buffer {
  return createHmac('sha256', master).update(WINDOW_INFO).update(header.subarray(0, WINDOW_BYTES)).update(ONE).digest()
}

export class Sealer {
  readonly #masters: Buffer[]
  /** Per secret, the keys of the windows it sealed or opened, oldest first. */
  readonly #windows: Array<Map<number, Buffer>>
  readonly #aad: Buffer
  readonly #clock: () => number
  /** The window seals currently go in: its number, its four bytes, the newest secret's key for it. */
  #sealing: { window: number, header: Buffer, key: Buffer } = { window: -1, header: Buffer.alloc(WINDOW_BYTES), key: Buffer.alloc(32) }

  /** `secrets`: newest first; the first seals, all open. `clock`: milliseconds since the epoch. */
  constructor (secrets: ReadonlyArray<string | Buffer>, cookieName: string, clock: () => number = Date.now) {
    this.#masters = secrets.map((secret) => Buffer.from(hkdfSync('sha256', secret, MASTER_SALT, MASTER_INFO, 32)))
    this.#windows = secrets.map(() => new Map())
    this.#aad = Buffer.from(`fastify-user-sessions ${SEAL_VERSION} ${cookieName}`)
    this.#clock = clock
  }

  seal (plaintext: string): string {
    const window = Math.max(0, Math.floor(this.#clock() / WINDOW_MS))
    let sealing = this.#sealing
    if (window !== sealing.window) {
      const header = Buffer.alloc(WINDOW_BYTES)
      header.writeUInt32BE(window)
      const key = this.#key(0, window, header)
      this.#remember(0, window, key)
      sealing = this.#sealing = { window, header, key }
    }
    const nonce = newNonce() // a view into the pool: copied by the concat below, before the pool is refilled
    const cipher = createCipheriv('aes-256-gcm', sealing.key, nonce)
    cipher.setAAD(this.#aad)
    const body = Buffer.concat([sealing.header, nonce, cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()])
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
    const ciphertext = body.subarray(HEADER_BYTES, body.length - TAG_BYTES)
    const tag = body.subarray(body.length - TAG_BYTES)
    for (let i = 0; i < this.#masters.length; i++) {
      const key = this.#key(i, window, body)
      const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES })
      decipher.setAAD(this.#aad)
      decipher.setAuthTag(tag)
      const plaintext = decipher.update(ciphertext)
      try {
        decipher.final()
      } catch {
        continue
      }
      // Only a window that opened a cookie is kept: made-up windows cost an HMAC, never a cache entry.
      this.#remember(i, window, key)
      return { plaintext: plaintext.toString('utf8'), renew: i > 0 }
    }
    return undefined
  }

  /** The key of one secret for one window; `header` starts with the window's four bytes. */
  #key (secret: number, window: number, header: Buffer): Buffer {
    return (this.#windows[secret] as Map<number, Buffer>).get(window) ?? windowKey(this.#masters[secret] as Buffer, header)
  }

  #remember (secret: number, window: number, key: Buffer): void {
    const cache = this.#windows[secret] as Map<number, Buffer>
    if (cache.has(window)) return
    if (cache.size >= CACHED_WINDOWS) cache.delete(cache.keys().next().value as number)
    cache.set(window, key)
  }
}
