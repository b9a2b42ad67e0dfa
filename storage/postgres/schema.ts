/**
 * @module
 * The PostgreSQL schema, as numbered migrations applied on open (and by `deno task migrate`)
 * under an advisory lock, so that processes opening at once apply each exactly once. The
 * append-only `events` table is the log; `jobs`, `counters`, `buckets` (time buckets, and the
 * statistics counters under `s:` resolutions), `uniques` and `feed` are projections written
 * in the same transaction by the `append` function (one round trip).
 */

import type { Queryable } from "./db.ts";

/** Counters are spread over this many rows per name (by backend pid) and summed on read. */
export const COUNTER_SLOTS = 16;

/** The LISTEN/NOTIFY channel of a schema's wake-ups. */
export function channelOf(schema: string): string {
  return `taskflow_${schema}`;
}

/** Migration `n` (from 1) for schema `s` (already quoted); never edit one that shipped. */
function migrations(s: string, channel: string): string[] {
  return [
    `
create table ${s}.events (
  id text collate "C" not null, seq int not null, body text not null, primary key (id, seq));
create table ${s}.jobs (
  id text collate "C" primary key, version int not null, state text collate "C" not null,
  queue text collate "C" not null, state_at bigint not null, rank int not null, run_at bigint,
  name text collate "C" not null, created_at bigint not null, record text not null,
  lease_server text, lease_until bigint);
create index jobs_state on ${s}.jobs (state, state_at, id);
create index jobs_ready on ${s}.jobs (queue, rank, state_at, id) where state = 'Enqueued';
create index jobs_due on ${s}.jobs (run_at, id) where state = 'Scheduled';
create index jobs_lease_expiry on ${s}.jobs (lease_until) where lease_server is not null;
create index jobs_names on ${s}.jobs (name, created_at desc, id);
create table ${s}.uniques (key text collate "C" primary key, holder text collate "C" not null);
create table ${s}.counters (
  name text collate "C" not null, slot int not null, n bigint not null, primary key (name, slot));
create table ${s}.buckets (
  resolution text not null, at bigint not null, kind text not null, slot int not null,
  n bigint not null, primary key (resolution, at, kind, slot));
create table ${s}.feed (pos bigserial primary key, xid xid8 not null, refs text not null);
create index feed_order on ${s}.feed (xid, pos);
create table ${s}.records (
  kind text not null, id text collate "C" not null, version int not null, body text not null,
  primary key (kind, id));
create table ${s}.servers (id text primary key, info text not null, expires_at bigint not null);
create table ${s}.paused (queue text collate "C" primary key);
create table ${s}.meta (key text primary key, value text not null);
create type ${s}.commit as (
  c int, id text collate "C", expect int, version int, state text collate "C",
  queue text collate "C", state_at bigint, rank int, run_at bigint, name text collate "C",
  created_at bigint, record text, lease_server text, lease_until bigint, events text);
create function ${s}.append(p jsonb, commits json, record_lines text, event_lines text) returns jsonb
language plpgsql as $fn$
#variable_conflict use_column
declare
  refused jsonb;
  versions jsonb;
  -- The commits parsed once (each pass over them costs as much as a row's insert). The records
  -- and event lists come as lines of JSON text (a stringified value has no raw line break): the
  -- server only splits them, where parsing them as JSON cost as much as the inserts.
  cs ${s}.commit[] := array(
    select row(x.c, x.id, x.expect, x.version, x.state, x.queue, x.state_at, x.rank, x.run_at,
      x.name, x.created_at, x.record, x.lease_server, x.lease_until, x.events)::${s}.commit
    from rows from (json_populate_recordset(null::${s}.commit, commits),
      string_to_table(record_lines, E'\n'), string_to_table(event_lines, E'\n'))
      as x(c, id, expect, version, state, queue, state_at, rank, run_at, name, created_at,
        no_record, lease_server, lease_until, no_events, record, events));
  used jsonb := '{}';
  have bigint;
  capped record;
  lock_key text;
  my_slot int := pg_backend_pid() % ${COUNTER_SLOTS};
begin
  -- A part of the payload with nothing in it is left out, and its statements are skipped: a
  -- statement with nothing to do costs as much as several rows' writes, and a worker's call
  -- carries a few jobs. 'old' and 'new' say whether some commits have an existing or new job.
  -- Unique keys and capped queues first, then the job rows: each in one order, so two calls
  -- never wait on each other in a cycle.
  if p ? 'uniques' or p ? 'caps' then
    for lock_key in
      select 'u:' || (u->>'key') from jsonb_array_elements(p->'uniques') u
      union select 'c:' || (c->>'gauge') from jsonb_array_elements(p->'caps') c order by 1
    loop
      perform pg_advisory_xact_lock(hashtextextended(lock_key, 7));
    end loop;
  end if;
  -- Existing jobs locked in id order with their versions; new jobs (expect 0) have no row to
  -- lock: a racing insert of the same id fails on the key and the call goes again.
  if p ? 'old' then
    select coalesce(jsonb_object_agg(id, version), '{}') into versions from (
      select j.id, j.version from ${s}.jobs j
      where j.id in (select c.id from unnest(cs) c where c.expect > 0)
      order by j.id for update) locked;
  end if;
  select jsonb_object_agg(x.c, x.ids) into refused from (
    select c, jsonb_agg(id) ids from (
      select c.c, c.id from unnest(cs) c
        where case when c.expect = 0
          then exists (select 1 from ${s}.jobs j where j.id = c.id)
          else coalesce((versions->>c.id)::int, 0) <> c.expect end
      union all
      select u.c, u.id from jsonb_to_recordset(p->'uniques') u(c int, key text, holder text, id text)
        left join ${s}.uniques q on q.key = u.key where q.holder is distinct from u.holder
      union all
      select t.c, 'setting:' || t.id
        from jsonb_to_recordset(p->'settings') t(c int, id text, expect int)
        left join ${s}.records r on r.kind = 'settings' and r.id = t.id
        where coalesce(r.version, 0) <> t.expect
    ) y group by c
  ) x;
  if p ? 'caps' then
    for capped in
      select * from jsonb_to_recordset(p->'caps') k(c int, gauge text, max int, n int) order by c
    loop
      continue when refused ? capped.c::text;
      have := coalesce((used->>capped.gauge)::bigint,
        (select coalesce(sum(n), 0) from ${s}.counters where name = capped.gauge));
      if have + capped.n > capped.max then
        refused := coalesce(refused, '{}') || jsonb_build_object(capped.c::text, '[""]'::jsonb);
      else
        used := used || jsonb_build_object(capped.gauge, have + capped.n);
      end if;
    end loop;
  end if;
  if refused is not null then return refused; end if;

  if not coalesce((p->>'replay')::boolean, false) then
    insert into ${s}.events (id, seq, body)
      select c.id, c.expect + 1, c.events from unnest(cs) c;
  end if;
  -- Existing jobs (locked above) are updated and new ones inserted: a plain insert, so that a
  -- racing insert of the same id fails on the key instead of updating the other's row.
  if p ? 'old' then
    update ${s}.jobs j set version = c.version, state = c.state, queue = c.queue,
      state_at = c.state_at, rank = c.rank, run_at = c.run_at, name = c.name,
      created_at = c.created_at, record = c.record,
      lease_server = case when c.state <> 'Processing' then null
        else coalesce(c.lease_server, j.lease_server) end,
      lease_until = case when c.state <> 'Processing' then null
        when c.lease_server is not null then c.lease_until else j.lease_until end
      from unnest(cs) c
      where c.expect > 0 and j.id = c.id;
  end if;
  if p ? 'new' then
    insert into ${s}.jobs (id, version, state, queue, state_at, rank, run_at, name, created_at,
        record, lease_server, lease_until)
      select c.id, c.version, c.state, c.queue, c.state_at, c.rank, c.run_at, c.name,
        c.created_at, c.record, c.lease_server, c.lease_until
      from unnest(cs) c
      where c.expect = 0;
  end if;
  if p ? 'uniques' then
    insert into ${s}.uniques (key, holder)
      select u.key, u.id from jsonb_to_recordset(p->'uniques') u(key text, id text)
    on conflict (key) do update set holder = excluded.holder;
  end if;
  if p ? 'settings' then
    insert into ${s}.records (kind, id, version, body)
      select 'settings', t.id, t.version, t.body
      from jsonb_to_recordset(p->'settings') t(id text, version int, body text)
    on conflict (kind, id) do update set version = excluded.version, body = excluded.body;
  end if;
  if p ? 'counters' then
    insert into ${s}.counters as t (name, slot, n)
      select k.name, my_slot, k.n from jsonb_to_recordset(p->'counters') k(name text, n bigint)
      order by k.name
    on conflict (name, slot) do update set n = t.n + excluded.n;
  end if;
  if p ? 'buckets' then
    insert into ${s}.buckets as t (resolution, at, kind, slot, n)
      select b.resolution, b.at, b.kind, my_slot, b.n
      from jsonb_to_recordset(p->'buckets') b(resolution text, at bigint, kind text, n bigint)
      order by 1, 2, 3
    on conflict (resolution, at, kind, slot) do update set n = t.n + excluded.n;
  end if;
  if p->>'refs' is not null then
    insert into ${s}.feed (xid, refs) values (pg_current_xact_id(), p->>'refs');
  end if;
  if coalesce((p->>'wake')::boolean, false) then
    perform pg_notify('${channel}', '');
  end if;
  return null;
end $fn$;
`,
  ];
}

