import type { FastifyBaseLogger } from 'fastify'
import { announce } from '../../bus/announce.js'
import { RedisBus } from '../../bus/redis.js'
import { fail } from '../../util/check.js'
import { redisOptions } from '../../redis/options.js'
import { FST_SESSION_USER_ID_INVALID } from '../../errors.js'
import { isSessionId, tagOf, userTag } from '../../crypto/ids.js'
import type { OwnerKey } from '../../crypto/owner-key.js'
import { redisOwnerKey } from '../../redis/owner-key.js'
import { parseValue } from '../../util/json.js'
import { connection, type RedisConnection } from '../../redis/connection.js'
import { toHash, type RedisClientLike } from '../../redis/client.js'
import { revocationWrites, type RevocationWrites } from '../../redis/replicated.js'
import { DELETE, DELETE_ALL, GET_ALL, INSERT, PATCH } from './scripts.js'
import { LAST_SEEN_STEP, type SessionPatch, type SessionStore, type StoreContext, type StoredSession } from '../store.js'

// The Redis store. Every key of one user carries the hash tag `{<tag>}` (the user's tag under
// the store's owner key, `<prefix>owner-key`: see lib/crypto/ids.ts), so all of a
// user's sessions and their index live on one slot and change together in one Lua script,
// on a single Redis as on a Cluster. A read is one HGETALL; a write of data is one HSET (see
// #write), anything else one EVALSHA. See scripts.ts for the layout.

export interface RedisSerializer {
  stringify: (value: unknown) => string
  parse: (text: string) => unknown
}

export interface RedisStoreOptions {
  /**
   * The app's Redis client: ioredis or iovalkey (`Redis`, `Cluster`, Sentinel), or node-redis
   * (`createClient`, `createCluster`, `createSentinel`). The store never closes it. Every call is
   * bounded by `timeout` whatever the client's options, and nothing is sent while it is not
   * ready, so its offline queue stays empty. @default undefined
   */
  client?: RedisClientLike
  /** A Redis URL; the store makes its own client from it (ioredis when installed, else node-redis) and closes it with the app. @default undefined */
  url?: string
  /** Prepended to every key; must not hold `{` or `}`. @default 'sess:' */
  prefix?: string
  /** Milliseconds a store call may wait for Redis (or for the connection) before it fails with a 503. @default 2000 */
  timeout?: number
  /** Turns each session data value into a string and back. @default JSON, read back with prototype-poisoning protection */
  serializer?: RedisSerializer
  /**
   * Replicas that must acknowledge every revocation (`delete`, `deleteAll`, `destroy`, the old id
   * at `login()` / `regenerate()`, evictions at the per-user cap) before it resolves: `WAIT`
   * within `timeout`, else a `FST_SESSION_STORE_NOT_REPLICATED` 503. Data writes never wait.
   * @default 0
   */
  waitForReplicas?: number
}

interface Keys {
  /** The session hash. */
  key: string
  /** The user's index, for a bound session. */
  index: string | undefined
  /** The session's entry in the index: its random part. */
  member: string
}

const OPTION_KEYS = ['client', 'url', 'prefix', 'timeout', 'serializer', 'waitForReplicas']

/**
 * Redis keeps a hash compact (a listpack, about half the memory of a hash table) only while
 * every value fits in `hash-max-listpack-value` bytes, 64 by default. The fields a session gets
 * at insert and never changes (`Fixed`) are one text, longer than that (a browser's user agent
 * alone is: desktop Chrome's is 111 bytes), so it is stored in pieces of at most 64 bytes of
 * UTF-8, `m`, `m1`, `m2`, ..., joined when read. A hash written by an earlier version has
 * these fields one by one (`h`, `c`, `a`, `o`, `i`, and `g` and `u` in pieces) and reads the same.
 */
const PIECE_BYTES = 64

