// Turns config text into a typed Config, or into every problem found, each pointing at the line and column an
// admin's editor shows. Comments and trailing commas are allowed because the file is written by hand.
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { findNodeAtLocation, getNodeValue, parseTree, printParseErrorCode, type Node, type ParseError } from "jsonc-parser";
import { z } from "zod";
import { ConfigSchema, type Config } from "./schema.js";

export type LoadResult = { ok: true; config: Config } | { ok: false; errors: string[] };
export type ReadResult = { ok: true; text: string } | { ok: false; errors: string[] };

type Path = readonly PropertyKey[];

const SYNTAX_MESSAGES: Record<ReturnType<typeof printParseErrorCode>, string> = {
  InvalidSymbol: "unexpected character",
  InvalidNumberFormat: "invalid number",
  PropertyNameExpected: "expected a property name in double quotes",
  ValueExpected: "expected a value",
  ColonExpected: 'expected ":" after the property name',
  CommaExpected: 'expected "," between items',
  CloseBraceExpected: 'expected "}"',
  CloseBracketExpected: 'expected "]"',
  EndOfFileExpected: "unexpected text after the end of the document",
  InvalidCommentToken: "invalid comment",
  UnexpectedEndOfComment: "comment is not closed (missing */)",
  UnexpectedEndOfString: "string is not closed (missing \")",
  UnexpectedEndOfNumber: "number is cut off",
  InvalidUnicode: "invalid \\u escape",
  InvalidEscapeCharacter: "invalid escape character",
  InvalidCharacter: "invalid character in string (control characters must be escaped)",
  "<unknown ParseErrorCode>": "syntax error",
};

const AFTERMATH = new Set<string>(["CloseBraceExpected", "CloseBracketExpected", "EndOfFileExpected"]);

const READ_ERRORS: Record<string, string> = {
  ENOENT: "no such file",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EISDIR: "is a directory",
  ENOTDIR: "a parent of the path is not a directory",
  ELOOP: "too many symbolic links",
};

// Maps character offsets to the 1-based line:col an editor shows.
function positionFinder(text: string): (offset: number) => string {
  const lineStarts = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === "\n") lineStarts.push(i + 1);
  return (offset) => {
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return `${lo + 1}:${offset - lineStarts[lo]! + 1}`;
  };
}

function formatPath(path: Path): string {
  if (path.length === 0) return "(root)";
  return path.map((k) => (typeof k === "string" && !/^[\w$-]+$/.test(k) ? JSON.stringify(k) : String(k))).join(".");
}

function editDistance(a: string, b: string): number {
  // Optimal string alignment: a swapped pair of letters ("lsiten") counts as one edit, like a typo does.
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  while (s instanceof z.ZodDefault || s instanceof z.ZodPrefault || s instanceof z.ZodOptional || s instanceof z.ZodNullable) {
    s = s.unwrap() as z.ZodType;
  }
  return s;
}

// The union member the value selects by its discriminator, so nested keys are looked up in the right shape.
function selectOption(schema: z.ZodType, value: unknown): z.ZodType {
  if (!(schema instanceof z.ZodDiscriminatedUnion)) return schema;
  const tag = (value as Record<string, unknown> | undefined)?.[schema.def.discriminator];
  const option = (schema.options as z.ZodType[]).find((o) => {
    const lit = o instanceof z.ZodObject ? o.shape[schema.def.discriminator] : undefined;
    return lit instanceof z.ZodLiteral && lit.values.has(tag as never);
  });
  return option ?? schema;
}

// The keys the schema accepts for the object at `path`, used to suggest a correction for a typo.
function knownKeysAt(path: Path, data: unknown): string[] {
  let schema = unwrap(ConfigSchema);
  let value = data;
  for (const key of path) {
    schema = selectOption(schema, value);
    let child: z.ZodType | undefined;
    if (schema instanceof z.ZodObject) child = (schema.shape as Record<string, z.ZodType>)[String(key)];
    else if (schema instanceof z.ZodArray) child = schema.element as z.ZodType;
    else if (schema instanceof z.ZodRecord) child = schema.valueType as z.ZodType;
    if (!child) return [];
    schema = unwrap(child);
    value = (value as Record<PropertyKey, unknown> | undefined)?.[key];
  }
  schema = selectOption(schema, value);
  return schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
}

