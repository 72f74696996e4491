export interface ServerConfig {
  port: number
  host: string
  logLevel: string
  secret: string | undefined
}

export function configFromEnv (env: Record<string, string | undefined>): ServerConfig
