/**
 * @module
 * Job ids: time-ordered, monotonic within a process (ULID layout).
 */

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
let lastTime = -1;
let lastRandom: number[] = [];
/** The time part of the ids of `lastTime` (ids of one millisecond share it). */
let lastTimeText = "";

/**
 * A new job id: 26 characters, sortable by creation time (ULID layout), monotonic within one
 * process so that jobs created in the same millisecond keep their order. `now` is the caller's
 * clock; the random part comes from `crypto.getRandomValues` (ids need uniqueness, not replay).
 */
export function newJobId(now: number): string {
  let random: number[];
  if (now <= lastTime) {
    random = increment(lastRandom);
    now = lastTime;
  } else {
    random = new Array(16);
    for (let i = 0; i < 16; i++) random[i] = randomByte() & 31;
    random[0] &= 15; // leave room to increment without overflow
  }
  if (now !== lastTime || !lastTimeText) {
    lastTimeText = "";
    for (let t = now, i = 0; i < 10; i++, t = Math.floor(t / 32)) {
      lastTimeText = CROCKFORD[t % 32] + lastTimeText;
    }
  }
  lastTime = now;
  lastRandom = random;
  let id = lastTimeText;
  for (const digit of random) id += CROCKFORD[digit];
  return id;
}

/** The creation time a {@link newJobId} id encodes, or undefined for an id of another form. */
export function idCreatedAt(id: string): number | undefined {
  if (!/^[0-9A-HJKMNP-TV-Z]{26}$/.test(id)) return undefined;
  let at = 0;
  for (const digit of id.slice(0, 10)) at = at * 32 + CROCKFORD.indexOf(digit);
  return at;
}

/** Random bytes drawn 4 KiB at a time: one call into the system's generator per 256 ids. */
const randomPool = new Uint8Array(4096);
let randomAt = randomPool.length;

function randomByte(): number {
  if (randomAt === randomPool.length) {
    crypto.getRandomValues(randomPool);
    randomAt = 0;
  }
  return randomPool[randomAt++];
}

function increment(digits: number[]): number[] {
  const next = digits.slice();
  for (let i = next.length - 1; i >= 0; i--) {
    if (next[i] < 31) {
      next[i]++;
      return next;
    }
    next[i] = 0;
  }
  return next;
}
