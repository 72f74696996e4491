import { Cluster } from 'ioredis'
import { FST_SESSION_STORE_NOT_REPLICATED } from '../errors.js'
import type { RedisConnection } from './connection.js'
import type { Script } from './script.js'

// Revocations that survive a failover. Redis replicates asynchronously: a deletion the master
// acknowledged and then lost with the master is undone when its replica takes over, and a
// logged-out cookie authenticates again. With `waitForReplicas`, each revocation is sent with
// `WAIT <n> <ms>` right behind it, in one pipeline: one round trip, and on a Cluster the same
// node (a pipeline goes where its keys' slot lives; WAIT has no key and goes along). WAIT holds
// its connection until the replicas answer, so revocations get a connection of their own and
// reads never queue behind them. Data writes do not wait.

/** Each command as ioredis's pipeline takes it: name, then arguments. */
type Command = [string, ...Array<string | number>]

export interface RevocationWrites {
  /** Runs a script that revokes; resolves only once the revocation is as durable as asked. */
  run: (script: Script, keys: string[], args: Array<string | number>) => Promise<unknown>
  /**
   * Runs a script that may revoke (a login at the per-user cap evicts); `revoked(reply)` says
   * whether it did, and only then does a shortfall of replicas fail the call.
   */
  runMaybe: (script: Script, keys: string[], args: Array<string | number>, revoked: (reply: unknown) => boolean) => Promise<unknown>
  /** One plain command that revokes. */
  command: (command: Command) => Promise<unknown>
  close: () => Promise<void>
}

/** `waitForReplicas: 0`: revocations are ordinary calls on the store's connection. */
function unreplicated (redis: RedisConnection): RevocationWrites {
  return {
    run: (script, keys, args) => redis.run(script, keys, args),
    runMaybe: (script, keys, args) => redis.run(script, keys, args),
    command: ([name, ...args]) => redis.call(() => redis.send(name, args)),
    close: async () => {}
  }
}

class Replicated implements RevocationWrites {
  readonly #redis: RedisConnection
  readonly #replicas: number
  /**
   * WAIT's own timeout: the store's less 200 ms (half of it, for a short one), so that a shortfall
   * is reported as one, not as a timeout. Redis checks WAIT's deadline about every 100 ms (hz 10).
   */
  readonly #waitMs: number

  constructor (redis: RedisConnection, replicas: number, timeout: number) {
    this.#redis = redis.duplicate()
    this.#replicas = replicas
    this.#waitMs = Math.max(1, timeout - Math.min(200, Math.floor(timeout / 2)))
  }

  /** Sends `command` and WAIT in one pipeline; resolves [the command's reply, the replicas that acknowledged]. */
  async #withWait (command: Command, moved = false): Promise<[unknown, number]> {
    const client = this.#redis.client
    const replies = await client.pipeline([command, ['wait', this.#replicas, this.#waitMs]]).exec() as Array<[Error | null, unknown]>
    const [err] = replies[0] as [Error | null, unknown]
    // A slot that moved (a failover): ioredis retries a Cluster pipeline only when every reply
    // is the same error, and WAIT answers; learn the new owner and send again, once.
    if (!moved && err !== null && /^(MOVED|ASK) /.test(err.message) && client instanceof Cluster) {
      await new Promise<void>((resolve) => { client.refreshSlotsCache(() => resolve()) })
      return await this.#withWait(command, true)
    }
    for (const [err] of replies) if (err !== null) throw err
    return [(replies[0] as [null, unknown])[1], (replies[1] as [null, number])[1]]
  }

  #check (acked: number): void {
    if (acked < this.#replicas) throw new FST_SESSION_STORE_NOT_REPLICATED(acked, this.#replicas, this.#waitMs)
  }

  /**
   * EVAL, not EVALSHA: a NOSCRIPT answer would come after WAIT had held the connection for
   * nothing, and the retry would wait again. A revocation is rare; its script is 1 to 2 KB.
   */
  #script (script: Script, keys: string[], args: Array<string | number>): Promise<[unknown, number]> {
    return this.#redis.call(() => this.#withWait(['eval', script.lua, keys.length, ...keys, ...args]))
  }

  async run (script: Script, keys: string[], args: Array<string | number>): Promise<unknown> {
    const [reply, acked] = await this.#script(script, keys, args)
    this.#check(acked)
    return reply
  }

  async runMaybe (script: Script, keys: string[], args: Array<string | number>, revoked: (reply: unknown) => boolean): Promise<unknown> {
    const [reply, acked] = await this.#script(script, keys, args)
    if (revoked(reply)) this.#check(acked)
    return reply
  }

  async command (command: Command): Promise<unknown> {
    const [reply, acked] = await this.#redis.call(() => this.#withWait(command))
    this.#check(acked)
    return reply
  }

  close (): Promise<void> {
    return this.#redis.close()
  }
}

/** What the store revokes through, decided once from `waitForReplicas`. */
export function revocationWrites (redis: RedisConnection, waitForReplicas: number, timeout: number): RevocationWrites {
  return waitForReplicas === 0 ? unreplicated(redis) : new Replicated(redis, waitForReplicas, timeout)
}
