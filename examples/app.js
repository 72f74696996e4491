import Fastify from 'fastify'
import userSessions from 'fastify-user-sessions'
import { liveDevices } from './live.js'
import { STYLE_HASH, devicesPage, errorPage, loginPage as page } from './views.js'

// The example app: a login form (any name signs in) and a "Your devices" page that lists the
// user's sessions and signs them out, one, all but this one, or all. Every page works without
// JS; with it, the devices page hears live when its session ends elsewhere (examples/live.js).
// API clients sign in under /api with JSON and carry the session as a bearer token.

const MAX_NAME_LENGTH = 64
const FORM_BODY_LIMIT = 4096
const HTML = 'text/html; charset=utf-8'
const DAY = 86_400
// The app's lifetimes (the plugin's defaults, spelt out): a remembered sign-in lasts a day without
// use and a month at most, in a cookie that outlives the browser.
const APP_LIFETIMES = { ttl: DAY, absoluteTtl: 30 * DAY }
// "Remember me" left unchecked usually means a shared or borrowed computer: a cookie that dies
// with the browser, and a shorter life on the server, which is what ends the session (browsers
// that restore tabs keep their session cookies): half an hour without use, a working day at most.
const UNREMEMBERED = Object.freeze({ persistent: false, ttl: 30 * 60, absoluteTtl: 12 * 3600 })
const SIGNED_OUT = new Map([
  ['one', 'You are signed out.'],
  ['all', 'You are signed out on all your devices.'],
  ['elsewhere', 'You were signed out from another device.'],
  ['expired', 'Your session has expired. Sign in again.']
])
const SECURITY_HEADERS = {
  'content-security-policy': `default-src 'none'; style-src ${STYLE_HASH}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; script-src 'self'; connect-src 'self'`,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  // Pages show who is signed in where: never cache them.
  'cache-control': 'no-store'
}

/**
 * CSRF: the session cookie is SameSite=Lax, so browsers leave it off cross-site POSTs, and this
 * check refuses form posts that say they come from another site (cheap defence in depth). A real
 * app adds CSRF tokens as well, e.g. with @fastify/csrf-protection. Hosts are compared, not
 * schemes, so that the app keeps working behind a TLS-terminating proxy without trustProxy.
 * API clients send no Origin and pass; their bearer tokens are not exposed to CSRF anyway.
 */
function sameOrigin (request) {
  const site = request.headers['sec-fetch-site']
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return false
  const origin = request.headers.origin
  if (origin === undefined) return true // non-browser clients and older browsers send none
  try {
    return new URL(origin).host === new URL(`http://${request.host}`).host
  } catch {
    return false // "null", or no usable Host
  }
}

const loginPage = (options) => page({ ...options, unremembered: UNREMEMBERED })

function formError (statusCode, message) {
  return Object.assign(new Error(message), { statusCode })
}

/** The name typed, NFC and trimmed, or what is wrong with it; `raw` is what came, to show again. */
function checkName (body) {
  const raw = typeof body?.name === 'string' ? body.name : ''
  const name = raw.normalize('NFC').trim()
  if (name.length === 0) return { raw, error: 'Enter a name to sign in.' }
  if (name.length > MAX_NAME_LENGTH) return { raw, error: `Use at most ${MAX_NAME_LENGTH} characters.` }
  return { raw, name }
}

function statusOf (err) {
  return err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500
}

/**
 * The JSON API under /api: `POST /api/login` with `{ "name": "..." }` answers `{ token, expiresAt }`,
 * and the client sends `Authorization: Bearer <token>` from then on. A token is not sent by the
 * browser on its own, as a cookie is, so a bearer request cannot be forged by another site. The
 * routes take JSON only: a cross-site page can post a form or plain text without asking, but not
 * JSON, which needs a CORS preflight that this app does not answer.
 */
async function api (app) {
  app.removeContentTypeParser(['application/x-www-form-urlencoded', 'text/plain'])
  app.setErrorHandler((err, request, reply) => {
    const statusCode = statusOf(err)
    if (statusCode >= 500) request.log.error({ err }, 'request failed')
    return reply.code(statusCode).send({ statusCode, message: statusCode >= 500 ? 'Something went wrong on our side' : err.message })
  })
  app.setNotFoundHandler((request, reply) => reply.code(404).send({ statusCode: 404, message: 'No such route' }))

  async function requireUser (request, reply) {
    if (request.session.userId !== undefined) return
    // A missing, malformed, unknown or expired token alike: an anonymous request.
    return reply.code(401).header('www-authenticate', 'Bearer').send({ statusCode: 401, message: 'Send a valid token: Authorization: Bearer <token>' })
  }

  app.post('/login', { bodyLimit: FORM_BODY_LIMIT }, async (request, reply) => {
    const { name, error } = checkName(request.body)
    if (error !== undefined) return reply.code(400).send({ statusCode: 400, message: error })
    // The app's lifetimes: an API client has no "remember me", it keeps its token as long as it needs it.
    await request.session.login(name, { transport: 'bearer' })
    request.log.info('signed in with a token')
    return { token: request.session.token, expiresAt: new Date(request.session.expiresAt).toISOString() }
  })

  app.get('/me', { preHandler: requireUser }, async (request) => ({
    user: request.session.userId,
    expiresAt: new Date(request.session.expiresAt).toISOString()
  }))

  app.post('/logout', { preHandler: requireUser }, async (request, reply) => {
    await request.session.destroy()
    return reply.code(204).send()
  })
}

