import type { PageProps } from "../lib/fresh/types.ts";

export default function NotFound({ url }: PageProps) {
  return (
    <main class="problem">
      <h1>404</h1>
      <p>Nothing here: {url.pathname}</p>
      <p>
        <a href="/">Back to the overview</a>
      </p>
    </main>
  );
}
