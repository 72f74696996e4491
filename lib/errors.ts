import { createError } from '@fastify/error'

// One table of every error the plugin raises. Codes are FST_SESSION_<AREA>_<WHAT>;
// option errors name the option, so a misconfigured app fails at register() with a
// message that says what to fix.

export const FST_SESSION_OPTION_INVALID = createError<[string, string]>(
  'FST_SESSION_OPTION_INVALID', 'Invalid option "%s": %s', 500, TypeError)

export const FST_SESSION_SECRET_INVALID = createError<[string]>(
  'FST_SESSION_SECRET_INVALID', 'Invalid option "secret": %s', 500, TypeError)

/** Several problems in the options, each an error of its own in `errors`: one restart fixes them all. */
export const FST_SESSION_CONFIG_INVALID = createError<[number, string]>(
  'FST_SESSION_CONFIG_INVALID', 'The options of fastify-user-sessions have %s problems:\n%s', 500, TypeError)

export const FST_SESSION_PLUGIN_REGISTERED_TWICE = createError(
  'FST_SESSION_PLUGIN_REGISTERED_TWICE',
  'fastify-user-sessions is registered twice, on this Fastify instance or on one of its parents (app.sessions exists already); ' +
  'register it once, at the root: every plugin and route below shares it', 500)

export const FST_SESSION_PLUGIN_CONFLICT = createError(
  'FST_SESSION_PLUGIN_CONFLICT',
  'request.session is taken already, by another session plugin (@fastify/session or @fastify/secure-session?); ' +
  'register one of them only: fastify-user-sessions speaks their request.session dialect (get, set, regenerate, destroy)', 500)

export const FST_SESSION_STORE_UNKNOWN = createError<[string, string]>(
  'FST_SESSION_STORE_UNKNOWN', 'Unknown session store "%s"; known stores: %s', 500, TypeError)

export const FST_SESSION_STORE_INVALID = createError<[string]>(
  'FST_SESSION_STORE_INVALID', 'Invalid session store: %s', 500, TypeError)

export const FST_SESSION_STORE_TABLE_INVALID = createError<[string, string]>(
  'FST_SESSION_STORE_TABLE_INVALID', 'The session table %s %s', 500)

export const FST_SESSION_STORE_UNAVAILABLE = createError<[string]>(
  'FST_SESSION_STORE_UNAVAILABLE', 'Session store unavailable: %s', 503)

export const FST_SESSION_STORE_NOT_REPLICATED = createError<[number, number, number]>(
  'FST_SESSION_STORE_NOT_REPLICATED',
  'Session store: only %s of %s replicas acknowledged the revocation within %s ms; Redis applied it, but a failover may undo it', 503)

export const FST_SESSION_STORE_UNSUPPORTED = createError<[string, string]>(
  'FST_SESSION_STORE_UNSUPPORTED', 'The session store does not support %s; %s', 501)

export const FST_SESSION_ID_COLLISION = createError<[number]>(
  'FST_SESSION_ID_COLLISION', 'Could not create a unique session id after %s attempts', 500)

export const FST_SESSION_USER_ID_INVALID = createError<[string]>(
  'FST_SESSION_USER_ID_INVALID', 'Invalid user id: %s', 500, TypeError)

export const FST_SESSION_KEY_INVALID = createError<[string]>(
  'FST_SESSION_KEY_INVALID', 'Invalid session key: %s', 500, TypeError)

export const FST_SESSION_VALUE_INVALID = createError<[string, string]>(
  'FST_SESSION_VALUE_INVALID', 'Session value at "%s" cannot be stored: %s', 500, TypeError)

/** Assigning to (or deleting) a member of `request.session` as if it were data. */
export const FST_SESSION_MEMBER_READONLY = createError<[string, string]>(
  'FST_SESSION_MEMBER_READONLY',
  'request.session.%s is a member of the session, not data; to store data under that name, call request.session.set(%s, value)', 500, TypeError)

export const FST_SESSION_NOT_FOUND = createError(
  'FST_SESSION_NOT_FOUND', 'Session not found or expired', 404)

export const FST_SESSION_REVOKED = createError(
  'FST_SESSION_REVOKED', 'The session was revoked while this request was in flight', 409)

export const FST_SESSION_COOKIE_TOO_LARGE = createError<[number, number]>(
  'FST_SESSION_COOKIE_TOO_LARGE', 'Session cookie would be %s bytes, over the limit of %s bytes', 500)

export const FST_SESSION_NOT_FRESH = createError(
  'FST_SESSION_NOT_FRESH', 'A recent login is required', 401)

export const FST_SESSION_DISABLED = createError<[string]>(
  'FST_SESSION_DISABLED', 'The route %s has config.session set to false; it has no session', 500)
