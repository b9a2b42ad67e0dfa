import { useEffect, useRef } from "preact/hooks";

/** The row checkboxes of the bulk form `form` on this page. */
function rows(form: string): HTMLInputElement[] {
  return [...document.querySelectorAll<HTMLInputElement>(`input[name="ids"][form="${form}"]`)];
}

/**
 * A header checkbox that checks or clears every row's box of the bulk form `form`, and shows
 * whether all, some or none are checked. Without JavaScript the page offers a "select all"
 * link instead (`?select=all` renders every box checked).
 */
export default function SelectAll({ form, checked }: { form: string; checked: boolean }) {
  const box = useRef<HTMLInputElement>(null);
  useEffect(() => {
    const sync = () => {
      const all = rows(form);
      const on = all.filter((row) => row.checked).length;
      if (!box.current) return;
      box.current.checked = all.length > 0 && on === all.length;
      box.current.indeterminate = on > 0 && on < all.length;
    };
    const onChange = (event: Event) => {
      const target = event.target as HTMLInputElement | null;
      if (target?.name === "ids" && target.getAttribute("form") === form) sync();
    };
    sync();
    document.addEventListener("change", onChange);
    return () => document.removeEventListener("change", onChange);
  }, [form]);
  return (
    <input
      type="checkbox"
      ref={box}
      class="select-all"
      checked={checked}
      aria-label="select every job on this page"
      onChange={(event) => {
        const on = (event.currentTarget as HTMLInputElement).checked;
        for (const row of rows(form)) row.checked = on;
      }}
    />
  );
}
