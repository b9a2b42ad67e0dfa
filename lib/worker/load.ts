/**
 * @module
 * Loading a module of job definitions for the worker command line.
 */

import { JobModuleError } from "../../storage/errors.ts";
import { isJobDefinition, type JobDefinition } from "../job.ts";

/**
 * Imports `specifier` (a path relative to the working directory, or a URL) and returns every
 * job definition it exports (directly, or in an exported array or object).
 */
export async function loadJobs(specifier: string): Promise<JobDefinition[]> {
  const url = /^[a-z][a-z0-9+.-]*:/i.test(specifier) ? specifier : toFileUrl(specifier);
  let module: Record<string, unknown>;
  try {
    module = await import(url);
  } catch (error) {
    throw new JobModuleError(specifier, `failed to import: ${(error as Error).message}`, error);
  }
  const found = new Map<string, JobDefinition>();
  const visit = (value: unknown, where: string) => {
    if (isJobDefinition(value)) {
      const other = found.get(value.name);
      if (other && other !== value) {
        throw new JobModuleError(
          specifier,
          `two definitions share the job name "${value.name}" (${where})`,
        );
      }
      found.set(value.name, value);
    } else if (Array.isArray(value)) value.forEach((v, i) => visit(v, `${where}[${i}]`));
  };
  for (const [name, value] of Object.entries(module)) {
    visit(value, name);
    if (value && typeof value === "object" && !Array.isArray(value) && !isJobDefinition(value)) {
      for (const [key, inner] of Object.entries(value)) {
        if (isJobDefinition(inner)) visit(inner, `${name}.${key}`);
      }
    }
  }
  if (found.size === 0) {
    throw new JobModuleError(
      specifier,
      "exports no job definitions (create them with defineJob and export them)",
    );
  }
  return [...found.values()];
}

function toFileUrl(path: string): string {
  const absolute = path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
  return new URL(`file://${absolute.split("/").map(encodeURIComponent).join("/")}`).href;
}
