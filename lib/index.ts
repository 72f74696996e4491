import fastifyCookie from '@fastify/cookie'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { FST_SESSION_PLUGIN_CONFLICT, FST_SESSION_PLUGIN_REGISTERED_TWICE } from './errors.js'
import type { FastifyUserSessionsOptions } from './options.js'
import { sessionPlugin } from './request/plugin.js'
import type { Session } from './session/session.js'
import { cookieStore } from './stores/cookie.js'
import { memoryStore } from './stores/memory.js'
import { postgresStore } from './stores/postgres/store.js'
import { redisStore } from './stores/redis/store.js'
import { registerStore } from './stores/registry.js'
import { expressStore } from './stores/express.js'
import type { UserSessions } from './session/user-sessions.js'
import type { SessionProperties } from './stores/data.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The visitor's session, and its data as properties (`request.session.cart` is `get('cart')`); see fastify-user-sessions. */
    readonly session: Session & SessionProperties<Session>
  }
  interface FastifyContextConfig {
    /** `false`: this route has no `request.session` and never waits for the session store. @default true */
    session?: boolean
  }
  interface FastifyInstance {
    /** The per-user session model: get, upsert, delete, getAll, deleteAll. */
    sessions: UserSessions
  }
}

registerStore('memory', memoryStore)
registerStore('ets', memoryStore)
registerStore('cookie', cookieStore)
registerStore('postgres', postgresStore)
registerStore('redis', redisStore)
registerStore('express', expressStore)

async function fastifyUserSessionsPlugin (fastify: FastifyInstance, options: FastifyUserSessionsOptions): Promise<void> {
  // Caught here, before anything is registered, rather than as Fastify's "decorator already added".
  if (fastify.hasDecorator('sessions')) throw new FST_SESSION_PLUGIN_REGISTERED_TWICE()
  if (fastify.hasRequestDecorator('session')) throw new FST_SESSION_PLUGIN_CONFLICT()
  // Registered after this plugin, @fastify/cookie would fail with FST_ERR_DEC_ALREADY_PRESENT: Fastify
  // tells a plugin of no later registration. Apps that give it options register it first.
  if (!fastify.hasPlugin('@fastify/cookie')) await fastify.register(fastifyCookie)
  await sessionPlugin(fastify, options)
}

export const fastifyUserSessions = fp(fastifyUserSessionsPlugin, {
  fastify: '5.x',
  name: 'fastify-user-sessions'
})
export default fastifyUserSessions

export * as errors from './errors.js'
export { sessionErrorHandler, isStoreUnavailable, type SessionErrorHandler, type SessionErrorHandlerOptions } from './request/error-handler.js'
export type { FastifyUserSessionsOptions, SessionOptions, SessionCookieOptions, StoreName, StoreOptionsMap, StoreSelection, DbscOptions } from './options.js'
export type { DbscAlgorithm } from './crypto/dbsc-proof.js'
export { Session, type SessionCookie, type SessionCallback } from './session/session.js'
export type { SessionData, SessionKey, SessionValue, SessionProperties, Storable } from './stores/data.js'
export type { SessionTransport } from './backends/policy.js'
export type { LoginOptions } from './session/login.js'
export type {
  SessionEvent, LoginEvent, RevokedEvent, RevokedReason, SessionEvents, SessionEventName, SessionEventListener
} from './session/events.js'
export type { Revocation, RevocationReason, RevocationBus, BusSubscriber } from './bus/bus.js'
export type { SessionRecord } from './backends/backend.js'
export { UserSessions, type SessionUpdate, type DeleteAllOptions } from './session/user-sessions.js'
export { registerStore, knownStores } from './stores/registry.js'
export type { SessionStore, StoreFactory, StoreContext, StoredSession, SessionPatch } from './stores/store.js'
export type { StatelessStore, SealedSession, RevocationStore } from './stores/store.js'
export { LAST_SEEN_STEP } from './stores/store.js'
export { CookieStore, cookieStore, type CookieStoreOptions } from './stores/cookie.js'
export { MemoryRevocation, type MemoryRevocationOptions, type RevocationOption } from './stores/revocation/memory.js'
export { RedisRevocation, type RedisRevocationOptions } from './stores/revocation/redis.js'
export { MemoryStore, memoryStore, type MemoryStoreOptions, type MemoryStoreStats } from './stores/memory.js'
export { RedisStore, redisStore, type RedisStoreOptions, type RedisSerializer } from './stores/redis/store.js'
export {
  PostgresStore, postgresStore, createPostgresTable, postgresTableSql,
  type PostgresStoreOptions, type PostgresTableOptions, type PostgresPool, type PostgresClient,
  type PostgresQueryResult, type PostgresQueryable
} from './stores/postgres/store.js'
export { ExpressStoreAdapter, fromExpressStore, type ExpressStoreLike, type ExpressStoreOptions } from './stores/express.js'
export { userTag, tagOf, newOwnerKey } from './crypto/ids.js'
export { passportSessions, type PassportSessionsOptions, type PassportAuthenticatorLike } from './interop/passport.js'
export type { SessionCookieOverrides } from './backends/cookie-overrides.js'
