/**
 * Time series helpers for the client's own measurements (all times in ms on performance.now()).
 *
 * Audio levels, video motion and 3D mouth openness are sampled at irregular instants; to compare
 * them they are put on one uniform grid and cross-correlated.
 */

/** Keep at most `maxAgeMs` of samples ({t, v}) in an array, oldest first. */
export function pushSample(series, t, v, maxAgeMs = 20000) {
  series.push({ t, v });
  const cutoff = t - maxAgeMs;
  let drop = 0;
  while (drop < series.length && series[drop].t < cutoff) drop++;
  if (drop) series.splice(0, drop);
}

/**
 * Sample irregular {t, v} points on a uniform grid [t0, t1) with step `stepMs` (linear
 * interpolation, edges held).
 * @returns {Float64Array}
 */
export function resample(series, t0, t1, stepMs) {
  const n = Math.max(0, Math.floor((t1 - t0) / stepMs));
  const out = new Float64Array(n);
  if (!series.length) return out;
  let j = 0;
  for (let i = 0; i < n; i++) {
    const t = t0 + i * stepMs;
    while (j < series.length - 1 && series[j + 1].t <= t) j++;
    const a = series[j];
    const b = series[Math.min(j + 1, series.length - 1)];
    if (t <= a.t || b.t === a.t) out[i] = a.v;
    else if (t >= b.t) out[i] = b.v;
    else out[i] = a.v + ((b.v - a.v) * (t - a.t)) / (b.t - a.t);
  }
  return out;
}

/**
 * Lag (in grid steps, fractional) at which `b` best matches `a`: positive when `b` happens later
 * than `a`. Normalised cross-correlation over lags in [-maxLag, maxLag], refined with a parabola
 * through the peak.
 * @returns {{lag: number, r: number}} r is the correlation at the peak (-1..1).
 */
export function bestLag(a, b, maxLag) {
  const n = Math.min(a.length, b.length);
  const mean = (x) => x.reduce((s, v) => s + v, 0) / (x.length || 1);
  const ma = mean(a.subarray(0, n));
  const mb = mean(b.subarray(0, n));
  const corr = (lag) => {
    let sab = 0, saa = 0, sbb = 0;
    for (let i = Math.max(0, -lag); i < Math.min(n, n - lag); i++) {
      const x = a[i] - ma;
      const y = b[i + lag] - mb;
      sab += x * y;
      saa += x * x;
      sbb += y * y;
    }
    return saa > 0 && sbb > 0 ? sab / Math.sqrt(saa * sbb) : 0;
  };
  const rs = [];
  let best = 0;
  for (let lag = -maxLag; lag <= maxLag; lag++) {
    const r = corr(lag);
    rs.push(r);
    if (r > rs[best]) best = rs.length - 1;
  }
  let lag = best - maxLag;
  const r = rs[best];
  if (best > 0 && best < rs.length - 1) {
    const [y0, y1, y2] = [rs[best - 1], rs[best], rs[best + 1]];
    const denom = y0 - 2 * y1 + y2;
    if (denom < 0) lag += (0.5 * (y0 - y2)) / denom;
  }
  return { lag, r };
}

/**
 * Offset in ms of `later` relative to `reference` over the window [t0, t1): e.g. the bot video's
 * mouth motion against the bot audio envelope. Returns null when the signals do not correlate
 * well enough (`minR`) to say.
 */
export function offsetMs(reference, later, t0, t1, { stepMs = 10, maxLagMs = 500, minR = 0.3 } = {}) {
  const a = resample(reference, t0, t1, stepMs);
  const b = resample(later, t0, t1, stepMs);
  if (a.length < (4 * maxLagMs) / stepMs) return null;
  const { lag, r } = bestLag(a, b, Math.round(maxLagMs / stepMs));
  return r >= minR ? { ms: lag * stepMs, r } : null;
}

/** Percentile (0..100) of a list of numbers, or null when empty. */
export function percentile(values, p) {
  if (!values.length) return null;
  const s = [...values].sort((x, y) => x - y);
  const k = (s.length - 1) * (p / 100);
  const lo = Math.floor(k);
  const hi = Math.ceil(k);
  return s[lo] + (s[hi] - s[lo]) * (k - lo);
}
