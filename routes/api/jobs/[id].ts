import { json } from "../../../components/problem.ts";
import type { Handlers } from "../../../lib/fresh/types.ts";
import type { DashboardState } from "../../../lib/dashboard/state.ts";
import { JobNotFoundError } from "../../../lib/mod.ts";
import { checkJobId } from "../../../lib/job.ts";

/** GET /api/jobs/:id: the job's record and its events. */
export const handler: Handlers<unknown, DashboardState> = {
  async GET(_req, ctx) {
    const id = checkJobId(ctx.params.id);
    const [job, events] = await Promise.all([ctx.state.tf.get(id), ctx.state.tf.events(id)]);
    if (!job) throw new JobNotFoundError(id);
    return json({ job, events });
  },
};
