/**
 * Which operation of the OpenAPI document a raw request reaches, matched the way Express matches a route:
 * the path before the query, case-insensitive, one trailing slash allowed, each `{param}` one non-empty
 * segment as sent (still percent-encoded). HEAD and OPTIONS, which Express answers for routes by itself,
 * are no operation of the document. Used to check that every status a route answers is documented for it.
 */
export interface Operation {
  path: string;
  method: string;
}

interface Matcher extends Operation {
  pattern: RegExp;
}

export function operationMatcher(document: {
  paths: Record<string, Record<string, unknown>>;
}): (method: string, rawPath: string) => Operation | null {
  const matchers: Matcher[] = [];
  for (const [path, operations] of Object.entries(document.paths)) {
    const source = path
      .split("/")
      .map((part) => (/^\{[^}]+\}$/.test(part) ? "[^/]+" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
      .join("/");
    const pattern = new RegExp(`^${source}/?$`, "i");
    for (const method of Object.keys(operations)) matchers.push({ path, method, pattern });
  }
  return (method, rawPath) => {
    const pathOnly = rawPath.split("?")[0];
    const lower = method.toLowerCase();
    // Literal paths first, as Express's order does for these routes (no parameter shadows a literal here).
    const found = matchers.filter((m) => m.method === lower && m.pattern.test(pathOnly));
    if (found.length === 0) return null;
    found.sort((a, b) => (a.path.match(/\{/g)?.length ?? 0) - (b.path.match(/\{/g)?.length ?? 0));
    return { path: found[0].path, method: found[0].method };
  };
}

/** The statuses the document lists for an operation. */
export function documentedStatuses(
  document: { paths: Record<string, Record<string, { responses?: Record<string, unknown> }>> },
  op: Operation,
): Set<number> {
  return new Set(Object.keys(document.paths[op.path]?.[op.method]?.responses ?? {}).map(Number));
}