/** Appends `name`, `name1`, ... and the pieces of `text` to `fields`; never splits a character. */
function pushPieces (fields: Array<string | number>, name: string, text: string): void {
  let start = 0
  let bytes = 0
  let n = 0
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    // UTF-8 bytes of the character at i; a surrogate pair is one character of 4 bytes.
    const pair = code >= 0xd800 && code <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00
    const size = code < 0x80 ? 1 : code < 0x800 ? 2 : pair ? 4 : 3
    if (bytes + size > PIECE_BYTES) {
      fields.push(n === 0 ? name : name + n, text.slice(start, i))
      n++
      start = i
      bytes = 0
    }
    bytes += size
    if (pair) i++
  }
  fields.push(n === 0 ? name : name + n, text.slice(start))
}

/** The text `pushPieces` stored under `name`, or undefined. */
function joinPieces (fields: Record<string, string>, name: string): string | undefined {
  let text = fields[name]
  if (text === undefined) return undefined
  for (let n = 1, piece = fields[name + n]; piece !== undefined; piece = fields[name + ++n]) text += piece
  return text
}

/** What a command on the marker of a deleted session gets (WRONGTYPE): see scripts.ts. */
const MARKER = Symbol('marker')

function marker (err: Error): typeof MARKER {
  if (String(err.message).startsWith('WRONGTYPE')) return MARKER
  throw err
}

/** What a session gets at insert and never changes. */
interface Fixed {
  secretHash: string
  createdAt: number
  authenticatedAt: number | undefined
  policy?: string | undefined
  ip: string | undefined
  userAgent: string | undefined
  userId: string | undefined
}

/** An absent value in the head line of `packFixed`. */
const ABSENT = ''

/**
 * One text, so that HGETALL replies 1 to 4 fields for it instead of 2 to 9: a head line of
 * words with no space in them (`h c a o`, then the lengths of ip, user agent and user id; an
 * empty word for none: the line of a session without them fits one piece), then those three
 * texts back to back, whatever they hold.
 */
function packFixed (s: Fixed): string {
  const { ip, userAgent, userId } = s
  return `${s.secretHash} ${s.createdAt} ${s.authenticatedAt ?? ABSENT} ${s.policy ?? ABSENT} ` +
    `${ip?.length ?? ABSENT} ${userAgent?.length ?? ABSENT} ${userId?.length ?? ABSENT}\n${ip ?? ''}${userAgent ?? ''}${userId ?? ''}`
}

/** `packFixed`'s text read back; undefined when it is not one. */
function unpackFixed (text: string): Fixed | undefined {
  const nl = text.indexOf('\n')
  const head = text.slice(0, nl).split(' ')
  if (nl === -1 || head.length !== 7) return undefined
  let at = nl + 1
  const tail: Array<string | undefined> = []
  for (let i = 4; i < 7; i++) {
    const length = head[i] as string
    if (length === ABSENT) {
      tail.push(undefined)
      continue
    }
    const end = at + Number(length)
    if (!/^\d+$/.test(length) || end > text.length) return undefined
    tail.push(text.slice(at, end))
    at = end
  }
  if (at !== text.length) return undefined
  const [h, c, a, o] = head as [string, string, string, string]
  return {
    secretHash: h,
    createdAt: Number(c),
    authenticatedAt: a === ABSENT ? undefined : Number(a),
    policy: o === ABSENT ? undefined : o,
    ip: tail[0],
    userAgent: tail[1],
    userId: tail[2]
  }
}

/** A hash written by an earlier version: the same fields, one by one. */
function legacyFixed (fields: Record<string, string>): Fixed {
  return {
    secretHash: fields.h as string,
    createdAt: Number(fields.c),
    authenticatedAt: fields.a === undefined ? undefined : Number(fields.a),
    policy: fields.o,
    ip: fields.i,
    userAgent: joinPieces(fields, 'g'),
    userId: joinPieces(fields, 'u')
  }
}

const JSON_SERIALIZER: RedisSerializer = { stringify: JSON.stringify, parse: parseValue }

function checkSerializer (serializer: unknown): RedisSerializer {
  if (serializer === undefined) return JSON_SERIALIZER
  if (serializer === null || typeof serializer !== 'object' ||
    typeof (serializer as RedisSerializer).stringify !== 'function' || typeof (serializer as RedisSerializer).parse !== 'function') {
    fail('storeOptions.serializer', 'must be an object with stringify and parse functions')
  }
  return serializer as RedisSerializer
}

