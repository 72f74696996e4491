import type { FastifyBaseLogger } from 'fastify'
import { MemoryBus } from './memory.js'

// A bus for a store that has none of its own (a connect store, a store object of the app's, the
// cookie store with a revocation store of the app's that has none): in-process, one per store
// object, so that every plugin instance of the process given the same store hears the others.
// Other processes do not.

const buses = new WeakMap<object, MemoryBus>()

export function localBus (store: object, log: FastifyBaseLogger): MemoryBus {
  let bus = buses.get(store)
  if (bus === undefined) {
    bus = new MemoryBus(log)
    buses.set(store, bus)
  }
  return bus
}
