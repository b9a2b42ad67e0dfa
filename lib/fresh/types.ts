/**
 * @module
 * Fresh 1.x's route-module types, so that routes written for this runtime move to real Fresh
 * mechanically.
 */

import type { ComponentType, JSX } from "npm:preact@10.29.8";

/** What a page component receives. */
export interface PageProps<Data = unknown, State = Record<string, unknown>> {
  url: URL;
  route: string;
  params: Record<string, string>;
  data: Data;
  state: State;
}

/** Props of `_app.tsx` and `_layout.tsx`: the page (or inner layout) to wrap. */
export interface AppProps<State = Record<string, unknown>> extends PageProps<unknown, State> {
  Component: ComponentType<Record<string, never>>;
}

/** The context of a route handler. */
export interface HandlerContext<Data = unknown, State = Record<string, unknown>> {
  params: Record<string, string>;
  state: State;
  url: URL;
  route: string;
  /** Renders the route's page component with `data`. */
  render(data?: Data, init?: ResponseInit): Promise<Response>;
  /** Renders the `_404` page. */
  renderNotFound(): Promise<Response>;
}

/** A handler for one HTTP method. */
export type Handler<Data = unknown, State = Record<string, unknown>> = (
  req: Request,
  ctx: HandlerContext<Data, State>,
) => Response | Promise<Response>;

/** A route's handlers, by method. */
export type Handlers<Data = unknown, State = Record<string, unknown>> = {
  [method in "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD"]?: Handler<Data, State>;
};

/** The context of a `_middleware.ts` handler. */
export interface MiddlewareHandlerContext<State = Record<string, unknown>> {
  params: Record<string, string>;
  state: State;
  url: URL;
  route: string;
  /** Runs the next middleware, or the route. */
  next(): Promise<Response>;
}

/** A `_middleware.ts` handler. */
export type MiddlewareHandler<State = Record<string, unknown>> = (
  req: Request,
  ctx: MiddlewareHandlerContext<State>,
) => Response | Promise<Response>;

/** What a route module may export. */
export interface RouteModule {
  default?: ComponentType<any>;
  handler?: Handlers<any, any> | Handler<any, any> | MiddlewareHandler<any> | MiddlewareHandler<
    any
  >[];
  config?: { routeOverride?: string };
}

/** An island module: its default export hydrates in the browser. */
export interface IslandModule {
  default: ComponentType<any>;
}

/** The generated `fresh.gen.ts` manifest. */
export interface Manifest {
  routes: Record<string, RouteModule>;
  islands: Record<string, IslandModule>;
  baseUrl: string;
}

/** A page's rendered element tree. */
export type Element = JSX.Element;
