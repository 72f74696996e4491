import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Backend } from '../backends/backend.js'
import type { DeviceBinding, Rebound } from '../backends/dbsc.js'
import type { SessionEventEmitter } from '../session/events.js'

// The two routes of device-bound sessions (DBSC), added at register() when the `dbsc` option is
// on: the browser posts its new key to the registration route after a login, and asks the
// refresh route for a fresh cookie. Both answer in the spec's terms (w3c/webappsec-dbsc):
// headers `Secure-Session-Response`, `Sec-Secure-Session-Id`, `Secure-Session-Challenge`, and
// the session instructions as JSON. Neither loads `request.session`: they read what they need.
// A refusal is a 4xx that says why, never a 5xx; a store outage is a 503 (the browser backs off).

/** A structured-field string (RFC 9651) or, as Chromium 156 sends it, the bare value; its parameters are ignored. */
const VALUE = /^(?:"([A-Za-z0-9._-]+)"|([A-Za-z0-9._-]+))\s*(?:;.*)?$/

/** The value of a request header holding one string of base64url characters and dots (a JWT, a session id). */
export function headerValue (header: string | string[] | undefined): string | undefined {
  if (typeof header !== 'string') return undefined
  const m = VALUE.exec(header.trim())
  return m === null ? undefined : m[1] ?? m[2]
}

function noStore (reply: FastifyReply): FastifyReply {
  return reply.header('cache-control', 'no-store')
}

function refuse (reply: FastifyReply, status: number, message: string): FastifyReply {
  reply.request.log.debug({ reason: message }, 'device-bound session request refused')
  return noStore(reply).code(status).send({ statusCode: status, message })
}

export function dbscRoutes (fastify: FastifyInstance, backend: Backend, binding: DeviceBinding, events: SessionEventEmitter): void {
  const core = backend.core
  const { cookieName, cookie } = core.options
  const routeOptions = { config: { session: false } }

  /** The cookie's attributes as the browser compares them (Domain, Path, Secure, HttpOnly, SameSite). */
  function attributes (request: FastifyRequest): string {
    const parts = [`Path=${cookie.path}`]
    if (cookie.domain !== undefined) parts.push(`Domain=${cookie.domain}`)
    if (cookie.secure === true || request.protocol === 'https') parts.push('Secure')
    if (cookie.httpOnly) parts.push('HttpOnly')
    parts.push(`SameSite=${cookie.sameSite[0]?.toUpperCase()}${cookie.sameSite.slice(1)}`)
    return parts.join('; ')
  }

  /** The session instructions, with the new cookie and a challenge for the next refresh. */
  function rebound (request: FastifyRequest, reply: FastifyReply, bound: Rebound): object {
    const { state, secret } = bound
    core.writeCookie(reply, backend.cookieValue(request, state, secret, state.data), bound.cookieExpiresAt, undefined, true)
    reply.header('secure-session-challenge', `"${bound.challenge}";id="${state.id}"`)
    return {
      session_identifier: state.id,
      refresh_url: binding.refreshUrl,
      scope: { include_site: false, scope_specification: [] },
      credentials: [{ type: 'cookie', name: cookieName, attributes: attributes(request) }]
    }
  }

  fastify.post(binding.options.registrationPath, routeOptions, async (request, reply) => {
    const proof = headerValue(request.headers['secure-session-response'])
    if (proof === undefined) return refuse(reply, 400, 'Send the registration proof in Secure-Session-Response')
    const outcome = await binding.register(request.log, request.cookies[cookieName], proof)
    switch (outcome.kind) {
      case 'unavailable':
        throw outcome.error
      case 'refused':
        return refuse(reply, outcome.status, outcome.reason)
      default: {
        const body = rebound(request, reply, outcome.bound)
        if (events.listening('bound')) {
          const { ip, userAgent } = core.client(request)
          const state = outcome.bound.state
          events.emit('bound', { id: state.id, userId: state.userId, at: core.now(), ip, userAgent })
        }
        request.log.debug('session bound to a device key')
        return body
      }
    }
  })

  fastify.post(binding.options.refreshPath, routeOptions, async (request, reply) => {
    const id = headerValue(request.headers['sec-secure-session-id'])
    if (id === undefined) return refuse(reply, 400, 'Send the session identifier in Sec-Secure-Session-Id')
    const header = request.headers['secure-session-response']
    const proof = header === undefined ? undefined : headerValue(header)
    if (header !== undefined && proof === undefined) return refuse(reply, 400, 'Secure-Session-Response holds no proof')
    const outcome = await binding.refresh(request.log, id, proof)
    switch (outcome.kind) {
      case 'unavailable':
        throw outcome.error
      case 'refused':
        return refuse(reply, outcome.status, outcome.reason)
      case 'challenge':
        return noStore(reply).code(403).header('secure-session-challenge', `"${outcome.challenge}";id="${outcome.id}"`)
          .send({ statusCode: 403, message: 'Sign the challenge in Secure-Session-Challenge' })
      case 'end':
        // The spec's way to end the browser's session; Chromium 156 wants the identifier with it.
        request.log.debug({ reason: outcome.reason }, 'device-bound session ended')
        return noStore(reply).send({ session_identifier: id, continue: false })
      default:
        return rebound(request, reply, outcome.bound)
    }
  })
}
