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

/** One owner key for tests that need ids of one shape only (a bus, a codec): no store involved. */
export const TEST_OWNER_KEY = Buffer.alloc(32, 7)

/** The user's tag under `TEST_OWNER_KEY`. */
export function testTag (userId: string): string {
  return userTag(TEST_OWNER_KEY, userId)
}

/** Makes `TEST_OWNER_KEY` the owner key of the Redis store (or revocation store) under `prefix` (the client's keyPrefix included), before its first use. */
export async function seedRedisOwnerKey (client: { set: (key: string, value: string) => Promise<unknown> }, prefix: string): Promise<void> {
  await client.set(prefix + 'owner-key', TEST_OWNER_KEY.toString('base64url'))
}
