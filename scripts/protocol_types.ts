/**
 * The protocol's types without TypeBox, for the client package: every type
 * alias that `src/protocol.ts` exports (`Static<typeof Schema>`) spelled out
 * as a plain TypeScript type, with the schemas' doc comments. The schemas
 * stay the one definition: this is computed from them by the compiler, and
 * `checkProtocolTypes` proves each written type equal to its schema's.
 */
import ts from "typescript";

/**
 * A declaration file: `export * from "./protocol/limits.js"` and one
 * `export type` per alias of `file`; `names` lists the aliases.
 */
export function protocolTypes(program: ts.Program, file: string): { text: string; names: string[] } {
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(file);
  if (!source) throw new Error(`protocol types: ${file} is not in the program`);
  const module = checker.getSymbolAtLocation(source);
  if (!module) throw new Error(`protocol types: ${file} is not a module`);
  const aliases = checker.getExportsOfModule(module).filter((s) => s.flags & ts.SymbolFlags.TypeAlias);
  // A type that is exactly another alias's (the same union of literals, the same object) is written by that name.
  const named = new Map<ts.Type, string>();
  // Unions of objects, to find them inside larger unions (ClientFrame holds TypingFrame's members).
  const unions: { name: string; members: ts.Type[] }[] = [];
  for (const s of aliases) {
    const type = checker.getDeclaredTypeOfSymbol(s);
    if (type.flags & (ts.TypeFlags.Object | ts.TypeFlags.Union | ts.TypeFlags.Intersection) && !named.has(type)) named.set(type, s.name);
    if (type.flags & ts.TypeFlags.Union && (type as ts.UnionType).types.some((m) => m.flags & ts.TypeFlags.Object)) {
      unions.push({ name: s.name, members: (type as ts.UnionType).types });
    }
  }

  const text = (type: ts.Type) => checker.typeToString(type, undefined, ts.TypeFormatFlags.NoTruncation);
  const doc = (s: ts.Symbol, indent: string) => {
    const d = ts.displayPartsToString(s.getDocumentationComment(checker)).trim();
    if (!d) return "";
    const lines = d.split("\n");
    return lines.length === 1 ? `${indent}/** ${d} */\n` : `${indent}/**\n${lines.map((l) => `${indent} * ${l}`.trimEnd()).join("\n")}\n${indent} */\n`;
  };
  /** Declaration order in the schema (the compiler lists optional properties first). */
  const position = (s: ts.Symbol) => s.valueDeclaration?.getStart() ?? s.declarations?.[0]?.getStart() ?? 0;

  function write(type: ts.Type, indent: string, top: boolean): string {
    if (!top) {
      const name = named.get(type);
      if (name) return name;
    }
    if (type.flags & ts.TypeFlags.Union) {
      const members = (type as ts.UnionType).types;
      // Unions of literals (and boolean, which is true | false) read best as the compiler writes them.
      if (members.every((m) => !(m.flags & ts.TypeFlags.Object))) return text(type);
      const parts: string[] = [];
      const done = new Set<ts.Type>();
      for (const m of members) {
        if (done.has(m)) continue;
        const group = unions.find((u) => u.members !== members && u.members.includes(m) && u.members.every((x) => members.includes(x)));
        if (group) {
          for (const x of group.members) done.add(x);
          parts.push(group.name);
        } else {
          done.add(m);
          parts.push(write(m, indent, false));
        }
      }
      return parts.join(" | ");
    }
    if (type.flags & ts.TypeFlags.Intersection) return (type as ts.IntersectionType).types.map((m) => write(m, indent, false)).join(" & ");
    if (!(type.flags & ts.TypeFlags.Object)) return text(type);
    if (checker.isArrayType(type)) {
      const [element] = checker.getTypeArguments(type as ts.TypeReference);
      const inner = write(element!, indent, false);
      return /[|&]/.test(inner) ? `(${inner})[]` : `${inner}[]`;
    }
    if (type.getCallSignatures().length > 0 || checker.isTupleType(type)) return text(type);
    const props = [...checker.getPropertiesOfType(type)].sort((a, b) => position(a) - position(b));
    const inner = `${indent}  `;
    const lines: string[] = [];
    for (const info of checker.getIndexInfosOfType(type)) {
      lines.push(`${inner}[key: ${text(info.keyType)}]: ${write(info.type, inner, false)};\n`);
    }
    for (const p of props) {
      const optional = (p.flags & ts.SymbolFlags.Optional) !== 0;
      let t = checker.getTypeOfSymbol(p);
      // `x?: T` already admits undefined: write T.
      if (optional && t.flags & ts.TypeFlags.Union) {
        const rest = (t as ts.UnionType).types.filter((m) => !(m.flags & ts.TypeFlags.Undefined));
        if (rest.length === 1) t = rest[0]!;
        else if (rest.length < (t as ts.UnionType).types.length) {
          // Literals and primitives as the compiler writes them (boolean, not false | true).
          const written = rest.every((m) => !(m.flags & ts.TypeFlags.Object))
            ? [
                text(t)
                  .split(" | ")
                  .filter((x) => x !== "undefined")
                  .join(" | "),
              ]
            : rest.map((m) => write(m, inner, false));
          lines.push(`${doc(p, inner)}${inner}${p.name}?: ${written.join(" | ")};\n`);
          continue;
        }
      }
      lines.push(`${doc(p, inner)}${inner}${p.name}${optional ? "?" : ""}: ${write(t, inner, false)};\n`);
    }
    return lines.length === 0 ? "{}" : `{\n${lines.join("")}${indent}}`;
  }

  const out = [
    "// The wire protocol's types, written out by scripts/build.ts from the TypeBox",
    "// schemas in wirechat's src/protocol.ts (no schema library needed to use them).",
    'export * from "./protocol/limits.js";',
    "",
  ];
  for (const s of aliases) {
    out.push(`${doc(s, "")}export type ${s.name} = ${write(checker.getDeclaredTypeOfSymbol(s), "", true)};`, "");
  }
  return { text: out.join("\n"), names: aliases.map((s) => s.name) };
}

/**
 * Type-checks that each type in `written` (the output of `protocolTypes`,
 * saved as a module) is identical to the schema type of the same name in
 * `schemas`; returns the compiler's complaints, empty when every one is.
 */
export function checkProtocolTypes(schemas: string, written: string, names: string[], check: string, options: ts.CompilerOptions): string[] {
  // Absolute specifiers, `.js` for `.ts` and `.d.ts` (bundler resolution maps them back).
  const rel = (to: string) => to.replace(/\.d\.ts$|\.ts$/, ".js");
  const body = [
    `import type * as S from ${JSON.stringify(rel(schemas))};`,
    `import type * as W from ${JSON.stringify(rel(written))};`,
    "type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;",
    ...names.map((n) => `export const ${n}: Same<S.${n}, W.${n}> = true;`),
  ].join("\n");
  ts.sys.writeFile(check, body);
  const { rootDir: _r, outDir: _o, ...rest } = options;
  const program = ts.createProgram([check], { ...rest, noEmit: true, declaration: false, emitDeclarationOnly: false, skipLibCheck: true });
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const where = d.file && d.start !== undefined ? `${d.file.fileName}(${d.file.getLineAndCharacterOfPosition(d.start).line + 1}): ` : "";
    return where + ts.flattenDiagnosticMessageText(d.messageText, "\n");
  });
}
