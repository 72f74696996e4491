import { newOwnerKey } from '../crypto/ids.js'
import { OwnerKey } from '../crypto/owner-key.js'
import type { RedisConnection } from './connection.js'
import { script } from './script.js'

// The owner key of a Redis store (see SessionStore.ownerKey): `<prefix>owner-key`, a base64url
// string that the first instance to ask sets (NX) and every instance then reads, in one call.
// It has no expiry: deleted, instances that started since tag ids with another key than those
// that read it before, until they restart.

const READ_OR_CREATE = script(`
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])`)

export function redisOwnerKey (redis: RedisConnection, prefix: string): OwnerKey {
  return new OwnerKey(async () => {
    const text = await redis.run(READ_OR_CREATE, [prefix + 'owner-key'], [newOwnerKey().toString('base64url')])
    return Buffer.from(String(text), 'base64url')
  })
}
