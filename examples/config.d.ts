export interface ServerConfig {
  port: number
  host: string
  logLevel: string
  secret: string | undefined
  /** Paths of the PEM key and certificate to serve HTTPS with; undefined: HTTP. */
  tls: { key: string, cert: string } | undefined
}

export function configFromEnv (env: Record<string, string | undefined>): ServerConfig
