import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomFillSync } from 'node:crypto'

// Sealing for the cookie store: AES-256-GCM from node:crypto, no native addon.
//
//   v1.<base64url( salt[16] ‖ ciphertext ‖ tag[16] )>
//
// Each secret gives a master key (HKDF-SHA256 with a purpose label, so that the same secret
// signing the server stores' cookies never meets this use). Each seal draws a random salt
// and derives from it a key of its own (the first block of HKDF-Expand: HMAC(master, label ‖
// salt ‖ 1)), so no key ever seals twice and the nonce can stay fixed: random 96-bit nonces
// under a single key would be limited to 2^32 seals. The version and the cookie name are the
// additional authenticated data, so a cookie opens only under the name it was sealed for.

export const SEAL_VERSION = 'v1'
const PREFIX = SEAL_VERSION + '.'
const SALT_BYTES = 16
const TAG_BYTES = 16
const NONCE = Buffer.alloc(12)
const MASTER_SALT = 'fastify-user-sessions'
const MASTER_INFO = 'cookie store v1: master key'
const MESSAGE_INFO = Buffer.from('cookie store v1: message key')
const ONE = Buffer.from([1])
const BASE64URL = /^[A-Za-z0-9_-]+$/
// Salts are drawn from a pool refilled 256 at a time: one randomFillSync per salt costs more than the cipher.
const POOL_SALTS = 256
const pool = Buffer.alloc(SALT_BYTES * POOL_SALTS)
let poolOffset = pool.length

function newSalt (): Buffer {
  if (poolOffset === pool.length) {
    randomFillSync(pool)
    poolOffset = 0
  }
  poolOffset += SALT_BYTES
  return pool.subarray(poolOffset - SALT_BYTES, poolOffset)
}

export interface Unsealed {
  plaintext: string
  /** Opened with an older secret: seal it again with the newest. */
  renew: boolean
}

function messageKey (master: Buffer, salt: Buffer): Buffer {
  return createHmac('sha256', master).update(MESSAGE_INFO).update(salt).update(ONE).digest()
}

export class Sealer {
  readonly #keys: Buffer[]
  readonly #aad: Buffer

  /** `secrets`: newest first; the first seals, all open. */
  constructor (secrets: ReadonlyArray<string | Buffer>, cookieName: string) {
    this.#keys = secrets.map((secret) => Buffer.from(hkdfSync('sha256', secret, MASTER_SALT, MASTER_INFO, 32)))
    this.#aad = Buffer.from(`fastify-user-sessions ${SEAL_VERSION} ${cookieName}`)
  }

  seal (plaintext: string): string {
    const salt = newSalt() // a view into the pool: copied by the concat below, before the pool is refilled
    const cipher = createCipheriv('aes-256-gcm', messageKey(this.#keys[0] as Buffer, salt), NONCE)
    cipher.setAAD(this.#aad)
    const body = Buffer.concat([salt, cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()])
    return PREFIX + body.toString('base64url')
  }

  /** The plaintext, or undefined for anything that was not sealed by one of our keys for this cookie name. */
  open (value: string): Unsealed | undefined {
    if (!value.startsWith(PREFIX)) return undefined
    const text = value.slice(PREFIX.length)
    if (!BASE64URL.test(text)) return undefined
    const body = Buffer.from(text, 'base64url')
    // Only the canonical encoding: a flip of a last character's unused bits is not the same cookie.
    if (body.length < SALT_BYTES + TAG_BYTES || body.toString('base64url') !== text) return undefined
    const salt = body.subarray(0, SALT_BYTES)
    const ciphertext = body.subarray(SALT_BYTES, body.length - TAG_BYTES)
    const tag = body.subarray(body.length - TAG_BYTES)
    const keys = this.#keys
    for (let i = 0; i < keys.length; i++) {
      const decipher = createDecipheriv('aes-256-gcm', messageKey(keys[i] as Buffer, salt), NONCE, { authTagLength: TAG_BYTES })
      decipher.setAAD(this.#aad)
      decipher.setAuthTag(tag)
      const plaintext = decipher.update(ciphertext)
      try {
        decipher.final()
      } catch {
        continue
      }
      return { plaintext: plaintext.toString('utf8'), renew: i > 0 }
    }
    return undefined
  }
}
