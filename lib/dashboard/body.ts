/**
 * @module
 * Request bodies bounded while they stream: a body over its route's limit stops being read at
 * the limit and the request is answered 413, whatever the handler does with it.
 */

import { TaskFlowError } from "../mod.ts";

/** Limit of a form POST (a bulk action of 500 long ids fits). */
export const FORM_LIMIT = 256 * 1024;
/** Limit of a JSON API body (job args are smaller on every backend). */
export const JSON_LIMIT = 1024 * 1024;

/** A request body over the route's limit; answered 413. */
export class RequestBodyTooLargeError extends TaskFlowError {
  /** Builds the error naming the limit and how much was seen (declared or read). */
  constructor(limit: number, seen: number, declared: boolean) {
    super(
      "PAYLOAD_TOO_LARGE",
      `the request body is over the limit of ${limit} bytes (${
        declared ? `Content-Length ${seen}` : `stopped reading at ${seen} bytes`
      })`,
      { limit, seen },
    );
  }
}

/** The body limit of a path: JSON for `/api/`, forms elsewhere. */
export function bodyLimit(pathname: string): number {
  return pathname.startsWith("/api/") ? JSON_LIMIT : FORM_LIMIT;
}

/**
 * `req` with its body bounded to `limit` bytes while streaming: reading past the limit rejects
 * with {@link RequestBodyTooLargeError} and pulls no more from the client. A declared
 * Content-Length over the limit rejects the first read, before anything is pulled. Nothing is
 * read here: a request refused earlier (401, 403) never reads its body at all.
 */
export function limitBody(req: Request, limit: number): Request {
  if (!req.body) return req;
  const declared = Number(req.headers.get("content-length") ?? NaN);
  let seen = 0;
  const source = req.body;
  const bounded = declared > limit
    ? new ReadableStream<Uint8Array>({
      pull(controller) {
        source.cancel().catch(() => {});
        controller.error(new RequestBodyTooLargeError(limit, declared, true));
      },
      cancel: () => source.cancel(),
    })
    : source.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          seen += chunk.byteLength;
          if (seen > limit) throw new RequestBodyTooLargeError(limit, seen, false);
          controller.enqueue(chunk);
        },
      }),
    );
  return new Request(req.url, {
    method: req.method,
    headers: req.headers,
    body: bounded,
    redirect: req.redirect,
    // @ts-ignore: a streamed request body needs `duplex` (not in every lib.dom typing).
    duplex: "half",
  });
}
