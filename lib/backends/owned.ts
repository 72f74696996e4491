import { isSessionId, newSessionId, tagOf, userTag } from '../crypto/ids.js'
import { OwnerKey } from '../crypto/owner-key.js'

/**
 * The ids of one store's sessions: a user's session id carries the user's tag under the store's
 * owner key, read once from the store. A store that keeps no owner key gets plain random ids,
 * and only its record says whose a session is.
 */
export class SessionIds {
  readonly #key: OwnerKey | undefined

  constructor (store: { ownerKey?: () => Promise<Uint8Array> } | undefined) {
    const read = store?.ownerKey
    this.#key = typeof read === 'function' ? new OwnerKey(() => read.call(store)) : undefined
  }

  /** Whether the ids say whose a session is: false when the store keeps no owner key. */
  get tagged (): boolean {
    return this.#key !== undefined
  }

  /** The user's tag; undefined for no user, or a store without an owner key. */
  async tag (userId: string | undefined): Promise<string | undefined> {
    if (userId === undefined || this.#key === undefined) return undefined
    return userTag(this.#key.loaded ?? await this.#key.get(), userId)
  }

  async newId (userId: string | undefined): Promise<string> {
    return newSessionId(await this.tag(userId))
  }

  /**
   * Whether `id` has the shape of our ids and can belong to `userId` (undefined: anyone's), from
   * the id alone; `undefined` when only the stored record can tell (a store without an owner key).
   */
  async owned (id: unknown, userId: string | undefined): Promise<boolean | undefined> {
    if (typeof id !== 'string' || !isSessionId(id)) return false
    if (userId === undefined) return true
    if (this.#key === undefined) return undefined
    return tagOf(id) === await this.tag(userId)
  }
}
