// Formatting for the scripts' summaries: Markdown tables that read in a terminal as well.
import os from 'node:os'

export function fmtInt (n) {
  return typeof n === 'number' && Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : String(n)
}

export function mb (bytes) {
  return typeof bytes === 'number' ? `${(bytes / 1048576).toFixed(1)} MB` : 'n/a'
}

export function seconds (ms) {
  return `${(ms / 1000).toFixed(1)} s`
}

export function table (header, rows) {
  const cells = [header, ...rows].map((row) => row.map((c) => String(c)))
  const widths = header.map((_, i) => Math.max(3, ...cells.map((r) => (r[i] ?? '').length)))
  const line = (r) => '| ' + r.map((c, i) => c.padEnd(widths[i])).join(' | ') + ' |'
  return [line(cells[0]), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...cells.slice(1).map(line)].join('\n')
}

/** One line on the machine: cores and load average now, for figures taken on a shared box. */
export function machine () {
  const load = os.loadavg().map((l) => l.toFixed(2)).join(', ')
  return `node ${process.version}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}), load average ${load}`
}

/** A status histogram as "200: 1,234, 400: 5". */
export function statuses (map) {
  return [...map.entries()].sort((a, b) => String(a[0]).localeCompare(String(b[0])))
    .map(([k, v]) => `${k}: ${fmtInt(v)}`).join(', ') || '–'
}

export function hex (buf, max = 240) {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(String(buf), 'latin1')
  const shown = b.subarray(0, max).toString('hex')
  return b.length > max ? `${shown}… (${b.length} bytes)` : shown
}