/**
 * Builds the example app on the in-memory store, which needs no `secret` (the cookie's own
 * 256-bit secret authenticates it); one is passed on when given, for a store that seals.
 * Sessions end when the process does. Served over HTTPS (`https: { key, cert }`), it turns on
 * device-bound sessions: a browser that supports them binds a remembered sign-in to a key it
 * keeps on the device, and the devices page says so.
 */
export async function buildApp ({ logger = false, liveHeartbeat, https, ...sessionOptions } = {}) {
  const app = Fastify({ logger, ...(https === undefined ? {} : { https }) })
  await app.register(userSessions, { store: 'memory', bearer: true, ...APP_LIFETIMES, dbsc: https !== undefined, ...sessionOptions })

  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: FORM_BODY_LIMIT },
    (request, body, done) => { done(null, Object.fromEntries(new URLSearchParams(body))) })

  app.addHook('onRequest', async (request, reply) => {
    reply.headers(SECURITY_HEADERS)
    if (request.method === 'POST' && !sameOrigin(request)) throw formError(403, 'Cross-site form posts are refused')
  })
  await app.register(api, { prefix: '/api' })

  app.setErrorHandler((err, request, reply) => {
    const statusCode = statusOf(err)
    if (statusCode >= 500) request.log.error({ err }, 'request failed')
    const message = statusCode >= 500 ? 'Something went wrong on our side' : err.message
    return reply.code(statusCode).type(HTML).send(errorPage(statusCode, message))
  })
  app.setNotFoundHandler((request, reply) => reply.code(404).type(HTML).send(errorPage(404, 'Page not found')))

  async function requireUser (request, reply) {
    if (request.session.userId === undefined) return reply.redirect('/', 303)
  }

  app.get('/', async (request, reply) => {
    if (request.session.userId !== undefined) return reply.redirect('/devices', 303)
    return reply.type(HTML).send(loginPage({ message: SIGNED_OUT.get(request.query.out) }))
  })

  app.post('/login', async (request, reply) => {
    const { raw, name, error } = checkName(request.body)
    // An unchecked box is absent from the form: only a posted "yes" remembers.
    const remember = request.body?.remember === 'yes'
    if (error !== undefined) return reply.code(400).type(HTML).send(loginPage({ name: raw, remember, error }))
    // Any name signs in: the name is the user id. A real app checks a password or a passkey here.
    await request.session.login(name, remember ? {} : UNREMEMBERED)
    request.log.info('signed in')
    return reply.redirect('/devices', 303)
  })

  app.get('/devices', { preHandler: requireUser }, async (request, reply) => {
    const { userId } = request.session
    const currentId = request.session.id
    const all = await app.sessions.getAll(userId)
    const others = all.filter((s) => s.id !== currentId).sort((a, b) => b.lastSeenAt - a.lastSeenAt)
    const message = request.session.get('flash')
    if (message !== undefined) request.session.delete('flash')
    return reply.type(HTML).send(devicesPage({
      user: userId,
      sessions: [...all.filter((s) => s.id === currentId), ...others],
      currentId,
      message
    }))
  })

  await app.register(liveDevices, { heartbeat: liveHeartbeat })

  app.post('/devices/:id/revoke', { preHandler: requireUser }, async (request, reply) => {
    const { id } = request.params
    if (id === request.session.id) {
      await request.session.destroy()
      return reply.redirect('/?out=one', 303)
    }
    // The user id makes sure that one user cannot sign out another's sessions.
    const revoked = await app.sessions.delete(id, request.session.userId)
    request.log.info({ revoked }, 'revoke one session')
    request.session.set('flash', revoked
      ? 'That device is signed out.'
      : 'No such session on your account: it may have ended already.')
    return reply.redirect('/devices', 303)
  })

  app.post('/logout-others', { preHandler: requireUser }, async (request, reply) => {
    const { userId, id } = request.session
    const count = await app.sessions.deleteAll(userId, { except: id })
    request.log.info({ count }, 'signed out the other devices')
    request.session.set('flash', `Signed out ${count} other ${count === 1 ? 'device' : 'devices'}.`)
    return reply.redirect('/devices', 303)
  })

  app.post('/logout-everywhere', { preHandler: requireUser }, async (request, reply) => {
    const count = await app.sessions.deleteAll(request.session.userId)
    await request.session.destroy() // already gone from the store; this expires the cookie
    request.log.info({ count }, 'signed out everywhere')
    return reply.redirect('/?out=all', 303)
  })

  app.post('/logout', { preHandler: requireUser }, async (request, reply) => {
    await request.session.destroy()
    return reply.redirect('/?out=one', 303)
  })

  return app
}
