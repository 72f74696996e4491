import type { FastifyBaseLogger } from 'fastify'
import { fail } from '../util/check.js'
import type { SessionCore } from './core.js'
import { isStateless, type SessionStore, type StatelessStore } from '../stores/store.js'
import type { Backend } from './backend.js'
import { SealedBackend } from './sealed.js'
import { ServerBackend } from './server.js'

/** The one place the kind of store is looked at: once, at register(). */
export function backendFor (core: SessionCore, store: SessionStore | StatelessStore, log: FastifyBaseLogger): Backend {
  if (!isStateless(store)) return new ServerBackend(core, store, log)
  // A sealed token could not carry what a request changes (its response sends no Set-Cookie),
  // and would be a bearer credential no server holds: a self-contained token, not a session.
  if (core.options.bearer) fail('bearer', 'needs a server-side store ("memory", "redis", "postgres", ...); the cookie store seals sessions into the cookie and cannot carry bearer tokens')
  return new SealedBackend(core, store, log)
}
