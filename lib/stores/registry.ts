import { FST_SESSION_STORE_INVALID, FST_SESSION_STORE_UNKNOWN } from '../errors.js'
import { storeMethods, type SessionStore, type StoreContext, type StoreFactory } from './store.js'

// Store name -> factory, in the spirit of Plug.Session's `store: :ets`. Built-in stores
// register themselves when the package is imported; users add theirs with registerStore().

const factories = new Map<string, StoreFactory>()
const NAME = /^[a-z][a-z0-9_-]*$/i

export function registerStore (name: string, factory: StoreFactory): void {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new FST_SESSION_STORE_INVALID(`store name must match ${NAME}, got ${JSON.stringify(name)}`)
  }
  if (typeof factory !== 'function') {
    throw new FST_SESSION_STORE_INVALID(`the factory of store "${name}" must be a function`)
  }
  if (factories.has(name)) {
    throw new FST_SESSION_STORE_INVALID(`a store named "${name}" is already registered`)
  }
  factories.set(name, factory)
}

export function knownStores (): string[] {
  return [...factories.keys()]
}

/** Checks that an object implements the store contract; names what is missing. */
export function assertStore (store: unknown, what: string): SessionStore {
  if (store === null || typeof store !== 'object') {
    throw new FST_SESSION_STORE_INVALID(`${what} is not an object`)
  }
  const missing = storeMethods.filter((m) => typeof (store as Record<string, unknown>)[m] !== 'function')
  if (missing.length > 0) {
    throw new FST_SESSION_STORE_INVALID(`${what} lacks the method(s) ${missing.join(', ')}`)
  }
  return store as SessionStore
}

/** Resolves `store` (a name or an object) once, at register(). */
export function resolveStore (store: string | SessionStore, options: unknown, context: StoreContext): SessionStore {
  if (typeof store !== 'string') return assertStore(store, 'the store object')
  const factory = factories.get(store)
  if (factory === undefined) throw new FST_SESSION_STORE_UNKNOWN(store, knownStores().join(', '))
  return assertStore(factory(options, context), `the store built by "${store}"`)
}
