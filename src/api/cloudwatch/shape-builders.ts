/** The shape description that drives decoding and encoding, and builders for it. */
export type Shape =
  | { type: "string" }
  | { type: "double" }
  | { type: "integer" }
  | { type: "boolean" }
  | { type: "timestamp" }
  | { type: "list"; member: Shape }
  | { type: "map"; value: Shape }
  | { type: "structure"; members: Record<string, Shape>; required?: readonly string[] };

export const string: Shape = { type: "string" };
export const double: Shape = { type: "double" };
export const integer: Shape = { type: "integer" };
export const boolean: Shape = { type: "boolean" };
export const timestamp: Shape = { type: "timestamp" };
export const list = (member: Shape): Shape => ({ type: "list", member });
export const structure = (members: Record<string, Shape>, required: readonly string[] = []): Shape => ({
  type: "structure",
  members,
  required,
});

export const Dimension = structure({ Name: string, Value: string }, ["Name", "Value"]);
