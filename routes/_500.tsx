import type { PageProps } from "../lib/fresh/types.ts";

export default function ServerError(_props: PageProps) {
  return (
    <main class="problem">
      <h1>500</h1>
      <p>Something went wrong on the server; the details are in its log.</p>
      <p>
        <a href="/">Back to the overview</a>
      </p>
    </main>
  );
}
