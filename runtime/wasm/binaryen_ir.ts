/**
 * The binaryen IR instruction kinds the metering knows, with their operands in evaluation order, and the refusal
 * for any other kind (instrument.ts fails closed on it). binaryen's JS API exposes each kind as a class of static
 * getters and setters (binaryen.If.getCondition(expr), ...), which its type declarations leave out.
 */
import binaryen from "binaryen";
import { MEMORY_COST } from "./meter.ts";

export type Ref = number;
type Getter = (e: Ref) => Ref;
type Setter = (e: Ref, v: Ref) => void;
type Wrapper = Record<string, (...args: number[]) => number>;
export const W = binaryen as unknown as Record<string, Wrapper> & {
  _BinaryenFunctionAddVar(func: Ref, type: number): number;
  Block: Wrapper & { setChildren(e: Ref, children: Ref[]): void };
};

/** An instruction the rewrite does not meter; prepareModule turns it into a deploy error. */
export class UnmeteredInstruction extends Error {
  constructor(readonly instruction: string, readonly feature?: string) {
    super(`unmetered instruction ${instruction}`);
  }
}

export interface Operands {
  /** single operand slots, evaluated after the `list` operands */
  slots: [Getter, Setter][];
  list?: { count: Getter; at: (e: Ref, i: number) => Ref; setAt: (e: Ref, i: number, v: Ref) => void };
  cost: number;
}

function slots(cls: string, ...fields: string[]): [Getter, Setter][] {
  return fields.map((f) => {
    const get = W[cls]?.[`get${f}`];
    const set = W[cls]?.[`set${f}`];
    if (!get || !set) throw new Error(`binaryen has no ${cls}.get/set${f}`);
    return [get as Getter, set as Setter];
  });
}

function list(cls: string, noun: string, plural = `${noun}s`): Operands["list"] {
  const w = W[cls];
  const count = w?.[`getNum${plural}`];
  const at = w?.[`get${noun}At`];
  const setAt = w?.[`set${noun}At`];
  if (!count || !at || !setAt) throw new Error(`binaryen has no ${cls}.getNum${plural}/get/set${noun}At`);
  return { count: count as Getter, at, setAt: setAt as (e: Ref, i: number, v: Ref) => void };
}

export const id = (name: string): number => (binaryen as unknown as Record<string, number>)[`${name}Id`];
export const OPERANDS = new Map<number, Operands>();
function kind(name: string, ops: Partial<Operands> = {}) {
  OPERANDS.set(id(name), { slots: [], cost: 1, ...ops });
}
for (const leaf of ["Nop", "LocalGet", "GlobalGet", "Const", "MemorySize", "Unreachable", "DataDrop"]) kind(leaf);
for (const leaf of ["RefNull", "RefFunc", "TableSize"]) kind(leaf);
kind("Break", { slots: slots("Break", "Value", "Condition") });
kind("Switch", { slots: slots("Switch", "Value", "Condition") });
kind("Call", { list: list("Call", "Operand") });
kind("CallIndirect", { list: list("CallIndirect", "Operand"), slots: slots("CallIndirect", "Target") });
kind("LocalSet", { slots: slots("LocalSet", "Value") });
kind("GlobalSet", { slots: slots("GlobalSet", "Value") });
kind("Load", { slots: slots("Load", "Ptr"), cost: MEMORY_COST });
kind("Store", { slots: slots("Store", "Ptr", "Value"), cost: MEMORY_COST });
kind("Unary", { slots: slots("Unary", "Value") });
kind("Binary", { slots: slots("Binary", "Left", "Right") });
kind("Select", { slots: slots("Select", "IfTrue", "IfFalse", "Condition") });
kind("Drop", { slots: slots("Drop", "Value") });
kind("Return", { slots: slots("Return", "Value") });
kind("MemoryGrow", { slots: slots("MemoryGrow", "Delta") });
kind("SIMDExtract", { slots: slots("SIMDExtract", "Vec") });
kind("SIMDReplace", { slots: slots("SIMDReplace", "Vec", "Value") });
kind("SIMDShuffle", { slots: slots("SIMDShuffle", "Left", "Right") });
kind("SIMDTernary", { slots: slots("SIMDTernary", "A", "B", "C") });
kind("SIMDShift", { slots: slots("SIMDShift", "Vec", "Shift") });
kind("SIMDLoad", { slots: slots("SIMDLoad", "Ptr"), cost: MEMORY_COST });
kind("SIMDLoadStoreLane", { slots: slots("SIMDLoadStoreLane", "Ptr", "Vec"), cost: MEMORY_COST });
kind("MemoryInit", { slots: slots("MemoryInit", "Dest", "Offset", "Size") });
kind("MemoryCopy", { slots: slots("MemoryCopy", "Dest", "Source", "Size") });
kind("MemoryFill", { slots: slots("MemoryFill", "Dest", "Value", "Size") });
kind("RefIsNull", { slots: slots("RefIsNull", "Value") });
kind("TableGet", { slots: slots("TableGet", "Index") });
kind("TableSet", { slots: slots("TableSet", "Index", "Value") });
kind("TableGrow", { slots: slots("TableGrow", "Value", "Delta") });
kind("TupleMake", { list: list("TupleMake", "Operand") });
kind("TupleExtract", { slots: slots("TupleExtract", "Tuple") });

export const LOOP = id("Loop");
export const BLOCK = id("Block");
export const IF = id("If");
export const LOAD = id("Load");
export const STORE = id("Store");
export const BRANCHES = new Set([id("Break"), id("Switch"), id("Return")]);
export const CALL = id("Call");
export const CALL_INDIRECT = id("CallIndirect");
export const MEMORY_FILL = id("MemoryFill");
export const MEMORY_COPY = id("MemoryCopy");
export const MEMORY_INIT = id("MemoryInit");
export const MEMORY_GROW = id("MemoryGrow");
export const TABLE_GROW = id("TableGrow");
export const TABLE_SET = id("TableSet");
export const DATA_DROP = id("DataDrop");

/** Families of refused instructions, for an error that names the feature rather than one opcode. */
const FEATURE_OF: [RegExp, string][] = [
  [/^Atomic/, "threads"],
  [/^(Try|TryTable|Throw|Rethrow|ThrowRef|Pop)$/, "exception handling"],
  [/^(RefI31|I31Get|CallRef|RefTest|RefCast|BrOn|Struct|Array|RefAs|RefEq)/, "wasm GC"],
  [/^String/, "wasm strings"],
];

export function refusal(e: Ref, feature?: string): UnmeteredInstruction {
  const eid = binaryen.getExpressionId(e);
  const name = Object.keys(binaryen).find((k) =>
    k.endsWith("Id") && (binaryen as unknown as Record<string, number>)[k] === eid
  );
  const kindName = name?.slice(0, -2);
  feature ??= kindName ? FEATURE_OF.find(([re]) => re.test(kindName))?.[1] : undefined;
  const text = binaryen.emitText(e).trimStart();
  const instruction = text.match(/^\(?([a-z0-9_.]+)/)?.[1] ?? kindName ?? `expression #${eid}`;
  return new UnmeteredInstruction(instruction, feature);
}
