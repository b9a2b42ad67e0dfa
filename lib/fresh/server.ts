/**
 * @module
 * The request handler built from a manifest: Fresh 1.x's file-system routing (`[param]`
 * segments, `_app`, `_layout`, `_middleware`, `_404`, `_500`), SSR, islands and static files.
 */

import { type ComponentType, h, type VNode } from "npm:preact@10.29.8";
import { islandName } from "./islands.ts";
import { registerIslands, renderPage } from "./render.ts";
import { serveStatic } from "./static.ts";
import type {
  Handler,
  HandlerContext,
  Handlers,
  Manifest,
  MiddlewareHandler,
  PageProps,
  RouteModule,
} from "./types.ts";

/** Path under which the island bundle is served. */
export const ISLANDS_PATH = "/_frsh/islands.js";

interface Route {
  path: string;
  pattern: URLPattern;
  module: RouteModule;
  /** Static segments count first, so /jobs/new beats /jobs/[id]. */
  rank: number[];
  layouts: ComponentType<any>[];
  middlewares: MiddlewareHandler<any>[];
}

/** Options of {@link createHandler}. */
export interface HandlerOptions {
  /** Initial `ctx.state` for each request (copied per request). */
  state?: () => Record<string, unknown>;
  /** Directory of static files, served at `/`. */
  staticDir?: string;
  /** The island bundle's JavaScript (built lazily on first request, then kept). */
  islands?: () => Promise<string>;
}

/** Builds a `(Request) => Response` handler from a Fresh-style manifest. */
export function createHandler(
  manifest: Manifest,
  options: HandlerOptions = {},
): (req: Request) => Promise<Response> {
  const modules = manifest.routes;
  const special = (name: string) =>
    modules[`./routes/${name}.tsx`] ?? modules[`./routes/${name}.ts`];
  const app = special("_app")?.default;
  const notFound = special("_404");
  const serverError = special("_500");
  registerIslands(Object.fromEntries(
    Object.entries(manifest.islands).map(([path, module]) => [islandName(path), module.default]),
  ));
  const routes = compileRoutes(modules);
  let islandsJs: Promise<string> | undefined;

  const render = (
    route: Route | undefined,
    page: ComponentType<any> | undefined,
    props: PageProps<any, any>,
    init?: ResponseInit,
  ): Promise<Response> => {
    if (!page) {
      return Promise.resolve(new Response("no page component for this route", { status: 500 }));
    }
    let inner: ComponentType<any> = () => h(page, props);
    for (const layout of [...(route?.layouts ?? [])].reverse()) {
      const wrapped: ComponentType<any> = inner;
      inner = (): VNode => h(layout, { ...props, Component: wrapped });
    }
    const tree = app ? h(app, { ...props, Component: inner }) : h(inner, {});
    const html = renderPage(tree, ISLANDS_PATH);
    const headers = new Headers(init?.headers);
    if (!headers.has("content-type")) headers.set("content-type", "text/html; charset=utf-8");
    return Promise.resolve(new Response(html, { status: init?.status ?? 200, headers }));
  };

  const renderNotFound = (url: URL, state: Record<string, unknown>) =>
    render(undefined, notFound?.default ?? DefaultNotFound, {
      url,
      route: "",
      params: {},
      data: undefined,
      state,
    }, {
      status: 404,
    });

  return async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    const state = options.state?.() ?? {};
    try {
      if (url.pathname === ISLANDS_PATH && options.islands) {
        islandsJs ??= options.islands();
        return new Response(await islandsJs, {
          headers: {
            "content-type": "text/javascript; charset=utf-8",
            "cache-control": "no-cache",
          },
        });
      }
      const match = routes.find((r) => r.pattern.test({ pathname: url.pathname }));
      const params = match
        ? decodeParams(match.pattern.exec({ pathname: url.pathname })!.pathname.groups)
        : {};
      const route = match?.path ?? "";
      const middlewares = match?.middlewares ?? routes.find((r) => r.path === "/")?.middlewares ??
        [];
      const final = async (): Promise<Response> => {
        if (!match) {
          if (options.staticDir && (req.method === "GET" || req.method === "HEAD")) {
            const file = await serveStatic(req, url, options.staticDir);
            if (file) return file;
          }
          return await renderNotFound(url, state);
        }
        const ctx: HandlerContext<any, any> = {
          params,
          state,
          url,
          route,
          render: (data, init) =>
            render(match, match.module.default, { url, route, params, data, state }, init),
          renderNotFound: () => renderNotFound(url, state),
        };
        const handler = pickHandler(match.module, req.method);
        if (handler) return await handler(req, ctx);
        if (match.module.handler || !match.module.default || req.method !== "GET") {
          return new Response("method not allowed", {
            status: 405,
            headers: { allow: allowed(match.module) },
          });
        }
        return await ctx.render();
      };
      let index = 0;
      const next = (): Promise<Response> => {
        const middleware = middlewares[index++];
        if (!middleware) return final();
        return Promise.resolve(middleware(req, { params, state, url, route, next }));
      };
      return await next();
    } catch (error) {
      console.error(`[taskflow dashboard] ${req.method} ${url.pathname}:`, error);
      const page = serverError?.default ?? DefaultServerError;
      return await render(undefined, page, { url, route: "", params: {}, data: error, state }, {
        status: 500,
      })
        .catch(() => new Response("internal error", { status: 500 }));
    }
  };
}

