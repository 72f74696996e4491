import type { FastifyBaseLogger } from 'fastify'
import type { Problems } from '../util/check.js'
import type { SessionCore } from './core.js'
import { isStateless, type SessionStore, type StatelessStore } from '../stores/store.js'
import type { Backend } from './backend.js'
import { SealedBackend } from './sealed.js'
import { ServerBackend } from './server.js'

/**
 * The one place the kind of store is looked at: once, at register(). What the options ask of a
 * stateless store that it cannot do goes to `problems`, reported with the others; the backend is
 * undefined then. `prefix`: the plugin's route prefix.
 */
export function backendFor (core: SessionCore, store: SessionStore | StatelessStore, log: FastifyBaseLogger,
  problems: Problems, prefix = ''): Backend | undefined {
  if (!isStateless(store)) return new ServerBackend(core, store, log, prefix)
  // The server must know which of a session's cookies is current, and keep the browser's key.
  if (core.options.dbsc !== undefined) {
    problems.fail('dbsc', 'needs a server-side store ("memory", "redis", "postgres", ...); the cookie store keeps nothing on the server per session: ' +
      'no key to check a refresh with, and no way to tell a fresh cookie from a copy')
  }
  // A sealed token could not carry what a request changes (its response sends no Set-Cookie),
  // and would be a bearer credential no server holds: a self-contained token, not a session.
  if (core.options.bearer) {
    problems.fail('bearer', 'needs a server-side store ("memory", "redis", "postgres", ...); ' +
      'the cookie store seals sessions into the cookie and cannot carry bearer tokens')
  }
  // Without one, a logout would only expire the cookie of the browser that sent it (CVE-2024-31999),
  // and app.sessions.delete and deleteAll could not be done: a "log out everywhere" would fail.
  const revocation = store.revocation
  if (revocation === undefined) {
    problems.fail('storeOptions.revocation', 'is required by the cookie store (and any stateless store): ' +
      'it keeps what a logout, app.sessions.delete and deleteAll revoke, so that copies of the cookie stop working too; ' +
      "'memory' for one process (forgotten on restart), or { type: 'redis', client } for every instance of the app")
  }
  return revocation === undefined || core.options.bearer ? undefined : new SealedBackend(core, store, revocation, log)
}
