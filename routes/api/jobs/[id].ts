import { json } from "../../../components/problem.ts";
import type { Handlers } from "../../../lib/fresh/types.ts";
import type { DashboardState } from "../../../lib/dashboard/state.ts";
import { JobNotFoundError } from "../../../lib/mod.ts";
import { checkJobId } from "../../../lib/job.ts";
import { prunedText } from "../../../lib/retention/explain.ts";

/**
 * GET /api/jobs/:id: the job's record and its events (and, for an Enqueued job held by its
 * queue's limits, `waiting`: why); 404 when there is none, saying when the
 * id's format and age say it was probably pruned by the retention policy.
 */
export const handler: Handlers<unknown, DashboardState> = {
  async GET(_req, ctx) {
    const id = checkJobId(ctx.params.id);
    const [job, events] = await Promise.all([ctx.state.tf.get(id), ctx.state.tf.events(id)]);
    if (!job) {
      const stored = await ctx.state.tf.retention();
      const pruned = stored ? prunedText(id, stored, ctx.state.tf.now()) : undefined;
      if (!pruned) throw new JobNotFoundError(id);
      const message = `${new JobNotFoundError(id).message}: ${pruned}`;
      return json({ error: message, code: "JOB_NOT_FOUND", status: 404, pruned: true }, {
        status: 404,
      });
    }
    const waiting = await ctx.state.tf.queues.waiting(job);
    return json(waiting ? { job, events, waiting } : { job, events });
  },
};