function DefaultNotFound() {
  return h("h1", null, "404 — not found");
}

function DefaultServerError() {
  return h("h1", null, "500 — internal error");
}

function pickHandler(module: RouteModule, method: string): Handler<any, any> | undefined {
  const handler = module.handler;
  if (!handler) return undefined;
  if (typeof handler === "function") return handler as Handler<any, any>;
  const handlers = handler as Handlers<any, any>;
  return handlers[method as keyof Handlers] ?? (method === "HEAD" ? handlers.GET : undefined);
}

function allowed(module: RouteModule): string {
  const handler = module.handler;
  if (!handler || typeof handler === "function") return "GET";
  return Object.keys(handler).join(", ");
}

function decodeParams(groups: Record<string, string | undefined>): Record<string, string> {
  const params: Record<string, string> = {};
  for (const [key, value] of Object.entries(groups)) {
    if (value === undefined) continue;
    try {
      params[key] = decodeURIComponent(value);
    } catch {
      params[key] = value;
    }
  }
  return params;
}

/** Turns `./routes/...` module paths into URL patterns, layouts and middleware chains. */
export function compileRoutes(modules: Record<string, RouteModule>): Route[] {
  const byDir = (name: string) => {
    const found = new Map<string, RouteModule>();
    for (const [path, module] of Object.entries(modules)) {
      const match = new RegExp(`^\\./routes(.*)/${name}\\.tsx?$`).exec(path);
      if (match) found.set(match[1], module);
    }
    return found;
  };
  const layouts = byDir("_layout");
  const middlewares = byDir("_middleware");
  const routes: Route[] = [];
  for (const [path, module] of Object.entries(modules)) {
    const relative = /^\.\/routes(\/.*)\.(tsx|ts|jsx|js)$/.exec(path)?.[1];
    if (!relative || relative.split("/").some((s) => s.startsWith("_"))) continue;
    const segments = relative.split("/").slice(1);
    if (segments.at(-1) === "index") segments.pop();
    const pattern = "/" +
      segments.map((s) => s.replace(/^\[\.\.\.(\w+)\]$/, ":$1(.*)").replace(/\[(\w+)\]/g, ":$1"))
        .join("/");
    const dirs = [
      "",
      ...segments.slice(0, relative.endsWith("/index") ? undefined : -1).map((_, i, all) =>
        "/" + all.slice(0, i + 1).join("/")
      ),
    ];
    routes.push({
      path: module.config?.routeOverride ?? pattern,
      pattern: new URLPattern({ pathname: module.config?.routeOverride ?? pattern }),
      module,
      rank: segments.map((s) => s.includes("[...") ? 2 : s.includes("[") ? 1 : 0),
      layouts: dirs.flatMap((d) => layouts.get(d)?.default ? [layouts.get(d)!.default!] : []),
      middlewares: dirs.flatMap((d) => {
        const handler = middlewares.get(d)?.handler;
        return handler
          ? (Array.isArray(handler) ? handler : [handler as MiddlewareHandler<any>])
          : [];
      }),
    });
  }
  return routes.sort((a, b) => {
    for (let i = 0; i < Math.max(a.rank.length, b.rank.length); i++) {
      const x = a.rank[i] ?? -1, y = b.rank[i] ?? -1;
      if (x !== y) return x - y;
    }
    return b.rank.length - a.rank.length;
  });
}
