import { FST_SESSION_STORE_UNAVAILABLE } from '../errors.js'

// A store's owner key, read from where the store keeps it once, then held: a failed read is
// tried again by the next call, so a store that is down at start is read when it comes back.

const MIN_KEY_BYTES = 16

export class OwnerKey {
  readonly #load: () => Promise<Uint8Array>
  #key: Uint8Array | undefined
  #loading: Promise<Uint8Array> | undefined

  constructor (load: () => Promise<Uint8Array>) {
    this.#load = load
  }

  /** The key, once read; `undefined` before. */
  get loaded (): Uint8Array | undefined {
    return this.#key
  }

  get (): Promise<Uint8Array> {
    if (this.#key !== undefined) return Promise.resolve(this.#key)
    this.#loading ??= this.#load().then((key) => {
      if (!(key instanceof Uint8Array) || key.length < MIN_KEY_BYTES) {
        throw new FST_SESSION_STORE_UNAVAILABLE(`the store's owner key is not ${MIN_KEY_BYTES} bytes or more`)
      }
      this.#key = key
      return key
    }).finally(() => { this.#loading = undefined })
    return this.#loading
  }
}
