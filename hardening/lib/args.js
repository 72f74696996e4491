// Command-line options shared by the scripts: node's parseArgs, numbers checked once.
import { parseArgs } from 'node:util'

export function options (spec) {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, ...spec }, allowPositionals: false })
  return values
}

export function number (values, name, fallback) {
  const raw = values[name]
  if (raw === undefined) return fallback
  const n = Number(raw)
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number, got ${raw}`)
  return n
}

export function targets (values, known) {
  const list = values.targets === undefined ? known : values.targets.split(',').map((s) => s.trim()).filter(Boolean)
  for (const t of list) if (!known.includes(t)) throw new Error(`--targets: unknown target ${t}; known: ${known.join(', ')}`)
  return list
}
