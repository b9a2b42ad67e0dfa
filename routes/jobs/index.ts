import { seeOther } from "../../components/problem.ts";

/** `/jobs` shows the Enqueued jobs. */
export function handler(): Response {
  return seeOther("/jobs/enqueued");
}
