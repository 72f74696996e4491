import { newSessionId, userTag } from '../../lib/crypto/ids.js'

/** A new session id of `userId` as the plugin makes it for `store`: tagged with the store's owner key; anonymous without a user. */
export async function newIdFor (store: { ownerKey?: () => Promise<Uint8Array> }, userId: string | undefined): Promise<string> {
  const key = userId === undefined ? undefined : await store.ownerKey?.()
  return newSessionId(key === undefined || userId === undefined ? undefined : userTag(key, userId))
}

/** The user's tag in `store`. */
export async function tagIn (store: { ownerKey?: () => Promise<Uint8Array> }, userId: string): Promise<string> {
  return userTag(await (store.ownerKey as () => Promise<Uint8Array>)(), userId)
}
