/** Rules of the published packages, shared by scripts/build.ts and the packaging tests. */

/** What a runtime other than Bun gets for `import "wirechat"`: one line saying what to do. */
export const BUN_ONLY = "wirechat's server runs on Bun: use bun, or import wirechat/client";

/** The modules a JavaScript or declaration file names that are not relative paths (packages, `bun:`, `node:`). */
export function outside(code: string): string[] {
  const specifiers = [
    ...code.matchAll(/(?:^|[;\n}])\s*(?:import|export)\b[^;"'`]*?\bfrom\s*["']([^"']+)["']/g),
    ...code.matchAll(/(?:^|[;\n}])\s*import\s*["']([^"']+)["']/g),
    ...code.matchAll(/\bimport\s*\(\s*["']([^"']+)["']\s*\)/g),
    ...code.matchAll(/\/\/\/\s*<reference\s+(?:types|path|lib)\s*=\s*["']([^"']+)["']/g),
  ].map((m) => m[1]!);
  return [...new Set(specifiers.filter((s) => !s.startsWith("./") && !s.startsWith("../")))];
}
