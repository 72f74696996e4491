import type { FastifyBaseLogger } from 'fastify'
import type { BusSubscriber, Revocation, Unsubscribe } from './bus.js'
import { decode } from './codec.js'

// The subscribers of one bus, shared by every implementation: the first to come opens the
// subscription, the last to leave closes it, and each call to a subscriber is guarded, so that
// one that throws is logged and the others still hear the message.

export class Subscribers {
  readonly #entries = new Set<{ subscriber: BusSubscriber }>()
  readonly #log: FastifyBaseLogger
  readonly #name: string
  readonly #first: () => void
  readonly #last: () => void

  /** `name` goes in front of every log line ('redis revocation bus'). */
  constructor (name: string, log: FastifyBaseLogger, first: () => void, last: () => void) {
    this.#name = name
    this.#log = log
    this.#first = first
    this.#last = last
  }

  add (subscriber: BusSubscriber): Unsubscribe {
    const entry = { subscriber }
    this.#entries.add(entry)
    if (this.#entries.size === 1) this.#first()
    return () => {
      if (!this.#entries.delete(entry)) return
      if (this.#entries.size === 0) this.#last()
    }
  }

  /** Forgets every subscriber, without calling `last`: the bus is closing. */
  clear (): void {
    this.#entries.clear()
  }

  #each (call: (subscriber: BusSubscriber) => void): void {
    for (const entry of [...this.#entries]) {
      // One that left during this delivery no longer hears it.
      if (!this.#entries.has(entry)) continue
      try {
        call(entry.subscriber)
      } catch (err) {
        this.#log.error({ err }, `${this.#name}: a subscriber threw`)
      }
    }
  }

  revoked (revocation: Revocation): void {
    this.#each((subscriber) => subscriber.revoked(revocation))
  }

  /** Delivers the message `text` from the wire; a malformed one is dropped. */
  message (text: string): void {
    const revocation = decode(text)
    if (revocation === undefined) {
      this.#log.debug(`${this.#name}: dropped a malformed message`)
      return
    }
    this.revoked(revocation)
  }

  /** Messages are heard from now on (for the routing keys `keys`, or all): what came before may have been missed. */
  resync (keys?: readonly string[]): void {
    this.#log.debug(`${this.#name}: subscription heard, resyncing`)
    this.#each((subscriber) => subscriber.resync(keys))
  }
}

export const noop = (): void => {}
