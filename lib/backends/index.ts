import type { SessionCore } from '../core.js'
import { isStateless, type SessionStore, type StatelessStore } from '../stores/store.js'
import type { Backend } from './backend.js'
import { SealedBackend } from './sealed.js'
import { ServerBackend } from './server.js'

/** The one place the kind of store is looked at: once, at register(). */
export function backendFor (core: SessionCore, store: SessionStore | StatelessStore): Backend {
  return isStateless(store) ? new SealedBackend(core, store) : new ServerBackend(core, store)
}
