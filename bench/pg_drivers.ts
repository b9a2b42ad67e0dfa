/**
 * @module
 * Which PostgreSQL driver the postgres backend uses: `npm:postgres` and `npm:pg` under Deno, the
 * same work on the same database, interleaved (fresh process per run).
 * `deno run -A bench/pg_drivers.ts [rounds]`
 */

const URL_ = Deno.env.get("TASKFLOW_PG_URL") ?? "postgres://postgres@127.0.0.1:5432/postgres";
const SINGLE = 5_000, BATCH = 5_000, PARALLEL = 20_000;

/** One driver's run in this process: single inserts, one batched insert, 50 in parallel. */
async function run(driver: string): Promise<Record<string, number>> {
  const table = `tf_driver_${driver}_${crypto.randomUUID().slice(0, 8)}`;
  const out: Record<string, number> = {};
  const time = async (name: string, n: number, work: () => Promise<unknown>) => {
    const t = performance.now();
    await work();
    out[name] = Math.round(n / ((performance.now() - t) / 1000));
  };
  // Each driver as one query function: the three shapes below are timed the same on both.
  let query: (text: string, params?: unknown[]) => Promise<unknown>;
  let close: () => Promise<void>;
  if (driver === "postgres") {
    const { default: postgres } = await import("npm:postgres@4.2.0");
    const sql = postgres(URL_, { max: 10, onnotice: () => {} });
    query = (text, params) => sql.unsafe(text, params as never);
    close = () => sql.end();
  } else {
    const { default: pg } = await import("npm:pg@8.23.1");
    const pool = new pg.Pool({ connectionString: URL_, max: 10 });
    query = (text, params) => pool.query(text, params);
    close = () => pool.end();
  }
  await query(`create unlogged table ${table} (id text primary key, body jsonb)`);
  await time("single", SINGLE, async () => {
    for (let i = 0; i < SINGLE; i++) {
      await query(`insert into ${table} values ($1, $2)`, [`s${i}`, { i }]);
    }
  });
  await time("batch", BATCH, async () => {
    const ids = Array.from({ length: BATCH }, (_, i) => `b${i}`);
    await query(
      `insert into ${table} select id, jsonb_build_object('i', 1) from unnest($1::text[]) id`,
      [ids],
    );
  });
  await time("parallel", PARALLEL, async () => {
    let next = 0;
    await Promise.all(Array.from({ length: 50 }, async () => {
      while (next < PARALLEL) {
        const i = next++;
        await query(`insert into ${table} values ($1, $2)`, [`p${i}`, { i }]);
      }
    }));
  });
  await query(`drop table ${table}`);
  await close();
  return out;
}

if (Deno.args[0] === "--child") {
  console.log(JSON.stringify(await run(Deno.args[1])));
} else {
  const rounds = Number(Deno.args[0] ?? 3);
  for (let r = 0; r < rounds; r++) {
    for (const driver of r % 2 ? ["pg", "postgres"] : ["postgres", "pg"]) {
      const { stdout } = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", import.meta.filename!, "--child", driver],
        stderr: "inherit",
      }).output();
      console.log(`round ${r + 1} ${driver.padEnd(8)} ${new TextDecoder().decode(stdout).trim()}`);
    }
  }
}
