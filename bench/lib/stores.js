// Stores built outside an app, for the measurements that fill a store through its own API,
// and session records shaped as the plugin makes them.
import { randomBytes } from 'node:crypto'
import { silentLog } from './routes.js'

export function storeContext () {
  return { clock: Date.now, log: silentLog, maxSessionsPerUser: 100 }
}

/** Builds a registered store by name, through the factory the package exports for it (`memoryStore`, `redisStore`, ...). */
export async function openStore (name, options) {
  const pkg = await import('fastify-user-sessions')
  if (!pkg.knownStores().includes(name)) return { unavailable: `store '${name}' is not registered` }
  const camel = name.replace(/-(.)/g, (_, c) => c.toUpperCase())
  const factory = pkg[`${camel}Store`]
  if (typeof factory !== 'function') return { unavailable: `the package exports no ${camel}Store factory` }
  return { store: factory(options, storeContext()) }
}

/** Random session ids and secret hashes, cut from large random buffers (1M of them stay cheap). */
export class Ids {
  #buf = Buffer.alloc(0)
  #pos = 0

  #take (n) {
    if (this.#pos + n > this.#buf.length) {
      this.#buf = randomBytes(1 << 20)
      this.#pos = 0
    }
    const out = this.#buf.subarray(this.#pos, this.#pos + n).toString('base64url')
    this.#pos += n
    return out
  }

  /** 128 random bits, base64url: the shape of the plugin's ids. */
  random () {
    return this.#take(16)
  }

  /** 256 bits, base64url: the shape of a SHA-256 secret hash. */
  hash () {
    return this.#take(32)
  }
}

/** A stored session as the plugin makes one, holding a small object (`data`, `{ counter }` by default). */
export function record (ids, { tag, userId, counter = 1, data = { counter }, now = Date.now() } = {}) {
  return {
    // Concatenated, as lib/crypto/ids.ts's newSessionId builds a user's session id (`tag`: userTag(the store's owner key, userId)).
    id: tag === undefined ? ids.random() : tag + '.' + ids.random(),
    secretHash: ids.hash(),
    userId,
    data,
    createdAt: now,
    lastSeenAt: now,
    expiresAt: now + 86_400_000,
    authenticatedAt: userId === undefined ? undefined : now,
    ip: '127.0.0.1',
    userAgent: 'Mozilla/5.0 (X11; Linux x86_64) bench'
  }
}

/** Runs `task(i)` for i in [from, to) with at most `window` in flight. */
export async function pool (from, to, window, task) {
  let next = from
  async function worker () {
    while (next < to) await task(next++)
  }
  await Promise.all(Array.from({ length: Math.min(window, to - from) }, worker))
}
