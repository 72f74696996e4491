import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { SessionCore } from './core.js'
import { FST_SESSION_DISABLED } from './errors.js'
import { normalizeOptions, type FastifyUserSessionsOptions } from './options.js'
import { Session } from './session.js'
import { resolveStore } from './stores/registry.js'
import { UserSessions } from './user-sessions.js'

// The wiring: one onRequest hook that reads the cookie (and the store, only when a cookie is
// there), a lazy `request.session`, one onSend hook that writes what changed, and onClose.
// A route with `config: { session: false }` never touches the store: when the store hangs,
// such routes are not held up by the load of a session they do not use.

const kSession = Symbol('fastify-user-sessions.session')

interface SessionRequest extends FastifyRequest {
  [kSession]: Session | null
}

export async function sessionPlugin (fastify: FastifyInstance, options: FastifyUserSessionsOptions): Promise<void> {
  const opts = normalizeOptions(options)
  const store = resolveStore(opts.store, opts.storeOptions, {
    clock: opts.clock,
    log: fastify.log,
    maxSessionsPerUser: opts.maxSessionsPerUser,
    secrets: opts.secrets,
    cookieName: opts.cookieName
  })
  const core = new SessionCore(opts, store)

  fastify.decorate('sessions', new UserSessions(core))
  fastify.decorateRequest(kSession, null)
  fastify.decorateRequest('session', {
    getter (this: FastifyRequest): Session {
      const req = this as SessionRequest
      let session = req[kSession]
      if (session === null) {
        if (this.routeOptions.config.session === false) throw new FST_SESSION_DISABLED(this.routeOptions.url as string)
        session = new Session(core, this)
        req[kSession] = session
      }
      return session
    }
  })

  fastify.addHook('onRequest', function loadSession (request, _reply, done) {
    const req = request as SessionRequest
    const cookie = request.cookies[opts.cookieName]
    if (cookie === undefined || request.routeOptions.config.session === false) {
      done()
      return
    }
    core.load(request).then((result) => {
      switch (result.kind) {
        case 'loaded':
          req[kSession] = new Session(core, request, result.token)
          break
        case 'unavailable':
          req[kSession] = new Session(core, request, undefined, false, result.error)
          break
        case 'rejected':
          req[kSession] = new Session(core, request, undefined, true)
          break
      }
      done()
    }, done)
  })

  fastify.addHook('onSend', function saveSession (request: FastifyRequest, reply: FastifyReply, payload: unknown, done) {
    const session = (request as SessionRequest)[kSession]
    if (session === null) {
      done(null, payload)
      return
    }
    const saving = session.commit(reply)
    if (saving === undefined) done(null, payload)
    else saving.then(() => done(null, payload), done)
  })

  if (typeof store.close === 'function') {
    const close = store.close.bind(store)
    fastify.addHook('onClose', async () => { await close() })
  }
}
