import { FST_SESSION_MEMBER_READONLY, FST_SESSION_VALUE_INVALID } from '../errors.js'

// Session data as properties, in the dialect express-session taught the libraries apps plug in
// (passport-oauth2, openid-client, @fastify/csrf-protection's '@fastify/session' mode):
// `session.foo = v` is set('foo', v), `session.foo` is get('foo'), `delete session.foo` is
// delete('foo'), `'foo' in session` is has('foo'), and Object.keys, spread and JSON.stringify
// show the data keys. The members (`id`, `get`, `regenerate`, ...) keep their meaning.
//
// `request.session` is a Proxy over the Session, made on the request's first read of
// `request.session`: a request that never reads it pays nothing. Members are looked up on the
// Session itself; methods are bound to it (its state is in private fields, which a Proxy
// cannot reach), once per request and method.

/** @internal The Session's bound method `name`, made once per session. */
export const kMethod = Symbol('fastify-user-sessions.method')

/** @internal The Session's data keys. */
export const kKeys = Symbol('fastify-user-sessions.keys')

/** What the handler needs of a Session; the class is not imported, so that it can import this file. */
interface Target {
  get: (key: string) => unknown
  set: (key: string, value: unknown) => unknown
  has: (key: string) => boolean
  delete: (key: string) => unknown
  [kKeys]: () => string[]
  [kMethod]: (name: string) => unknown
}

/** How a member name is read: a method bound to the session, an accessor read on it, or inherited from Object. */
type Kind = 'method' | 'accessor' | 'inherited'

let members: Record<string, Kind> | undefined

/** The member names of a session (its class's and Object's), found once from its prototype. */
function membersOf (target: object): Record<string, Kind> {
  if (members !== undefined) return members
  const found: Record<string, Kind> = Object.create(null)
  const proto = Object.getPrototypeOf(target) as object
  for (const name of Object.getOwnPropertyNames(proto)) {
    const d = Object.getOwnPropertyDescriptor(proto, name) as PropertyDescriptor
    found[name] = name !== 'constructor' && typeof d.value === 'function' ? 'method' : 'accessor'
  }
  for (const name of Object.getOwnPropertyNames(Object.prototype)) found[name] ??= 'inherited'
  members = found
  return found
}

function readonly (key: string): Error {
  return new FST_SESSION_MEMBER_READONLY(key, JSON.stringify(key))
}

export const properties: ProxyHandler<Target> = {
  get (target, key, receiver) {
    if (typeof key === 'symbol') return Reflect.get(target, key, target)
    const kind = membersOf(target)[key]
    if (kind === undefined) return target.get(key)
    if (kind === 'method') return target[kMethod](key)
    return Reflect.get(target, key, kind === 'accessor' ? target : receiver)
  },
  set (target, key, value, receiver) {
    if (typeof key === 'symbol') return Reflect.set(target, key, value, target)
    if (membersOf(target)[key] !== undefined) throw readonly(key)
    target.set(key, value)
    return true
  },
  has (target, key) {
    if (typeof key === 'symbol') return Reflect.has(target, key)
    return membersOf(target)[key] !== undefined || target.has(key)
  },
  deleteProperty (target, key) {
    if (typeof key === 'symbol') return Reflect.deleteProperty(target, key)
    if (membersOf(target)[key] !== undefined) throw readonly(key)
    target.delete(key)
    return true
  },
  ownKeys (target) {
    const all = membersOf(target)
    const keys: Array<string | symbol> = target[kKeys]().filter((key) => all[key] === undefined)
    for (const s of Object.getOwnPropertySymbols(target)) keys.push(s)
    return keys
  },
  getOwnPropertyDescriptor (target, key) {
    if (typeof key === 'symbol') return Reflect.getOwnPropertyDescriptor(target, key)
    if (membersOf(target)[key] !== undefined || !target.has(key)) return undefined
    return { value: target.get(key), writable: true, enumerable: true, configurable: true }
  },
  defineProperty (target, key, descriptor) {
    if (typeof key === 'symbol') return Reflect.defineProperty(target, key, descriptor)
    if (membersOf(target)[key] !== undefined) throw readonly(key)
    if (!('value' in descriptor) || descriptor.configurable === false) {
      throw new FST_SESSION_VALUE_INVALID(key, 'session data is a configurable value, never an accessor or a fixed property')
    }
    target.set(key, descriptor.value)
    return true
  },
  // Frozen or re-parented, the Proxy would have to lie about the session's data.
  preventExtensions () {
    return false
  },
  setPrototypeOf () {
    return false
  }
}