export class RedisStore implements SessionStore {
  readonly #redis: RedisConnection
  readonly #revocations: RevocationWrites
  /** The store's prefix; `#base` adds the client's own keyPrefix, for keys built inside scripts. */
  readonly #prefix: string
  readonly #base: string
  readonly #serializer: RedisSerializer
  readonly #clock: () => number
  readonly #log: FastifyBaseLogger
  readonly #maxPerUser: number
  readonly #timeout: number
  readonly #ownerKey: OwnerKey
  #bus: RedisBus | undefined

  constructor (options: RedisStoreOptions, context: StoreContext) {
    const { prefix, timeout, waitForReplicas } = redisOptions('storeOptions.', options, OPTION_KEYS)
    this.#prefix = prefix
    this.#serializer = checkSerializer(options.serializer)
    this.#clock = context.clock
    this.#log = context.log
    this.#maxPerUser = context.maxSessionsPerUser
    this.#timeout = timeout
    this.#redis = connection(options.client, options.url, timeout, context.log)
    const clientPrefix = this.#redis.redis.keyPrefix
    if (/[{}]/.test(clientPrefix)) fail('storeOptions.client', 'the client\'s keyPrefix must not hold { or }')
    this.#base = clientPrefix + this.#prefix
    this.#revocations = revocationWrites(this.#redis, waitForReplicas, timeout)
    this.#ownerKey = redisOwnerKey(this.#redis, this.#prefix)
  }

  /** Read (or created) once, then held. */
  async ownerKey (): Promise<Uint8Array> {
    return this.#ownerKey.loaded ?? await this.#ownerKey.get()
  }

  async #tag (userId: string): Promise<string> {
    return userTag(this.#ownerKey.loaded ?? await this.#ownerKey.get(), userId)
  }

  /** The client the store talks through: the one it was given, or the one it made from `url`. */
  get client (): RedisClientLike {
    return this.#redis.client
  }

  /** Once, at the app's ready(): an unreachable Redis is one warning line. */
  async ready (): Promise<void> {
    await this.#redis.ready('redis session store')
  }

  /** Redis pub/sub on the store's client (sharded on a Cluster); made on first use. */
  get bus (): RedisBus {
    // Every revocation the store announces lists its ids, whose tag routes it: no `tag` needed.
    this.#bus ??= new RedisBus({ client: this.#redis.client, prefix: this.#prefix, timeout: this.#timeout, log: this.#log })
    return this.#bus
  }

