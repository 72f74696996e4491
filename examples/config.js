// The server's settings, from the environment, checked once at start.

function port (value) {
  if (value === undefined || value === '') return 3000
  const n = Number(value)
  if (value.trim() === '' || !Number.isInteger(n) || n < 0 || n > 65535) {
    throw new Error(`PORT must be an integer from 0 to 65535, got ${JSON.stringify(value)}`)
  }
  return n
}

/**
 * Reads PORT (default 3000), HOST (default 127.0.0.1), LOG_LEVEL (default info), SESSION_SECRET,
 * and TLS_KEY / TLS_CERT: paths of a PEM key and certificate to serve HTTPS with (both or neither).
 */
export function configFromEnv (env) {
  const key = env.TLS_KEY || undefined
  const cert = env.TLS_CERT || undefined
  if ((key === undefined) !== (cert === undefined)) throw new Error('TLS_KEY and TLS_CERT go together: set both to serve HTTPS, or neither')
  return {
    tls: key === undefined ? undefined : { key, cert },
    port: port(env.PORT),
    host: env.HOST || '127.0.0.1',
    logLevel: env.LOG_LEVEL || 'info',
    // Unset or empty: none; the example's memory store needs none (a sealing store would).
    secret: env.SESSION_SECRET || undefined
  }
}
