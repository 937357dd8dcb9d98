// The size sweep as an SVG chart (bench/results/sweep.svg): one panel per
// operation, ms per file against memfd size, both axes logarithmic, one
// line per form. Written by hand: the bench has no dependencies.
'use strict';
const { sizeLabel } = require('./sweep.cjs');

const FORMS = [
  ['c', 'C', '#222222', ''],
  ['node-sync', 'Node sync', '#1f77b4', ''],
  ['node-promise', 'Node Promise', '#d62728', ''],
  ['node-concurrent', 'Node Promise, concurrent', '#ff7f0e', '6 3'],
  ['node-mapsync', 'Node mapSync', '#2ca02c', '2 2'],
];
const PANELS = [
  ['sweep-preserve', 'preserve'],
  ['sweep-retrieve', 'retrieve + finish'],
  ['sweep-restore', 'restore: retrieve, read, verify'],
];

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;');

function sweepSvg(result) {
  const rows = result.sweep.rows;
  const sizes = result.sweep.sizes;
  const W = 300;
  const H = 240;
  const m = { left: 56, right: 12, top: 28, bottom: 40 };
  const width = PANELS.length * W;
  const height = H + 60;
  const ms = rows.map((r) => r.usPerFile / 1000).filter((v) => v > 0);
  const lo = Math.floor(Math.log10(Math.min(...ms)));
  const hi = Math.ceil(Math.log10(Math.max(...ms)));
  const x0 = Math.log2(Math.min(...sizes));
  const x1 = Math.log2(Math.max(...sizes));
  const px = (size) => m.left + ((Math.log2(size) - x0) / (x1 - x0 || 1)) * (W - m.left - m.right);
  const py = (v) => H - m.bottom - ((Math.log10(v) - lo) / (hi - lo || 1)) * (H - m.top - m.bottom);
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  PANELS.forEach(([op, title], p) => {
    out.push(`<g transform="translate(${p * W},0)">`);
    out.push(`<text x="${(W + m.left - m.right) / 2}" y="16" text-anchor="middle" font-weight="bold">${esc(title)}</text>`);
    for (let e = lo; e <= hi; e++) {
      const y = py(10 ** e);
      out.push(`<line x1="${m.left}" x2="${W - m.right}" y1="${y}" y2="${y}" stroke="#ddd"/>`);
      out.push(`<text x="${m.left - 4}" y="${y + 4}" text-anchor="end">${10 ** e >= 1 ? 10 ** e : (10 ** e).toFixed(-e)}</text>`);
    }
    for (const size of sizes) {
      const x = px(size);
      out.push(`<line x1="${x}" x2="${x}" y1="${m.top}" y2="${H - m.bottom}" stroke="#eee"/>`);
      out.push(`<text x="${x}" y="${H - m.bottom + 14}" text-anchor="middle">${esc(sizeLabel(size).replace(' ', ''))}</text>`);
    }
    out.push(`<text x="${(W + m.left - m.right) / 2}" y="${H - 8}" text-anchor="middle">memfd size</text>`);
    if (p === 0) out.push(`<text transform="translate(14,${(H - m.bottom + m.top) / 2}) rotate(-90)" text-anchor="middle">ms per file (log)</text>`);
    out.push(`<rect x="${m.left}" y="${m.top}" width="${W - m.left - m.right}" height="${H - m.top - m.bottom}" fill="none" stroke="#888"/>`);
    for (const [impl, , color, dash] of FORMS) {
      const pts = sizes
        .map((size) => rows.find((r) => r.op === op && r.impl === impl && r.size === size))
        .filter((r) => r && r.usPerFile > 0)
        .map((r) => `${px(r.size).toFixed(1)},${py(r.usPerFile / 1000).toFixed(1)}`);
      if (!pts.length) continue;
      out.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="${color}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`);
      for (const pt of pts) out.push(`<circle cx="${pt.split(',')[0]}" cy="${pt.split(',')[1]}" r="2.5" fill="${color}"/>`);
    }
    out.push('</g>');
  });
  // Legend: the forms that have data; mapSync is named as skipped until the library has it.
  let lx = m.left;
  const ly = H + 22;
  for (const [impl, label, color, dash] of FORMS) {
    const has = rows.some((r) => r.impl === impl);
    const text = has ? label : `${label} (skipped: not in this library)`;
    out.push(`<line x1="${lx}" x2="${lx + 22}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''}${has ? '' : ' opacity="0.35"'}/>`);
    out.push(`<text x="${lx + 26}" y="${ly + 4}"${has ? '' : ' fill="#999"'}>${esc(text)}</text>`);
    lx += 34 + text.length * 6;
  }
  const note = `${result.kernel ?? ''} under QEMU (${result.host?.accel ?? ''}); ${esc(result.date ?? '')}; ${esc(result.command ?? '')}`;
  out.push(`<text x="${m.left}" y="${H + 46}" fill="#666" font-size="10">${esc(note)}</text>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

module.exports = { sweepSvg };
