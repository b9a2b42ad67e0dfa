/**
 * @module
 * "Why is this job here?": the job's explanation (`tf.explain`), one line per reason, each
 * marked with its kind for styling and tests.
 */

import type { Explanation as Data } from "../lib/mod.ts";

/** The reasons of an explanation, most telling first. */
export function Explanation({ explanation }: { explanation: Data }) {
  return (
    <section class="explanation" data-explanation={explanation.id}>
      <h2>Why {explanation.state.toLowerCase()}</h2>
      <ul>
        {explanation.reasons.map((reason) => (
          <li key={reason.kind} data-reason={reason.kind}>{reason.text}</li>
        ))}
      </ul>
    </section>
  );
}
