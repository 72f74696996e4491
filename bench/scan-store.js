// The reference design our per-user model replaces, for comparison only: YipyipExAuth's
// Redis session store. Each session is one key `<prefix>.<user_id>.<session_id>` written with
// SETEX; a user's sessions are found with `SCAN <cursor> MATCH <prefix>.<user_id>.*` until the
// cursor comes back to 0, then read with one MGET. The reference passes no COUNT (Redis's
// default, 10); `count` lets the bench also try a kinder one.

export class ScanRedisStore {
  #client
  #prefix
  #count

  constructor (client, { prefix = 'SESSION_STORE_', count } = {}) {
    this.#client = client
    this.#prefix = prefix
    this.#count = count
  }

  #key (userId, sessionId) {
    return `${this.#prefix}.${userId}.${sessionId}`
  }

  /** Queues the SETEX of one session on an ioredis pipeline; the bench fills in batches. */
  upsertIn (pipeline, session, ttlSeconds) {
    pipeline.setex(this.#key(session.userId, session.id), ttlSeconds, JSON.stringify(session))
  }

  async upsert (session, ttlSeconds) {
    await this.#client.setex(this.#key(session.userId, session.id), ttlSeconds, JSON.stringify(session))
  }

  async #keysOf (userId) {
    const match = this.#key(userId, '*')
    const found = new Set()
    let cursor = '0'
    do {
      const args = [cursor, 'MATCH', match]
      if (this.#count !== undefined) args.push('COUNT', this.#count)
      const [next, keys] = await this.#client.scan(...args)
      for (const k of keys) found.add(k)
      cursor = next
    } while (cursor !== '0')
    return [...found]
  }

  async getAll (userId) {
    const keys = await this.#keysOf(userId)
    if (keys.length === 0) return []
    const values = await this.#client.mget(keys)
    return values.filter((v) => v !== null).map((v) => JSON.parse(v))
  }
}

/** The same design on a Map: a user's sessions are the keys that start with `<prefix>.<user_id>.`. */
export class ScanMemoryStore {
  #map = new Map()
  #prefix

  constructor ({ prefix = 'SESSION_STORE_' } = {}) {
    this.#prefix = prefix
  }

  upsert (session) {
    this.#map.set(`${this.#prefix}.${session.userId}.${session.id}`, JSON.stringify(session))
  }

  getAll (userId) {
    const start = `${this.#prefix}.${userId}.`
    const out = []
    for (const [k, v] of this.#map) {
      if (k.startsWith(start)) out.push(JSON.parse(v))
    }
    return out
  }

  get size () {
    return this.#map.size
  }
}
