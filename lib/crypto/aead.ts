import { createCipheriv, createDecipheriv } from 'node:crypto'
import { createRequire } from 'node:module'
import { FST_SESSION_OPTION_INVALID } from '../errors.js'

// ChaCha20-Poly1305 (RFC 8439, 96-bit nonce, 128-bit tag) for the cookie store, from one of
// two implementations that give the same bytes: libsodium through `sodium-native`, when the
// application has it installed (an optional dependency, a prebuilt addon), or node:crypto.
// libsodium seals or opens a cookie in one native call; node:crypto sets up a cipher object
// per call, which costs two to three times as much (docs/cookie-store.md, "Format").

export const TAG_BYTES = 16
export const NONCE_BYTES = 12

export type AeadName = 'sodium-native' | 'node:crypto'

export interface Aead {
  readonly name: AeadName
  /** Writes ciphertext ‖ tag of `plaintext` into `out`, which is exactly `plaintext.length + TAG_BYTES` long. */
  seal (out: Buffer, plaintext: Buffer, aad: Buffer, nonce: Buffer, key: Buffer): void
  /** The plaintext of `sealed` (ciphertext ‖ tag), or undefined when it does not authenticate. */
  open (sealed: Buffer, aad: Buffer, nonce: Buffer, key: Buffer): Buffer | undefined
}

export const nodeAead: Aead = {
  name: 'node:crypto',
  seal (out, plaintext, aad, nonce, key) {
    const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_BYTES })
    cipher.setAAD(aad, { plaintextLength: plaintext.length })
    // A stream cipher: update gives every byte and final none, but copy what both give.
    const head = cipher.update(plaintext)
    const tail = cipher.final()
    head.copy(out)
    tail.copy(out, head.length)
    cipher.getAuthTag().copy(out, head.length + tail.length)
  },
  open (sealed, aad, nonce, key) {
    const length = sealed.length - TAG_BYTES
    const decipher = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_BYTES })
    decipher.setAAD(aad, { plaintextLength: length })
    decipher.setAuthTag(sealed.subarray(length))
    const plaintext = decipher.update(sealed.subarray(0, length))
    try {
      decipher.final()
    } catch {
      return undefined
    }
    return plaintext
  }
}

/** The part of sodium-native's API the cookie store uses (identical in sodium-native 4 and 5). */
export interface Sodium {
  crypto_aead_chacha20poly1305_ietf_encrypt (c: Buffer, m: Buffer, ad: Buffer, nsec: null, npub: Buffer, k: Buffer): number
  crypto_aead_chacha20poly1305_ietf_decrypt (m: Buffer, nsec: null, c: Buffer, ad: Buffer, npub: Buffer, k: Buffer): number
}

export function sodiumAead (sodium: Sodium): Aead {
  return {
    name: 'sodium-native',
    seal (out, plaintext, aad, nonce, key) {
      sodium.crypto_aead_chacha20poly1305_ietf_encrypt(out, plaintext, aad, null, nonce, key)
    },
    open (sealed, aad, nonce, key) {
      const plaintext = Buffer.allocUnsafe(sealed.length - TAG_BYTES)
      try {
        sodium.crypto_aead_chacha20poly1305_ietf_decrypt(plaintext, null, sealed, aad, nonce, key)
      } catch {
        return undefined // sodium-native throws 'could not verify data'
      }
      return plaintext
    }
  }
}

/** sodium-native, when it can be loaded and has what the store needs; undefined otherwise. */
export function loadSodium (require: (id: string) => unknown = createRequire(import.meta.url)): Sodium | undefined {
  let sodium: Partial<Sodium> | undefined
  try {
    sodium = require('sodium-native') as Partial<Sodium>
  } catch {
    return undefined
  }
  return typeof sodium?.crypto_aead_chacha20poly1305_ietf_encrypt === 'function' &&
    typeof sodium.crypto_aead_chacha20poly1305_ietf_decrypt === 'function'
    ? sodium as Sodium
    : undefined
}

const CHOICES: ReadonlyArray<string> = ['auto', 'sodium-native', 'node:crypto']

/**
 * The implementation a cookie store uses (its `crypto` option): `'auto'` takes sodium-native
 * when installed, else node:crypto; `'sodium-native'` insists on it; `'node:crypto'` never loads it.
 */
export function pickAead (choice: unknown, load: () => Sodium | undefined = loadSodium): Aead {
  if (typeof choice !== 'string' || !CHOICES.includes(choice)) {
    throw new FST_SESSION_OPTION_INVALID('storeOptions.crypto', `must be one of ${CHOICES.map((c) => `'${c}'`).join(', ')}`)
  }
  if (choice === 'node:crypto') return nodeAead
  const sodium = load()
  if (sodium !== undefined) return sodiumAead(sodium)
  if (choice === 'auto') return nodeAead
  throw new FST_SESSION_OPTION_INVALID('storeOptions.crypto', '\'sodium-native\' cannot be loaded: npm install sodium-native')
}
