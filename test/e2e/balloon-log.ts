/**
 * vmsilo-balloond's debug log (`--log-level debug`) as data, and the picture of a run drawn from it
 * (docs/balloon-run.svg, from the run recorded in docs/balloon-run.log by test/e2e/balloon.test.ts).
 * Each poll logs `poll t=<ms> host … psi=<x> critical=<0|1> slack=<bytes>`, then per VM
 * `vm=<name> avail=<bytes|-1> actual=<bytes> target=<bytes> want=<bytes> why=<reason>`.
 */

export interface Sample {
  t: number;
  avail: number;
  actual: number;
  target: number;
  why: string;
}

export interface BalloonRun {
  vms: Record<string, { samples: Sample[] }>;
  host: Array<{ t: number; psi: number; critical: boolean }>;
}

export function parseBalloonLog(text: string): BalloonRun {
  const run: BalloonRun = { vms: {}, host: [] };
  let t = 0;
  for (const line of text.split("\n")) {
    const p = /debug: poll t=(\d+) host .*psi=([0-9.]+) critical=([01])/.exec(line);
    if (p) {
      t = Number(p[1]);
      run.host.push({ t, psi: Number(p[2]), critical: p[3] === "1" });
      continue;
    }
    const v = /debug: vm=(\S+) avail=(-?\d+) actual=(\d+) target=\d+ want=(\d+) why=(\S+)/.exec(line);
    if (v) (run.vms[v[1]!] ??= { samples: [] }).samples.push({ t, avail: Number(v[2]), actual: Number(v[3]), target: Number(v[4]), why: v[5]! });
  }
  return run;
}

const COLOURS = ["#3465a4", "#cc0000", "#4e9a06", "#75507b", "#c4a000"];
const MIB = 1024 * 1024;

/** One chart: per VM, the balloon (solid) and the guest's available memory (dashed), in MiB over seconds; critical host time shaded. */
export function balloonSvg(run: BalloonRun, title: string): string {
  const W = 780, H = 360, L = 60, R = 180, T = 40, B = 40;
  const names = Object.keys(run.vms).sort();
  const all = names.flatMap((n) => run.vms[n]!.samples);
  const tMax = Math.max(1, ...all.map((s) => s.t), ...run.host.map((h) => h.t)) / 1000;
  const yMax = Math.max(64, ...all.map((s) => Math.max(s.actual, s.avail) / MIB));
  const x = (ms: number) => (L + (ms / 1000 / tMax) * (W - L - R)).toFixed(1);
  const y = (mib: number) => (T + (1 - mib / yMax) * (H - T - B)).toFixed(1);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${L}" y="20" font-size="14">${title}</text>`,
  ];
  // Critical host pressure, shaded.
  for (let i = 0; i < run.host.length; i++) {
    const h = run.host[i]!;
    if (!h.critical) continue;
    const end = run.host[i + 1]?.t ?? h.t;
    out.push(`<rect x="${x(h.t)}" y="${T}" width="${(Number(x(end)) - Number(x(h.t))).toFixed(1)}" height="${H - T - B}" fill="#fce94f" opacity="0.4"/>`);
  }
  out.push(`<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#000"/>`, `<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#000"/>`);
  const step = tMax > 60 ? 20 : 10;
  for (let s = 0; s <= tMax; s += step) out.push(`<text x="${x(s * 1000)}" y="${H - B + 16}" text-anchor="middle">${s}</text>`);
  const ystep = yMax > 400 ? 100 : 50;
  for (let m = 0; m <= yMax; m += ystep) out.push(`<text x="${L - 6}" y="${y(m)}" text-anchor="end" dominant-baseline="middle">${m}</text>`);
  out.push(`<text x="${(L + W - R) / 2}" y="${H - 6}" text-anchor="middle">seconds since the daemon started</text>`);
  out.push(`<text x="14" y="${(T + H - B) / 2}" transform="rotate(-90 14 ${(T + H - B) / 2})" text-anchor="middle">MiB</text>`);
  names.forEach((n, i) => {
    const c = COLOURS[i % COLOURS.length]!;
    const s = run.vms[n]!.samples;
    out.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${s.map((p) => `${x(p.t)},${y(p.actual / MIB)}`).join(" ")}"/>`);
    const av = s.filter((p) => p.avail >= 0);
    out.push(`<polyline fill="none" stroke="${c}" stroke-width="1" stroke-dasharray="4 3" points="${av.map((p) => `${x(p.t)},${y(p.avail / MIB)}`).join(" ")}"/>`);
    out.push(`<text x="${W - R + 10}" y="${T + 16 * i + 8}" fill="${c}">${n}</text>`);
  });
  out.push(`<text x="${W - R + 10}" y="${T + 16 * names.length + 16}">solid: balloon</text>`);
  out.push(`<text x="${W - R + 10}" y="${T + 16 * names.length + 32}">dashed: guest available</text>`);
  out.push(`<text x="${W - R + 10}" y="${T + 16 * names.length + 48}">shaded: host critical</text>`);
  out.push("</svg>", "");
  return out.join("\n");
}
