// The main table as a bar chart: hand-written SVG, no library, no network.
import { byName, cells as cellList, key, modeLabel, ROUTES } from './scenarios.js'
import { fmtInt, range } from './stats.js'

const WIDTH = 1000
const LABEL_W = 250
const BAR_W = 280 // req/s column
const CPU_X = LABEL_W + BAR_W + 110
const CPU_W = 220 // CPU per request column
const BAR_H = 16
const GAP = 6
const COLORS = { bare: '#8c8c8c', floor: '#3b9a57', ours: '#1f6fd1', peer: '#e07b24' }

function esc (text) {
  return String(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

function colorOf (name) {
  if (name.startsWith('bare')) return COLORS.bare
  if (name.startsWith('floor-')) return COLORS.floor
  return name.startsWith('ours-') ? COLORS.ours : COLORS.peer
}

export function chart (run) {
  const groups = []
  for (const mode of ['hot', 'spread']) {
    for (const route of ROUTES) {
      const rows = cellList().filter((c) => c.route === route.name && c.mode === mode)
      groups.push({ title: `${route.name} route, ${modeLabel(mode, run.meta.sessions)}`, rows: rows.map((c) => ({ ...c, k: key(c.scenario, c.route, c.mode) })) })
    }
  }
  let max = 0
  let maxCpu = 0
  for (const cell of Object.values(run.cells)) {
    if (cell.status !== 'ok') continue
    max = Math.max(max, ...cell.samples.map((s) => s.rps))
    maxCpu = Math.max(maxCpu, ...cell.samples.map((s) => s.cpuUsPerReq ?? 0))
  }
  max = max > 0 ? max * 1.05 : 1
  maxCpu = maxCpu > 0 ? maxCpu * 1.05 : 1
  const out = [
    `<text x="${LABEL_W}" y="62" class="group">requests per second (higher is better)</text>`,
    `<text x="${CPU_X}" y="62" class="group">server CPU µs per request (lower is better)</text>`
  ]
  const bar = (x, width, scale, values, y, color, text) => {
    const r = range(values)
    out.push(`<rect x="${x}" y="${y}" width="${Math.max(1, (r.median / scale) * width).toFixed(1)}" height="${BAR_H}" fill="${color}"/>`)
    if (r.max > r.min) {
      const x1 = x + (r.min / scale) * width
      const x2 = x + (r.max / scale) * width
      out.push(`<line x1="${x1.toFixed(1)}" x2="${x2.toFixed(1)}" y1="${y + BAR_H / 2}" y2="${y + BAR_H / 2}" class="whisker"/>`)
    }
    out.push(`<text x="${x + width + 6}" y="${y + 12}" class="value">${esc(text(r.median))}</text>`)
  }
  let y = 76
  for (const g of groups) {
    out.push(`<text x="10" y="${y + 12}" class="group">${esc(g.title)}</text>`)
    y += 22
    for (const c of g.rows) {
      const cell = run.cells[c.k]
      out.push(`<text x="${LABEL_W - 8}" y="${y + 12}" class="label" text-anchor="end">${esc(byName[c.scenario].label)}</text>`)
      if (cell?.status !== 'ok') {
        out.push(`<text x="${LABEL_W + 4}" y="${y + 12}" class="na">${esc(cell?.note ?? 'n/a')}</text>`)
      } else {
        bar(LABEL_W, BAR_W, max, cell.samples.map((s) => s.rps), y, colorOf(c.scenario), fmtInt)
        const cpu = cell.samples.map((s) => s.cpuUsPerReq).filter((v) => v !== null)
        if (cpu.length > 0) bar(CPU_X, CPU_W, maxCpu, cpu, y, colorOf(c.scenario), (v) => v.toFixed(1))
      }
      y += BAR_H + GAP
    }
    y += 10
  }
  const height = y + 30
  const m = run.meta
  const subtitle = `${m.cpu}, ${m.cores} cores; Node.js ${m.node}; ${m.connections} connections; median of ${m.rounds} round(s) of ${m.duration} s, min–max as a line${m.quick ? '; QUICK SMOKE RUN' : ''}`
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif">`,
    '<style>.title{font-size:16px;font-weight:bold}.sub{font-size:11px;fill:#555}.group{font-size:13px;font-weight:bold}' +
      '.label,.value{font-size:12px}.na{font-size:12px;fill:#999;font-style:italic}.whisker{stroke:#000;stroke-width:1.5}</style>',
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    '<text x="10" y="22" class="title">fastify-user-sessions vs its peers</text>',
    `<text x="10" y="40" class="sub">${esc(subtitle)}</text>`,
    ...out,
    `<rect x="10" y="${height - 22}" width="12" height="12" fill="${COLORS.ours}"/><text x="28" y="${height - 12}" class="label">ours</text>`,
    `<rect x="80" y="${height - 22}" width="12" height="12" fill="${COLORS.peer}"/><text x="98" y="${height - 12}" class="label">peers</text>`,
    `<rect x="150" y="${height - 22}" width="12" height="12" fill="${COLORS.bare}"/><text x="168" y="${height - 12}" class="label">bare Fastify</text>`,
    `<rect x="270" y="${height - 22}" width="12" height="12" fill="${COLORS.floor}"/><text x="288" y="${height - 12}" class="label">floors (hand-written sessions)</text>`,
    '</svg>',
    ''
  ].join('\n')
}
