import { FST_SESSION_STORE_INVALID, FST_SESSION_STORE_UNKNOWN } from '../errors.js'
import {
  revocationMethods, statelessMethods, storeMethods,
  type RevocationStore, type SessionStore, type StatelessStore, type StoreContext, type StoreFactory
} from './store.js'

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

function missing (object: object, methods: readonly string[]): string[] {
  return methods.filter((m) => typeof (object as Record<string, unknown>)[m] !== 'function')
}

/** Checks that `revocation` implements the revocation contract; names what is missing. */
export function assertRevocation (revocation: unknown, what: string): RevocationStore {
  if (revocation === null || typeof revocation !== 'object') {
    throw new FST_SESSION_STORE_INVALID(`${what} is not an object`)
  }
  const lacks = missing(revocation, revocationMethods)
  if (lacks.length > 0) throw new FST_SESSION_STORE_INVALID(`${what} lacks the method(s) ${lacks.join(', ')}`)
  return revocation as RevocationStore
}

/** Checks that an object implements one of the two store contracts (`stateless: true` for the cookie kind); names what is missing. */
export function assertStore (store: unknown, what: string): SessionStore | StatelessStore {
  if (store === null || typeof store !== 'object') {
    throw new FST_SESSION_STORE_INVALID(`${what} is not an object`)
  }
  const stateless = (store as { stateless?: unknown }).stateless === true
  const lacks = missing(store, stateless ? statelessMethods : storeMethods)
  if (lacks.length > 0) {
    throw new FST_SESSION_STORE_INVALID(`${what} lacks the method(s) ${lacks.join(', ')}`)
  }
  const revocation = (store as { revocation?: unknown }).revocation
  if (stateless && revocation !== undefined) assertRevocation(revocation, `the revocation store of ${what}`)
  return store as SessionStore | StatelessStore
}

/** Resolves `store` (a name or an object) once, at register(). */
export function resolveStore (store: string | SessionStore | StatelessStore, options: unknown, context: StoreContext): SessionStore | StatelessStore {
  if (typeof store !== 'string') return assertStore(store, 'the store object')
  const factory = factories.get(store)
  if (factory === undefined) throw new FST_SESSION_STORE_UNKNOWN(store, knownStores().join(', '))
  return assertStore(factory(options, context), `the store built by "${store}"`)
}