function suggest(unknown: string, known: string[]): string | undefined {
  let best: { key: string; dist: number } | undefined;
  for (const key of known) {
    const dist = editDistance(unknown, key);
    if (dist <= 2 && (!best || dist < best.dist)) best = { key, dist };
  }
  return best?.key;
}

function jsonPath(path: Path): (string | number)[] {
  return path.map((k) => (typeof k === "number" ? k : String(k)));
}

// The node the issue is about, or its nearest ancestor present in the file (for a missing key).
function nodeFor(tree: Node, path: Path): { node: Node; exact: boolean } {
  const p = jsonPath(path);
  for (let n = p.length; n >= 0; n--) {
    const node = n === 0 ? tree : findNodeAtLocation(tree, p.slice(0, n));
    if (node) return { node, exact: n === p.length };
  }
  return { node: tree, exact: false };
}

function propertyNode(object: Node, key: string): Node | undefined {
  return object.children?.find((prop) => prop.children?.[0]?.value === key);
}

function oneOf(values: readonly unknown[]): string {
  return `must be one of ${values.map((v) => JSON.stringify(v)).join(", ")}`;
}

function rangeMessage(issue: z.core.$ZodIssueTooSmall | z.core.$ZodIssueTooBig): string {
  const small = issue.code === "too_small";
  const limit = small ? issue.minimum : issue.maximum;
  const bound = small ? (issue.inclusive ? "at least" : "greater than") : issue.inclusive ? "at most" : "less than";
  switch (issue.origin) {
    case "array":
    case "set":
      return `must have ${bound} ${limit} item${limit === 1 ? "" : "s"}`;
    case "string":
      return small && issue.inclusive && limit === 1 ? "must not be empty" : `must be ${bound} ${limit} characters long`;
    default:
      return `must be ${bound} ${limit}`;
  }
}

type Problem = { offset: number; line: string };

function describeIssue(issue: z.core.$ZodIssue, tree: Node, data: unknown, at: (offset: number) => string): Problem[] {
  const problem = (path: Path, node: Node, message: string): Problem => ({
    offset: node.offset,
    line: `${formatPath(path)}: ${message} (${at(node.offset)})`,
  });
  const { node, exact } = nodeFor(tree, issue.path);

  switch (issue.code) {
    case "unrecognized_keys":
      return issue.keys.map((key) => {
        const near = suggest(key, knownKeysAt(issue.path, data));
        const where = (exact && propertyNode(node, key)) || node;
        return problem([...issue.path, key], where, near ? `unknown key (did you mean "${near}"?)` : "unknown key");
      });
    case "invalid_key":
      // Point at the key itself, not at its value.
      return [problem(issue.path, (exact && node.parent) || node, issue.issues.map((i) => i.message).join("; "))];
    case "invalid_union": {
      const options = (issue as { options?: unknown[] }).options;
      if (!options) return [problem(issue.path, node, issue.message)];
      return [problem(issue.path, node, exact ? oneOf(options) : `missing, ${oneOf(options)}`)];
    }
    case "invalid_value":
      return [problem(issue.path, node, oneOf(issue.values))];
    case "invalid_type": {
      const expected = issue.expected === "int" ? "a whole number" : issue.expected;
      if (!exact) return [problem(issue.path, node, `missing (expected ${expected})`)];
      return [problem(issue.path, node, node.type === "number" && issue.expected === "int" ? "must be a whole number" : `expected ${expected}, got ${node.type}`)];
    }
    case "too_small":
    case "too_big":
      return [problem(issue.path, node, rangeMessage(issue))];
    default:
      return [problem(issue.path, node, issue.message)];
  }
}

