import type { Handlers } from "../../lib/fresh/types.ts";
import type { DashboardState } from "../../lib/dashboard/state.ts";

const encoder = new TextEncoder();

/**
 * GET /api/live: server-sent events, one `data:` line per hub snapshot. Every open page shares
 * the hub's single poll. A closed page cancels the stream, which unsubscribes it.
 */
export const handler: Handlers<unknown, DashboardState> = {
  GET(_req, ctx) {
    const { hub } = ctx.state;
    let stop = () => {};
    const body = new ReadableStream<Uint8Array>({
      async start(controller) {
        const send = (text: string) => {
          try {
            controller.enqueue(encoder.encode(text));
          } catch {
            stop();
          }
        };
        send("retry: 2000\n\n");
        const unsubscribe = hub.subscribe((snapshot) =>
          send(`data: ${JSON.stringify(snapshot)}\n\n`)
        );
        const keepAlive = setInterval(() => send(": keep-alive\n\n"), 15_000);
        stop = () => {
          unsubscribe();
          clearInterval(keepAlive);
          try {
            controller.close();
          } catch {
            // The page went away and cancelled the stream, so it is closed already.
          }
        };
        send(`data: ${JSON.stringify(await hub.snapshot())}\n\n`);
      },
      cancel() {
        stop();
      },
    });
    return new Response(body, {
      headers: {
        "content-type": "text/event-stream",
        "cache-control": "no-store",
        "x-accel-buffering": "no",
      },
    });
  },
};
