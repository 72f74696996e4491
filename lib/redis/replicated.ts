import { FST_SESSION_STORE_NOT_REPLICATED } from '../errors.js'
import type { Arg } from './client.js'
import type { RedisConnection } from './connection.js'
import type { Script } from './script.js'

// Revocations that survive a failover. Redis replicates asynchronously: a deletion the master
// acknowledged and then lost with the master is undone when its replica takes over, and a
// logged-out cookie authenticates again. With `waitForReplicas`, a write that revoked something
// (its reply says so) is followed by `WAIT <n> <ms>` on the same connection, to the node of its
// key; a write that revoked nothing (a login below the cap, a delete of a session already gone)
// costs what it costs without replicas. WAIT holds its connection until the replicas answer,
// so revocations get a connection of their own and reads never queue behind them. Data writes
// do not wait.

/** One command: name, then arguments. */
type Command = [string, ...Arg[]]

export interface RevocationWrites {
  /** Runs a script that revokes; resolves only once the revocation is as durable as asked. */
  run: (script: Script, keys: string[], args: Arg[]) => Promise<unknown>
  /**
   * Runs a script that may revoke (a login at the per-user cap evicts); `revoked(reply)` says
   * whether it did, and only then does a shortfall of replicas fail the call.
   */
  runMaybe: (script: Script, keys: string[], args: Arg[], revoked: (reply: unknown) => boolean) => Promise<unknown>
  /** One plain command on a key that may revoke, as `runMaybe`. */
  command: (command: Command, revoked: (reply: unknown) => boolean) => Promise<unknown>
  close: () => Promise<void>
}

/** `waitForReplicas: 0`: revocations are ordinary calls on the store's connection. */
function unreplicated (redis: RedisConnection): RevocationWrites {
  return {
    run: (script, keys, args) => redis.run(script, keys, args),
    runMaybe: (script, keys, args) => redis.run(script, keys, args),
    command: (command) => redis.call(() => redis.send(command)),
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

  /**
   * Waits until the revocation just written through this connection to the node of `key` is on
   * enough replicas. A master that has fewer replicas connected than asked fails at once
   * (ROLE lists them): WAIT would hold the connection for its whole timeout to say the same.
   */
  async #replicate (key: string): Promise<void> {
    const redis = this.#redis.redis
    // A master's ROLE: ['master', offset, [[host, port, offset], ...one per replica connected]].
    const role = await this.#redis.call(() => redis.onNode(key, ['role'])) as [string, number, unknown[]]
    const connected = role[2].length
    if (connected < this.#replicas) throw new FST_SESSION_STORE_NOT_REPLICATED(connected, this.#replicas, 0)
    const acked = await this.#redis.call(() => redis.onNode(key, ['wait', this.#replicas, this.#waitMs])) as number
    if (acked < this.#replicas) throw new FST_SESSION_STORE_NOT_REPLICATED(acked, this.#replicas, this.#waitMs)
  }

  async run (script: Script, keys: string[], args: Arg[]): Promise<unknown> {
    return await this.runMaybe(script, keys, args, () => true)
  }

  async runMaybe (script: Script, keys: string[], args: Arg[], revoked: (reply: unknown) => boolean): Promise<unknown> {
    const reply = await this.#redis.run(script, keys, args)
    if (revoked(reply)) await this.#replicate(keys[0] as string)
    return reply
  }

  async command (command: Command, revoked: (reply: unknown) => boolean): Promise<unknown> {
    const reply = await this.#redis.call(() => this.#redis.send(command))
    if (revoked(reply)) await this.#replicate(command[1] as string)
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