// JSON lets a key appear twice and silently keeps the last; in a hand-edited file that hides a mistake.
function duplicateKeys(tree: Node, at: (offset: number) => string, path: Path = []): Problem[] {
  const problems: Problem[] = [];
  const first = new Map<string, Node>();
  tree.children?.forEach((child, index) => {
    if (tree.type === "object") {
      const keyNode = child.children?.[0];
      const valueNode = child.children?.[1];
      if (!keyNode || !valueNode) return;
      const key = String(keyNode.value);
      const earlier = first.get(key);
      if (earlier) {
        problems.push({ offset: child.offset, line: `${formatPath([...path, key])}: duplicate key, first defined at ${at(earlier.offset)} (${at(child.offset)})` });
      } else first.set(key, child);
      problems.push(...duplicateKeys(valueNode, at, [...path, key]));
    } else if (tree.type === "array") {
      problems.push(...duplicateKeys(child, at, [...path, index]));
    }
  });
  return problems;
}

export function parseConfigText(text: string, source: string, baseDir: string): LoadResult {
  // Editors on some systems save a byte-order mark; it is not part of the JSON.
  const body = text.startsWith("\uFEFF") ? text.slice(1) : text;
  const at = positionFinder(body);
  if (body.trim() === "") return { ok: false, errors: [`${source}: the file is empty (write {} to use every default)`] };

  const syntax: ParseError[] = [];
  const tree = parseTree(body, syntax, { allowTrailingComma: true, disallowComments: false });
  if (syntax.length > 0 || !tree) {
    // The parser recovers and goes on, so one mistake often yields a cascade: more errors on the same line, and
    // brackets that no longer match further down. Those would send the admin to places that are fine.
    const lines = new Map<string, string>();
    for (const e of syntax) {
      const code = printParseErrorCode(e.error);
      const pos = at(e.offset);
      const line = pos.slice(0, pos.indexOf(":"));
      if (lines.has(line) || (lines.size > 0 && AFTERMATH.has(code))) continue;
      lines.set(line, `${source}: ${SYNTAX_MESSAGES[code]} (${pos})`);
    }
    return { ok: false, errors: [...lines.values()] };
  }

  const data: unknown = getNodeValue(tree);
  const result = ConfigSchema.safeParse(data);
  const problems = duplicateKeys(tree, at);
  if (!result.success) for (const issue of result.error.issues) problems.push(...describeIssue(issue, tree, data, at));
  if (problems.length > 0 || !result.success) {
    problems.sort((a, b) => a.offset - b.offset);
    return { ok: false, errors: problems.map((p) => p.line) };
  }
  return { ok: true, config: { ...result.data, state_dir: resolve(baseDir, result.data.state_dir) } };
}

export function readConfigText(path: string): ReadResult {
  try {
    return { ok: true, text: readFileSync(path, "utf8") };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const what = code ? `${code} ${READ_ERRORS[code] ?? (err as Error).message}` : String(err);
    return { ok: false, errors: [`${path}: cannot read: ${what}`] };
  }
}

export function loadConfigFile(path: string): LoadResult {
  const read = readConfigText(path);
  if (!read.ok) return read;
  return parseConfigText(read.text, path, dirname(resolve(path)));
}

// The config `slicehub start` runs without --config: dev login on loopback, local spawner, state under cwd.
// Run as root, the local spawner starts servers as root too, and jupyterhub-singleuser refuses to run as root
// unless given --allow-root, so it is added then; otherwise the default would fail at the first spawn.
export function embeddedDefaultConfig(cwd: string): Config {
  const config = ConfigSchema.parse({});
  const spawner = process.getuid?.() === 0 ? { ...config.spawner, args: [...config.spawner.args, "--allow-root"] } : config.spawner;
  return { ...config, state_dir: resolve(cwd, config.state_dir), spawner };
}

// What `slicehub schema` prints, for editors to validate and complete the config file. "input" describes what
// may be written (defaults make keys optional), not the parsed result.
export function configJsonSchema(): object {
  return z.toJSONSchema(ConfigSchema, { io: "input" });
}