/** The newest schema version this code knows. */
export const SCHEMA_VERSION = 1;

/**
 * Creates the schema and applies the migrations it lacks, in one transaction under an advisory
 * lock (processes opening at once wait for each other); returns the versions applied.
 */
export async function migrate(q: Queryable, schema: string): Promise<number[]> {
  const s = `"${schema}"`;
  await q.query("begin");
  try {
    await q.query("select pg_advisory_xact_lock(hashtextextended($1, 7))", [
      `taskflow-migrate:${schema}`,
    ]);
    await q.query(`create schema if not exists ${s}`);
    await q.query(
      `create table if not exists ${s}.migrations (
         version int primary key, applied_at timestamptz not null default now())`,
    );
    const { rows } = await q.query(`select coalesce(max(version), 0) as v from ${s}.migrations`);
    const current = Number(rows[0].v);
    if (current > SCHEMA_VERSION) {
      throw new Error(
        `schema ${schema} is at version ${current}, newer than this TaskFlow knows (${SCHEMA_VERSION})`,
      );
    }
    const applied: number[] = [];
    const all = migrations(s, channelOf(schema));
    for (let version = current + 1; version <= all.length; version++) {
      await q.query(all[version - 1]);
      await q.query(`insert into ${s}.migrations (version) values ($1)`, [version]);
      applied.push(version);
    }
    await q.query("commit");
    return applied;
  } catch (error) {
    await q.query("rollback").catch(() => {});
    throw error;
  }
}
