import { cloudWatchErrors } from "./errors.js";

/** A time series: values by timestamp in epoch milliseconds. */
export type Series = Map<number, number>;

type MathValue = { kind: "scalar"; value: number } | { kind: "series"; points: Series } | { kind: "array"; items: Series[] };

type Token =
  | { type: "number"; value: number }
  | { type: "name"; value: string }
  | { type: "string"; value: string }
  | { type: "op"; value: string };

/** The names an expression can use: other queries' series by id, and the ids of metric queries. */
export interface ExpressionScope {
  resolve(id: string): Series;
  metricIds(): string[];
}

/**
 * Evaluates a metric math expression. The subset built here has numbers,
 * query ids, `+ - * /`, unary minus, parentheses and arrays `[m1, m2]`.
 * METRICS() lists the metric queries, and METRICS("text") those whose id
 * contains the text. SUM, AVG, MIN and MAX reduce an array per time stamp,
 * or one series to a scalar. Series combine on the time stamps they share,
 * and division by zero drops the point.
 */
export function evaluateExpression(id: string, expression: string, scope: ExpressionScope): MathValue {
  const tokens = tokenize(id, expression);
  let position = 0;
  const fail = (message: string): never => {
    throw cloudWatchErrors.validation(`Error in expression '${id}': ${message}`);
  };
  const peek = (): Token | undefined => tokens[position];
  const expectOp = (op: string): void => {
    const token = tokens[position++];
    if (token?.type !== "op" || token.value !== op) fail(`expected '${op}'`);
  };

  const parseExpression = (): MathValue => {
    let left = parseTerm();
    for (let token = peek(); token?.type === "op" && (token.value === "+" || token.value === "-"); token = peek()) {
      position++;
      left = combine(left, parseTerm(), token.value, fail);
    }
    return left;
  };
  const parseTerm = (): MathValue => {
    let left = parseUnary();
    for (let token = peek(); token?.type === "op" && (token.value === "*" || token.value === "/"); token = peek()) {
      position++;
      left = combine(left, parseUnary(), token.value, fail);
    }
    return left;
  };
  const parseUnary = (): MathValue => {
    const token = peek();
    if (token?.type === "op" && token.value === "-") {
      position++;
      return combine({ kind: "scalar", value: -1 }, parseUnary(), "*", fail);
    }
    return parsePrimary();
  };
  const parsePrimary = (): MathValue => {
    const token = tokens[position++];
    if (token === undefined) return fail("unexpected end of expression");
    if (token.type === "number") return { kind: "scalar", value: token.value };
    if (token.type === "op" && token.value === "(") {
      const inner = parseExpression();
      expectOp(")");
      return inner;
    }
    if (token.type === "op" && token.value === "[") {
      const items: Series[] = [];
      do {
        const item = parseExpression();
        if (item.kind === "series") items.push(item.points);
        else if (item.kind === "array") items.push(...item.items);
        else fail("an array may contain only time series");
      } while (peek()?.type === "op" && peek()!.value === "," && position++ >= 0);
      expectOp("]");
      return { kind: "array", items };
    }
    if (token.type === "name") {
      const next = peek();
      if (next?.type === "op" && next.value === "(") {
        position++;
        return parseCall(token.value);
      }
      return { kind: "series", points: scope.resolve(token.value) };
    }
    return fail(`unexpected token ${JSON.stringify(token.value)}`);
  };
  const parseCall = (name: string): MathValue => {
    if (name === "METRICS") {
      let filter = "";
      const argument = peek();
      if (argument?.type === "string") {
        filter = argument.value;
        position++;
      }
      expectOp(")");
      return { kind: "array", items: scope.metricIds().filter((m) => m.includes(filter)).map((m) => scope.resolve(m)) };
    }
    const reducer = REDUCERS[name];
    if (reducer === undefined) return fail(`the function ${name} is not supported`);
    const argument = parseExpression();
    expectOp(")");
    if (argument.kind === "scalar") return argument;
    if (argument.kind === "series") {
      const values = [...argument.points.values()];
      return values.length === 0 ? { kind: "series", points: new Map() } : { kind: "scalar", value: reducer(values) };
    }
    const grouped = new Map<number, number[]>();
    for (const series of argument.items) {
      for (const [timestampMs, value] of series) {
        const list = grouped.get(timestampMs);
        if (list) list.push(value);
        else grouped.set(timestampMs, [value]);
      }
    }
    const points: Series = new Map();
    for (const [timestampMs, values] of grouped) points.set(timestampMs, reducer(values));
    return { kind: "series", points };
  };

  const result = parseExpression();
  if (position < tokens.length) fail(`unexpected token ${JSON.stringify(tokens[position]!.value)}`);
  return result;
}

const REDUCERS: Record<string, (values: number[]) => number> = {
  SUM: (values) => values.reduce((a, b) => a + b, 0),
  AVG: (values) => values.reduce((a, b) => a + b, 0) / values.length,
  MIN: (values) => Math.min(...values),
  MAX: (values) => Math.max(...values),
};

function apply(a: number, b: number, op: string): number | undefined {
  switch (op) {
    case "+":
      return a + b;
    case "-":
      return a - b;
    case "*":
      return a * b;
    default:
      return b === 0 ? undefined : a / b;
  }
}

function combine(left: MathValue, right: MathValue, op: string, fail: (message: string) => never): MathValue {
  if (left.kind === "array" || right.kind === "array") {
    if (left.kind === "array" && right.kind === "array") fail("arithmetic between two arrays is not supported");
    const items = left.kind === "array" ? left.items : (right as { items: Series[] }).items;
    return {
      kind: "array",
      items: items.map((series) => {
        const element: MathValue = { kind: "series", points: series };
        const combined = left.kind === "array" ? combine(element, right, op, fail) : combine(left, element, op, fail);
        return (combined as { points: Series }).points;
      }),
    };
  }
  if (left.kind === "scalar" && right.kind === "scalar") {
    const value = apply(left.value, right.value, op);
    return value === undefined ? fail("division by zero") : { kind: "scalar", value };
  }
  const points: Series = new Map();
  const timestamps = left.kind === "series" ? left.points.keys() : (right as { points: Series }).points.keys();
  for (const timestampMs of timestamps) {
    const a = left.kind === "series" ? left.points.get(timestampMs) : left.value;
    const b = right.kind === "series" ? right.points.get(timestampMs) : right.value;
    if (a === undefined || b === undefined) continue;
    const value = apply(a, b, op);
    if (value !== undefined && Number.isFinite(value)) points.set(timestampMs, value);
  }
  return { kind: "series", points };
}

function tokenize(id: string, expression: string): Token[] {
  const tokens: Token[] = [];
  const pattern = /\s*(?:(\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|"([^"]*)"|([-+*/()[\],]))/y;
  let index = 0;
  while (index < expression.length) {
    if (/^\s*$/.test(expression.slice(index))) break;
    pattern.lastIndex = index;
    const match = pattern.exec(expression);
    if (!match) {
      throw cloudWatchErrors.validation(
        `Error in expression '${id}': unrecognized text at position ${index + 1}: ${JSON.stringify(expression.slice(index, index + 10))}`,
      );
    }
    if (match[1] !== undefined) tokens.push({ type: "number", value: Number(match[1]) });
    else if (match[2] !== undefined) tokens.push({ type: "name", value: match[2] });
    else if (match[3] !== undefined) tokens.push({ type: "string", value: match[3] });
    else tokens.push({ type: "op", value: match[4]! });
    index = pattern.lastIndex;
  }
  return tokens;
}
