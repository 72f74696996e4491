import { buildApp } from './app.js'
import { configFromEnv } from './config.js'

// `npm start`. Behind a reverse proxy, give Fastify `trustProxy` so that the devices page shows
// the client's IP and the cookie gets Secure on https.

const { port, host, logLevel, secret } = configFromEnv(process.env)
const app = await buildApp({ secret, logger: { level: logLevel } })

async function close (signal) {
  app.log.info({ signal }, 'closing the server')
  await app.close()
}
process.once('SIGINT', close)
process.once('SIGTERM', close)

await app.listen({ port, host })