  #keys (id: string): Keys {
    const dot = id.indexOf('.')
    if (dot === -1) return { key: `${this.#prefix}s:{${id}}`, index: undefined, member: id }
    const owner = id.slice(0, dot)
    return { key: `${this.#prefix}s:{${owner}}${id.slice(dot)}`, index: `${this.#prefix}u:{${owner}}`, member: id.slice(dot + 1) }
  }

  /** The prefix of the session keys of one user, as seen by scripts (with the client's keyPrefix). */
  #userBase (owner: string): string {
    return `${this.#base}s:{${owner}}.`
  }

  #keyList (keys: Keys): string[] {
    return keys.index === undefined ? [keys.key] : [keys.key, keys.index]
  }

  /** The session of a hash, or undefined; `listed`: the user id getAll asked for (the hash is in that user's index). */
  #toStored (id: string, fields: Record<string, string>, now: number, listed?: string): StoredSession | undefined {
    if (fields.e === undefined) return undefined
    const expiresAt = Number(fields.e)
    if (!(expiresAt > now)) return undefined
    const packed = joinPieces(fields, 'm')
    const fixed = packed === undefined ? legacyFixed(fields) : unpackFixed(packed)
    if (fixed === undefined) return undefined
    const userId = listed ?? fixed.userId
    // A user's session written before 0.2 has no `u`: its id carries the user id in clear; unknown now.
    if (userId === undefined && tagOf(id) !== undefined) return undefined
    const data: Record<string, unknown> = {}
    for (const field of Object.keys(fields)) {
      if (!field.startsWith('d:')) continue
      const key = field.slice(2)
      if (key !== '__proto__') data[key] = this.#serializer.parse(fields[field] as string)
    }
    return {
      id,
      secretHash: fixed.secretHash,
      userId,
      data,
      createdAt: fixed.createdAt,
      lastSeenAt: Number(fields.l),
      expiresAt,
      authenticatedAt: fixed.authenticatedAt,
      ip: fixed.ip,
      userAgent: fixed.userAgent,
      policy: fixed.policy,
      dbsc: fields.b
    }
  }

  async get (id: string): Promise<StoredSession | undefined> {
    if (!isSessionId(id)) return undefined
    const reply = await this.#redis.call(() => this.#redis.send(['hgetall', this.#keys(id).key]).catch(marker))
    if (reply === MARKER) return undefined
    return this.#toStored(id, toHash(reply), this.#clock())
  }

  async insert (session: StoredSession): Promise<boolean> {
    const { id, userId } = session
    if (!isSessionId(id) || tagOf(id) !== (userId === undefined ? undefined : await this.#tag(userId))) {
      throw new FST_SESSION_USER_ID_INVALID('the session id does not carry the tag of its user')
    }
    const keys = this.#keys(id)
    const fields: Array<string | number> = ['l', session.lastSeenAt, 'e', session.expiresAt]
    pushPieces(fields, 'm', packFixed(session))
    if (session.dbsc !== undefined) fields.push('b', session.dbsc)
    for (const key of Object.keys(session.data)) fields.push('d:' + key, this.#serializer.stringify(session.data[key]))
    const base = keys.index === undefined ? '' : this.#userBase(tagOf(id) as string)
    const args = [this.#clock(), keys.member, this.#maxPerUser, base, session.expiresAt, ...fields]
    // Only a bound session can evict others: an anonymous insert is a plain data write.
    const evicted = (keys.index === undefined
      ? await this.#redis.run(INSERT, [keys.key], args)
      : await this.#revocations.runMaybe(INSERT, this.#keyList(keys), args, (reply) => (reply as string[]).length > 0)) as -1 | string[]
    if (evicted === -1) return false
    if (evicted.length > 0) {
      this.#log.debug({ evicted: evicted.length }, 'redis session store: a user at the cap lost their least recently used sessions')
      this.#announce(userId as string, tagOf(id) as string, evicted, 'evicted')
    }
    return true
  }

  /** Tells every instance that sessions of `userId` (by their members) ended. */
  #announce (userId: string, tag: string, members: string[], reason: 'evicted' | 'deleteAll', except?: readonly string[]): void {
    announce(this.bus, this.#log, { ids: members.map((m) => tag + '.' + m), userId, except, reason, at: this.#clock() })
  }

  async patch (id: string, patch: SessionPatch): Promise<boolean> {
    if (!isSessionId(id)) return false
    const keys = this.#keys(id)
    const dbsc = patch.dbsc
    if (!patch.clear && dbsc === undefined && patch.unset.length === 0 && patch.expiresAt === undefined) return await this.#write(keys.key, patch)
    const args: Array<string | number> = [this.#clock(), keys.member, patch.lastSeenAt, patch.expiresAt ?? '',
      patch.clear ? 1 : 0, dbsc === undefined ? '' : dbsc.from === undefined ? 'n' : 'v', dbsc?.from ?? '', dbsc?.to ?? '',
      patch.unset.length]
    for (const key of patch.unset) args.push('d:' + key)
    for (const key of Object.keys(patch.set)) args.push('d:' + key, this.#serializer.stringify(patch.set[key]))
    return await this.#redis.run(PATCH, this.#keyList(keys), args) === 1
  }

  /**
   * The common write (data set; no expiry, index, clear, unset or DBSC change), without a
   * script. While the deadline the request read is ahead on the app's clock, it is one HSET of
   * the data, atomic on its own, and of `l` when it is due (`LAST_SEEN_STEP`) or when no key
   * written was there when the request read the session. On the marker of a deleted session it
   * fails (WRONGTYPE) and writes nothing. Otherwise the HSET's reply (the fields it added)
   * counts every field it wrote only when it made the key (one removed outside the store, or
   * past its deadline on Redis's clock by more than LINGER), or when another request removed
   * every field it expected (a clear): then `PEXPIRE key 1 NX` tells the two apart (a session
   * key always has an expiry; one the HSET made has none) and drops a key the HSET made. When
   * the deadline read has passed (or is unknown), the HSET, with `l`, goes with that PEXPIRE
   * and an `HGET e`, in one batch, which says whether another request moved it. Resolves false
   * when the session was gone or past its deadline, as PATCH does.
   */
  async #write (key: string, patch: SessionPatch): Promise<boolean> {
    const fields: Array<string | number> = ['hset', key]
    const read = patch.readData
    let found = false
    for (const field of Object.keys(patch.set)) {
      if (read !== undefined && Object.hasOwn(read, field)) found = true
      fields.push('d:' + field, this.#serializer.stringify(patch.set[field]))
    }
    const deadline = patch.readExpiresAt
    if (deadline !== undefined && deadline > this.#clock()) {
      const seen = patch.readLastSeenAt
      if (!found || seen === undefined || !(patch.lastSeenAt - seen < LAST_SEEN_STEP)) fields.push('l', patch.lastSeenAt)
      const added = await this.#redis.call(() => this.#redis.send(fields).catch(marker))
      if (added === MARKER) return false
      if (added as number < fields.length / 2 - 1) return true
      return await this.#redis.call(() => this.#redis.send(['pexpire', key, 1, 'NX'])) === 0
    }
    fields.push('l', patch.lastSeenAt)
    const [, , e] = await this.#redis.call(() => Promise.all([
      this.#redis.send(fields).catch(marker),
      this.#redis.send(['pexpire', key, 1, 'NX']),
      this.#redis.send(['hget', key, 'e']).catch(marker)
    ]))
    return e !== null && e !== MARKER && Number(e) > this.#clock()
  }

  async delete (id: string): Promise<boolean> {
    if (!isSessionId(id)) return false
    const keys = this.#keys(id)
    const deleted = (reply: unknown): boolean => reply === 1
    return deleted(await this.#revocations.runMaybe(DELETE, this.#keyList(keys), [this.#clock(), keys.member], deleted))
  }

  async getAll (userId: string): Promise<StoredSession[]> {
    const owner = await this.#tag(userId)
    const now = this.#clock()
    const reply = await this.#redis.run(GET_ALL, [`${this.#prefix}u:{${owner}}`], [now, this.#userBase(owner)]) as Array<string | string[]>
    const sessions: StoredSession[] = []
    for (let i = 0; i < reply.length; i += 2) {
      const pairs = reply[i + 1] as string[]
      const fields: Record<string, string> = Object.create(null)
      for (let j = 0; j < pairs.length; j += 2) fields[pairs[j] as string] = pairs[j + 1] as string
      // The script returns the hashes of live index entries; one that does not read (its fixed
      // fields' text damaged) is left out, as get() takes it for no session.
      const session = this.#toStored(`${owner}.${reply[i] as string}`, fields, now, userId)
      if (session !== undefined) sessions.push(session)
    }
    return sessions
  }

  async deleteAll (userId: string, except: readonly string[]): Promise<number> {
    const owner = await this.#tag(userId)
    const keep: string[] = []
    for (const id of except) {
      if (tagOf(id) === owner) keep.push(id.slice(owner.length + 1))
    }
    const deleted = await this.#revocations.runMaybe(DELETE_ALL, [`${this.#prefix}u:{${owner}}`], [this.#clock(), this.#userBase(owner), ...keep],
      (reply) => (reply as string[]).length > 0) as string[]
    if (deleted.length > 0) this.#announce(userId, owner, deleted, 'deleteAll', except)
    return deleted.length
  }

  async close (): Promise<void> {
    await this.#bus?.close()
    await Promise.all([this.#redis.close(), this.#revocations.close()])
  }
}

export function redisStore (options: RedisStoreOptions, context: StoreContext): RedisStore {
  return new RedisStore(options, context)
}
