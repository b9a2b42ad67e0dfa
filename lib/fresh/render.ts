/**
 * @module
 * Server-side rendering with island markers: an island component renders inside a
 * `data-tf-island` wrapper and its props are serialized into the page for hydration.
 */

import { type ComponentType, h, options, type VNode } from "npm:preact@10.29.8";
import { renderToString } from "npm:preact-render-to-string@6.8.2";

const INNER = "__tfIslandInner";

/** Island components by function, with the name the client bundle knows them by. */
const islandNames = new Map<ComponentType<any>, string>();
let collected: unknown[] | undefined;

/** Registers island components (name → component) so that rendering marks them. */
export function registerIslands(islands: Record<string, ComponentType<any>>): void {
  for (const [name, component] of Object.entries(islands)) islandNames.set(component, name);
}

function IslandWrapper(
  props: { name: string; component: ComponentType<any>; props: Record<string, unknown> },
) {
  const index = collected ? collected.push(props.props) - 1 : -1;
  return h(
    "div",
    { class: "tf-island", "data-tf-island": props.name, "data-tf-props": String(index) },
    h(props.component, { ...props.props, [INNER]: true }),
  );
}

const previousVnode = options.vnode;
options.vnode = (vnode: VNode<any>) => {
  const name = typeof vnode.type === "function" ? islandNames.get(vnode.type) : undefined;
  if (name !== undefined && collected) {
    const props = vnode.props as Record<string, unknown>;
    if (props[INNER]) {
      delete props[INNER];
    } else {
      const component = vnode.type as ComponentType<any>;
      vnode.type = IslandWrapper as ComponentType<any>;
      vnode.props = { name, component, props: { ...props } };
    }
  }
  previousVnode?.(vnode);
};

/** Serializes `value` for a `<script type="application/json">` element. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replaceAll("<", "\\u003c")
    .replaceAll(">", "\\u003e")
    .replaceAll("&", "\\u0026")
    .replaceAll("\u2028", "\\u2028")
    .replaceAll("\u2029", "\\u2029");
}

/**
 * Renders `vnode` to a full HTML document; when islands were rendered, appends their props and
 * the hydration script before `</body>`.
 */
export function renderPage(vnode: VNode, islandScript: string): string {
  collected = [];
  let html: string;
  let props: unknown[];
  try {
    html = renderToString(vnode);
    props = collected;
  } finally {
    collected = undefined;
  }
  if (props.length > 0) {
    const tail = `<script type="application/json" id="tf-islands">${scriptJson(props)}</script>` +
      `<script type="module" src="${islandScript}"></script>`;
    // Spliced, never String.replace: a `$&` or `$'` in the data would be expanded as a pattern.
    const end = html.lastIndexOf("</body>");
    html = end < 0 ? html + tail : html.slice(0, end) + tail + html.slice(end);
  }
  return `<!DOCTYPE html>${html}`;
}
