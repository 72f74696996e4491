import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { backendFor } from '../backends/index.js'
import type { LoadResult } from '../backends/backend.js'
import { MAX_COOKIE_LENGTH, SessionCore } from '../backends/core.js'
import { FST_SESSION_DISABLED } from '../errors.js'
import { normalizeOptions, type FastifyUserSessionsOptions } from '../options.js'
import { Problems } from '../util/check.js'
import { SessionEventEmitter } from '../session/events.js'
import { kCommit, kView, Session, type SessionContext } from '../session/session.js'
import { resolveStore } from '../stores/registry.js'
import type { SessionStore } from '../stores/store.js'
import { UserSessions } from '../session/user-sessions.js'
import { Watcher } from '../session/watch.js'
import { dbscRoutes } from './dbsc.js'

// The wiring: one onRequest hook that reads the cookie (and the store, only when a cookie is
// there), a lazy `request.session`, one onSend hook that writes what changed, and onClose.
// With `bearer: true`, a request with `Authorization: Bearer <token>` is read from its token
// instead, and its cookie is neither read nor set; which hook runs is chosen at register().
// A route with `config: { session: false }` never touches the store: when the store hangs,
// such routes are not held up by the load of a session they do not use.

const kSession = Symbol('fastify-user-sessions.session')
const NONE: LoadResult = Object.freeze({ kind: 'none' })
/** `Bearer ` followed by the token (RFC 6750: the scheme is case-insensitive). */
const BEARER = /^bearer +([^ ]+) *$/i

interface SessionRequest extends FastifyRequest {
  [kSession]: Session | null
}

export async function sessionPlugin (fastify: FastifyInstance, options: FastifyUserSessionsOptions): Promise<void> {
  // Every problem of the options, the store's included, in one error: one restart fixes them all.
  const problems = new Problems()
  const opts = normalizeOptions(options, problems)
  const store = problems.check(undefined, () => resolveStore(opts.store, opts.storeOptions, {
    clock: opts.clock,
    log: fastify.log,
    maxSessionsPerUser: opts.maxSessionsPerUser,
    secrets: opts.secrets,
    cookieName: opts.cookieName,
    problems
  }))
  const core = new SessionCore(opts)
  const made = store === undefined ? undefined : backendFor(core, store, fastify.log, problems, fastify.prefix)
  // A store built here from its name is ours to close (its clients, its timers); a store object stays the app's.
  if (problems.found && typeof opts.store === 'string') await store?.close?.()
  const backend = problems.result(made)
  const watcher = new Watcher(backend.bus, (state) => backend.alive(state), opts.clock, fastify.log)
  const events = new SessionEventEmitter(fastify.log, (listening) => { watcher.listening(listening) })
  watcher.hear(events)
  const context: SessionContext = { backend, events, watcher }
  const cookieName = opts.cookieName

  fastify.decorate('sessions', new UserSessions(backend, fastify.log, events))
  if (backend.binding !== undefined) dbscRoutes(fastify, backend, backend.binding, events)
  fastify.decorateRequest(kSession, null)
  fastify.decorateRequest('session', {
    getter (this: FastifyRequest): FastifyRequest['session'] {
      const req = this as SessionRequest
      let session = req[kSession]
      if (session === null) {
        if (this.routeOptions.config.session === false) throw new FST_SESSION_DISABLED(this.routeOptions.url as string)
        session = new Session(context, this, NONE, false)
        req[kSession] = session
      }
      return session[kView]() as FastifyRequest['session']
    }
  })

  /** Loads the session a credential stands for; `bearer`: it came as a token. */
  function load (request: FastifyRequest, raw: string, bearer: boolean, done: (err?: Error) => void): void {
    const req = request as SessionRequest
    if (raw.length > MAX_COOKIE_LENGTH) {
      req[kSession] = new Session(context, request, core.reject(request.log, 'oversized'), bearer)
      done()
      return
    }
    backend.load(request.log, raw, bearer).then((loaded) => {
      req[kSession] = new Session(context, request, loaded, bearer)
      done()
    }, done)
  }

  fastify.addHook('onRequest', opts.bearer
    ? function loadSessionOrToken (request, _reply, done) {
      if (request.routeOptions.config.session === false) {
        done()
        return
      }
      const authorization = request.headers.authorization
      if (authorization !== undefined && authorization.length > 7 && authorization.slice(0, 7).toLowerCase() === 'bearer ') {
        load(request, BEARER.exec(authorization)?.[1] ?? '', true, done)
        return
      }
      const raw = request.cookies[cookieName]
      if (raw === undefined || raw === '') done()
      else load(request, raw, false, done)
    }
    : function loadSession (request, _reply, done) {
      const raw = request.cookies[cookieName]
      if (raw === undefined || raw === '' || request.routeOptions.config.session === false) done()
      else load(request, raw, false, done)
    })

  // A reply sent twice (a passport strategy's redirect, then the route's handler) reaches onSend
  // again while its first send waits for the store: that second send is dropped, as Fastify
  // drops one made after the first went out.
  const saving = new WeakSet<FastifyRequest>()
  fastify.addHook('onSend', function saveSession (request: FastifyRequest, reply: FastifyReply, payload: unknown, done) {
    const session = (request as SessionRequest)[kSession]
    if (session === null) {
      done(null, payload)
      return
    }
    if (saving.has(request)) {
      request.log.warn('the reply was sent twice; the second send is dropped (did a route handler send after a passport redirect?)')
      return
    }
    let write: Promise<void> | undefined
    try {
      write = session[kCommit](reply)
    } catch (err) {
      done(err as Error)
      return
    }
    if (write === undefined) {
      done(null, payload)
      return
    }
    saving.add(request)
    write.then(() => {
      saving.delete(request)
      done(null, payload)
    }, (err: Error) => {
      saving.delete(request)
      done(err)
    })
  })

  // What only the store's server can tell (a missing table), once, before the app serves.
  const ready = (store as Partial<SessionStore>).ready
  if (typeof ready === 'function') fastify.addHook('onReady', async () => { await ready.call(store) })

  fastify.addHook('onClose', async () => {
    await watcher.close()
    await backend.close()
  })
}
