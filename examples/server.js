import { readFileSync } from 'node:fs'
import { buildApp } from './app.js'
import { configFromEnv } from './config.js'

// `npm start`. Behind a reverse proxy, give Fastify `trustProxy` so that the devices page shows
// the client's IP and the cookie gets Secure on https. With TLS_KEY and TLS_CERT it serves HTTPS
// itself, with device-bound sessions on.

const { port, host, logLevel, secret, tls } = configFromEnv(process.env)
const https = tls === undefined ? undefined : { key: readFileSync(tls.key), cert: readFileSync(tls.cert) }
const app = await buildApp({ secret, https, logger: { level: logLevel } })

async function close (signal) {
  app.log.info({ signal }, 'closing the server')
  await app.close()
}
process.once('SIGINT', close)
process.once('SIGTERM', close)

await app.listen({ port, host })
