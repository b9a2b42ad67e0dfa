/** `/jobs` shows the Enqueued jobs. */
export function handler(): Response {
  return new Response(null, { status: 303, headers: { location: "/jobs/enqueued" } });
}
