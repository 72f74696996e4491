import { DEFAULT_TIMEOUT_MS, fail, keyPrefix, knownKeys, nonEmptyString, nonNegativeInteger, optionsObject, positiveInteger } from '../util/check.js'
import { CLIENTS, clientKind } from './client.js'

export interface RedisCommonOptions {
  readonly prefix: string
  readonly timeout: number
  readonly waitForReplicas: number
}

/**
 * What every Redis-backed store (the session store, the cookie store's revocation) takes:
 * exactly one of `client` (ioredis, iovalkey or node-redis: see lib/redis/client.ts) and `url`,
 * a key prefix without braces (keys carry a `{hash tag}`), the bound on each call, and how many replicas a revocation waits for. `at` is where the options
 * sit ('storeOptions.', 'storeOptions.revocation.'); `known` lists every key the store takes.
 */
export function redisOptions (at: string, options: object, known: readonly string[]): RedisCommonOptions {
  const o = optionsObject(at.slice(0, -1), options)
  knownKeys(o, known, at)
  const { client, url } = o
  if ((client === undefined) === (url === undefined)) fail(at + 'client', 'give either a client or a url')
  if (client !== undefined && clientKind(client) === undefined) fail(at + 'client', 'must be ' + CLIENTS)
  nonEmptyString(at + 'url', url)
  return {
    prefix: keyPrefix(at + 'prefix', o.prefix, 'sess:'),
    timeout: positiveInteger(at + 'timeout', o.timeout, DEFAULT_TIMEOUT_MS),
    waitForReplicas: nonNegativeInteger(at + 'waitForReplicas', o.waitForReplicas, 0)
  }
}
