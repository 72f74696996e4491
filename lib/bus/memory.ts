import type { FastifyBaseLogger } from 'fastify'
import type { BusSubscriber, Revocation, RevocationBus, Unsubscribe } from './bus.js'
import { encode } from './codec.js'
import { noop, Subscribers } from './subscribers.js'

// The in-process bus: the memory store's (one per named table, so that every plugin instance
// of the process sharing the table hears the others), and a process-local bus for any store
// that has none of its own. A message goes through the codec as it would through Redis, so
// that subscribers get a fresh copy of the same shape on every bus, and it is delivered on a
// later microtask, never inside the publisher's stack.

export class MemoryBus implements RevocationBus {
  readonly #subscribers: Subscribers

  constructor (log: FastifyBaseLogger) {
    this.#subscribers = new Subscribers('memory revocation bus', log, noop, noop)
  }

  async publish (revocation: Revocation): Promise<void> {
    const text = encode(revocation)
    queueMicrotask(() => this.#subscribers.message(text))
  }

  subscribe (subscriber: BusSubscriber): Unsubscribe {
    return this.#subscribers.add(subscriber)
  }

  follow (_id: string): Unsubscribe {
    return noop
  }

  async close (): Promise<void> {
    this.#subscribers.clear()
  }
}
