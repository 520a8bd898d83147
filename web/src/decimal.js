// Exact sums of the API's decimal strings ("12.345678"): money is never summed in floats.

const SCALE = 6;
const ONE = 10n ** BigInt(SCALE);

// micros parses a decimal string with at most six decimals into an integer of millionths.
export function micros(s) {
  const str = String(s).trim();
  const neg = str.startsWith("-");
  const [int, frac = ""] = (neg ? str.slice(1) : str).split(".");
  if (!/^\d+$/.test(int) || !/^\d*$/.test(frac) || frac.length > SCALE) {
    throw new Error(`not a decimal with at most ${SCALE} places: ${s}`);
  }
  const v = BigInt(int) * ONE + BigInt((frac + "0".repeat(SCALE)).slice(0, SCALE));
  return neg ? -v : v;
}

// fixed renders millionths with the given number of decimals, rounding half away from zero.
export function fixed(m, places = 2) {
  const neg = m < 0n;
  let v = neg ? -m : m;
  const drop = 10n ** BigInt(SCALE - places);
  v = (v + drop / 2n) / drop;
  const p = 10n ** BigInt(places);
  const int = (v / p).toString();
  const frac = places > 0 ? "." + (v % p).toString().padStart(places, "0") : "";
  return (neg && v !== 0n ? "-" : "") + int + frac;
}

// toNumber converts millionths to a float for drawing only.
export function toNumber(m) {
  return Number(m) / Number(ONE);
}
