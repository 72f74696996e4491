import { spawn } from 'node:child_process'

// Scripts a test runs as a user would (the bench, the hardening scripts, the package as
// installed) must not run under tap's loaders and coverage: they use dist/, not lib/. tap's
// process tracking puts its variables back into the environment of anything this process
// spawns; a shell in between drops them again (UNTRACK, first in the shell's script).

export const UNTRACK = 'unset NODE_OPTIONS NODE_V8_COVERAGE $(env | sed -n "s/^\\(_TAPJS[A-Za-z0-9_]*\\)=.*/\\1/p");'

/** This process's environment without tap's variables and loaders. */
export function cleanEnv (): NodeJS.ProcessEnv {
  const env = { ...process.env }
  for (const key of Object.keys(env)) {
    if (key === 'NODE_OPTIONS' || key === 'NODE_V8_COVERAGE' || key.startsWith('TAP') || key.startsWith('_TAPJS')) delete env[key]
  }
  return env
}

export interface Run { code: number | null, stdout: string, stderr: string }

/**
 * Runs the shell script `script` (after UNTRACK) in the project's root `cwd`, `args` being its
 * `$0`, `$1`, ...; killed after `timeout` ms. Resolves its exit code and what it printed.
 */
export function runUntracked (cwd: string, script: string, args: string[], timeout: number): Promise<Run> {
  const child = spawn('sh', ['-c', `${UNTRACK} ${script}`, ...args], { cwd, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const timer = setTimeout(child.kill.bind(child, 'SIGTERM'), timeout)
  return new Promise((resolve) => child.on('close', (code) => {
    clearTimeout(timer)
    resolve({ code, stdout, stderr })
  }))
}
