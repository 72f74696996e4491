import { isSessionId, ownerKeyOf, userKey } from '../crypto/ids.js'

/** True when `id` has the shape of our ids and can belong to `userId` (the id carries the user's key); no store round trip. */
export function owned (id: string, userId: string | undefined): boolean {
  if (typeof id !== 'string' || !isSessionId(id)) return false
  return userId === undefined || ownerKeyOf(id) === userKey(userId)
}
