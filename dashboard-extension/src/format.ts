/** Number, money and date formatting for the screens (the Dashboard's locale). */

export type Money = { currency: string; amount: string | number };

export function formatNumber(value: number | null | undefined, locale = "en"): string {
  return new Intl.NumberFormat(locale).format(value ?? 0);
}

export function formatMoney(money: Money, locale = "en"): string {
  try {
    return new Intl.NumberFormat(locale, { style: "currency", currency: money.currency }).format(Number(money.amount));
  } catch {
    return `${money.amount} ${money.currency}`;
  }
}

/** "€120.00 · $30.00": revenue per currency is never summed across currencies. */
export function formatRevenue(revenue: Money[] | undefined, locale = "en"): string {
  if (!revenue?.length) return "–";
  return revenue.map((m) => formatMoney(m, locale)).join(" · ");
}

export function formatPercent(ratio: number | null | undefined, digits = 1): string {
  if (ratio === null || ratio === undefined || Number.isNaN(ratio)) return "–";
  return `${(ratio * 100).toFixed(digits)}%`;
}

export function formatDate(value: string | null | undefined, locale = "en"): string {
  if (!value) return "–";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return value;
  return new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: value.length > 10 ? "short" : undefined }).format(date);
}

export function humanize(code: string): string {
  const text = code.replace(/[_.]+/g, " ").trim();
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** ISO date `days` before `today` (inclusive ranges for the report's date picker). */
export function isoDaysAgo(days: number, today = new Date()): string {
  const date = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate()) - days * 864e5);
  return date.toISOString().slice(0, 10);
}

/**
 * One row per day from `since` to `until` (ISO dates, inclusive): the API lists only days with
 * activity, a chart needs the quiet days as zeros. At most 400 days.
 */
export function fillDays<T extends { day: string }>(rows: T[], since: string | null, until: string | null, empty: (day: string) => T): T[] {
  if (!since || !until) return rows;
  const byDay = new Map(rows.map((r) => [r.day, r]));
  const out: T[] = [];
  for (let t = Date.parse(`${since}T00:00:00Z`), end = Date.parse(`${until}T00:00:00Z`); t <= end && out.length < 400; t += 864e5) {
    const day = new Date(t).toISOString().slice(0, 10);
    out.push(byDay.get(day) ?? empty(day));
  }
  return out;
}

/** The first amount of a money list as a number (charts plot one currency: the first the shop earns in). */
export function firstAmount(revenue: Money[] | undefined): number {
  return revenue?.length ? Number(revenue[0].amount) : 0;
}

/**
 * GSM-7 vs UCS-2 segment count, as carriers split SMS (the API's `sms` preview gives the exact count
 * for rendered messages; this one updates while typing).
 */
const GSM7 = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM7_EXTENDED = "^{}\\[~]|€\f";
export function smsSegments(text: string): { encoding: "GSM-7" | "UCS-2"; characters: number; segments: number; perSegment: number } {
  const chars = Array.from(text);
  const gsm = chars.every((c) => GSM7.includes(c) || GSM7_EXTENDED.includes(c));
  if (gsm) {
    const units = chars.reduce((n, c) => n + (GSM7_EXTENDED.includes(c) ? 2 : 1), 0);
    const perSegment = units <= 160 ? 160 : 153;
    return { encoding: "GSM-7", characters: units, segments: units === 0 ? 0 : Math.ceil(units / perSegment), perSegment };
  }
  const units = text.length; // UTF-16 code units
  const perSegment = units <= 70 ? 70 : 67;
  return { encoding: "UCS-2", characters: units, segments: Math.ceil(units / perSegment), perSegment };
}
