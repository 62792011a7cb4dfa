/**
 * The metering rewrite (binaryen IR), run by prepareModule at deploy time. After it, a guest cannot run long without
 * reaching a clock check:
 *
 * - Fuel by code size. Code is charged, before it runs, the summed cost of its instructions (a memory access costs
 *   MEMORY_COST, anything else 1) at charge points: function and loop bodies on entry, big if arms when taken, and
 *   segments of blocks (see FunctionMeter). Code without loops only runs forward, so each instruction runs at most
 *   once per charge. Measured on an allocation-heavy AssemblyScript loop this over-counts ~2x, which only makes
 *   clock checks more frequent.
 * - After calls. A frame waiting on a call has already paid for what follows the call; on a deep stack (~18,500
 *   frames fit) that work would all run on the way back up with no check in between, so more than SPLIT_COST of it
 *   is charged again when the call returns.
 * - Bulk memory. memory.fill and memory.copy become calls to helpers that work in CHUNK_BYTES chunks and spend fuel
 *   per chunk; memory.init, memory.grow and table.grow spend fuel by their size operand first. Out-of-bounds
 *   operations still trap before writing anything, as the spec says.
 * - Fail closed. Every instruction kind is listed with its operands (binaryen_ir.ts); anything else (atomics, GC,
 *   exceptions, and table.fill/copy/init, whose operands binaryen's JS API cannot reach) is refused, so nothing goes
 *   unmetered because this file did not know it.
 *
 * Fuel lives in a mutable global; when it drops below zero the guest refills it and calls `tau_meter.tick`, where
 * the host checks the clock (meter.ts). Two passes over each function: the first measures (bottom-up), the second
 * rewrites.
 */
import binaryen from "binaryen";
import {
  BLOCK,
  BRANCHES,
  CALL,
  CALL_INDIRECT,
  IF,
  LOAD,
  LOOP,
  MEMORY_COPY,
  MEMORY_FILL,
  MEMORY_GROW,
  MEMORY_INIT,
  OPERANDS,
  type Operands,
  type Ref,
  refusal,
  STORE,
  TABLE_GROW,
  W,
} from "./binaryen_ir.ts";
import { FUEL_PER_TICK, METER_MODULE, METER_TICK } from "./meter.ts";
import { addHelpers, type Helpers } from "./metering_helpers.ts";

export { UnmeteredInstruction } from "./binaryen_ir.ts";

/** A block is charged in segments of at most this cost (a single child may be bigger). */
const SEGMENT_COST = 1024;
/** An if arm costing more than this is charged when taken (a charge unit of its own). */
const ARM_UNIT_COST = 128;
/** A branch followed (in its block) by more than this much starts a new segment. */
const BRANCH_CUT_COST = 128;
/**
 * A call (or loop) followed by more than this much of its statement charges that rest again, and a block child that
 * yields followed by more than this much starts a new segment. 32 cost ~20% on an allocation-heavy AssemblyScript
 * loop, 128 nothing measurable; the stack then holds at most a few times 128 paid-for units per frame.
 */
const SPLIT_COST = 128;

/**
 * Adds the fuel counter and helpers, then meters every defined function. Throws UnmeteredInstruction. Returns the
 * expression ids found in the module's own code (before the rewrite), which prepareModule's other passes read.
 */
export function instrument(mod: binaryen.Module): Set<number> {
  const taken = (name: string) => mod.getFunction(name) !== 0 || mod.getGlobal(name) !== 0;
  const unique = (base: string) => {
    let name = base;
    for (let i = 1; taken(name); i++) name = `${base}_${i}`;
    return name;
  };
  const functions: Ref[] = [];
  for (let i = 0; i < mod.getNumFunctions(); i++) {
    const f = mod.getFunctionByIndex(i);
    if (!binaryen.getFunctionInfo(f).module) functions.push(f);
  }
  const h: Helpers = {
    fuel: unique("__tau_fuel"),
    refill: unique("__tau_refill"),
    charge: unique("__tau_charge"),
    bytes: unique("__tau_spend_bytes"),
    entries: unique("__tau_spend_entries"),
    pages: unique("__tau_spend_pages"),
    fill: unique("__tau_memory_fill"),
    copy: unique("__tau_memory_copy"),
  };
  const tick = unique("__tau_meter_tick");
  mod.addGlobal(h.fuel, binaryen.i32, true, mod.i32.const(FUEL_PER_TICK));
  mod.addFunctionImport(tick, METER_MODULE, METER_TICK, binaryen.none, binaryen.none);
  const kinds = new Set<number>();
  for (const f of functions) new FunctionMeter(mod, f, h, kinds).run();
  addHelpers(mod, h, tick);
  return kinds;
}

/** What the first pass learns about an expression. */
interface Measure {
  /** cost charged by whatever charges this expression: itself and its operands, minus parts charged on their own */
  own: number;
  /** whether control can leave this frame's straight-line code inside it (a call that returns, a loop) */
  yields: boolean;
  /** whether it can branch (br, br_if, br_table, return): what follows it in its block may be skipped */
  branches: boolean;
  /** blocks only: where segments after the first start, and what each costs */
  segments?: { start: number; cost: number }[];
  /** ifs only: which arms are charge units of their own */
  arms?: boolean[];
}

/**
 * Meters one function. Charge points: the function body and every loop body on entry; every if arm costing more
 * than ARM_UNIT_COST when taken; and inside a block, before each *segment* of its children. A block's children are
 * cut into segments of at most SEGMENT_COST, and also after a child that yields (contains a call or loop) when more
 * than SPLIT_COST follows before the next yield: code after a call is paid for when the call has returned, so a deep
 * stack never holds much paid-for-but-unrun code while other frames run. Inside one statement (a block child) a
 * yield followed by more than SPLIT_COST of the statement charges that rest again.
 *
 * Sound because control inside a function only moves forward, except to a loop's head (a charge point): a block is
 * entered at its start and left by a branch to its end, so each segment's charge runs before any of its children.
 */
class FunctionMeter {
  private readonly measured = new Map<Ref, Measure>();
  /** the statement being walked in the rewrite pass: its cost and how much of it has been passed */
  private stmt = { total: 0, pos: 0 };
  private readonly temps = new Map<number, number>();

  constructor(
    private readonly mod: binaryen.Module,
    private readonly func: Ref,
    private readonly h: Helpers,
    private readonly kinds: Set<number>,
  ) {}

  run(): void {
    const body = binaryen.getFunctionInfo(this.func).body;
    this.measure(body);
    W.Function.setBody(this.func, this.region(body));
  }

  // ---- first pass: costs, segments, yields (bottom-up) ----

  private measure(e: Ref): Measure {
    const eid = binaryen.getExpressionId(e);
    this.kinds.add(eid);
    let m: Measure;
    if (eid === LOOP) {
      m = { own: 1, yields: true, branches: this.measure(W.Loop.getBody(e)).branches };
    } else if (eid === BLOCK) {
      m = this.measureBlock(e);
    } else if (eid === IF) {
      // Arms bigger than ARM_UNIT_COST are charged when taken: charging both arms with the if over-counts
      // branchy code.
      const cond = this.measure(W.If.getCondition(e));
      let own = 1 + cond.own;
      let { yields, branches } = cond;
      const arms: boolean[] = [];
      for (const arm of [W.If.getIfTrue(e), W.If.getIfFalse(e)]) {
        const a = arm ? this.measure(arm) : { own: 0, yields: false, branches: false };
        const separate = a.own > ARM_UNIT_COST;
        arms.push(separate);
        if (!separate) own += a.own;
        yields ||= a.yields;
        branches ||= a.branches;
      }
      m = { own, yields, branches, arms };
    } else {
      const ops = OPERANDS.get(eid);
      if (!ops) throw refusal(e);
      // Atomic loads and stores are plain Load/Store nodes in binaryen with a flag.
      if ((eid === LOAD && W.Load.isAtomic(e)) || (eid === STORE && W.Store.isAtomic(e))) throw refusal(e, "threads");
      let own = ops.cost;
      let yields = (eid === CALL && !W.Call.isReturn(e)) || (eid === CALL_INDIRECT && !W.CallIndirect.isReturn(e));
      let branches = BRANCHES.has(eid);
      this.eachOperand(e, ops, (child) => {
        const c = this.measure(child);
        own += c.own;
        yields ||= c.yields;
        branches ||= c.branches;
        return child;
      });
      m = { own, yields, branches };
    }
    this.measured.set(e, m);
    return m;
  }

  private measureBlock(e: Ref): Measure {
    const n = W.Block.getNumChildren(e);
    const children: Measure[] = [];
    for (let i = 0; i < n; i++) children.push(this.measure(W.Block.getChildAt(e, i)));
    // untilStop[i]: cost of children i.. up to and including the next one that yields or branches
    const stops = (c: Measure) => c.yields || c.branches;
    const untilStop = new Array<number>(n + 1).fill(0);
    for (let i = n - 1; i >= 0; i--) untilStop[i] = children[i].own + (stops(children[i]) ? 0 : untilStop[i + 1]);
    const segments: { start: number; cost: number }[] = [];
    let first = -1;
    let acc = 0;
    for (let i = 0; i < n; i++) {
      const c = children[i];
      // Cut when the segment is full, and after a yield (see above) or a branch (what follows may be skipped, so
      // charging it with what precedes over-counts early exits) when enough follows.
      const cut = acc > 0 &&
        (acc + c.own > SEGMENT_COST || (children[i - 1].yields && untilStop[i] > SPLIT_COST) ||
          (children[i - 1].branches && untilStop[i] > BRANCH_CUT_COST));
      if (cut) {
        if (first < 0) first = acc;
        else segments[segments.length - 1].cost = acc;
        segments.push({ start: i, cost: 0 });
        acc = 0;
      }
      acc += c.own;
    }
    if (first < 0) first = acc;
    else segments[segments.length - 1].cost = acc;
    return {
      own: 1 + first,
      yields: children.some((c) => c.yields),
      branches: children.some((c) => c.branches),
      segments,
    };
  }

  private eachOperand(e: Ref, ops: Operands, f: (child: Ref) => Ref) {
    if (ops.list) {
      const l = ops.list;
      const n = l.count(e);
      for (let i = 0; i < n; i++) {
        const child = l.at(e, i);
        if (!child) continue;
        const out = f(child);
        if (out !== child) l.setAt(e, i, out);
      }
    }
    for (const [get, set] of ops.slots) {
      const child = get(e);
      if (!child) continue;
      const out = f(child);
      if (out !== child) set(e, out);
    }
  }

  // ---- second pass: rewrite ----

  /** A function or loop body, or a big if arm: charged on entry. */
  private region(root: Ref): Ref {
    const cost = this.measured.get(root)!.own;
    const out = this.statement(root);
    return this.mod.block(null, [this.spend(cost), out], binaryen.getExpressionType(out));
  }

  private statement(e: Ref): Ref {
    const outer = this.stmt;
    this.stmt = { total: this.measured.get(e)!.own, pos: 0 };
    const out = this.visit(e);
    this.stmt = outer;
    return out;
  }

  private visit(e: Ref): Ref {
    const eid = binaryen.getExpressionId(e);
    const m = this.measured.get(e)!;
    if (eid === LOOP) {
      W.Loop.setBody(e, this.region(W.Loop.getBody(e)));
      this.stmt.pos += 1;
      return this.afterYield(e);
    }
    if (eid === BLOCK) {
      const n = W.Block.getNumChildren(e);
      const children: Ref[] = [];
      let next = 0;
      for (let i = 0; i < n; i++) {
        const seg = m.segments![next];
        if (seg && seg.start === i) {
          children.push(this.spend(seg.cost));
          next++;
        }
        children.push(this.statement(W.Block.getChildAt(e, i)));
      }
      W.Block.setChildren(e, children);
      this.stmt.pos += m.own;
      return m.yields ? this.afterYield(e) : e;
    }
    if (eid === IF) {
      const cond = W.If.getCondition(e);
      const condOut = this.visit(cond);
      if (condOut !== cond) W.If.setCondition(e, condOut);
      const [trueArm, falseArm] = [W.If.getIfTrue(e), W.If.getIfFalse(e)];
      if (trueArm) W.If.setIfTrue(e, m.arms![0] ? this.region(trueArm) : this.visit(trueArm));
      if (falseArm) W.If.setIfFalse(e, m.arms![1] ? this.region(falseArm) : this.visit(falseArm));
      this.stmt.pos += 1;
      return m.yields ? this.afterYield(e) : e;
    }
    const ops = OPERANDS.get(eid)!;
    this.eachOperand(e, ops, (child) => this.visit(child));
    this.stmt.pos += ops.cost;
    switch (eid) {
      case CALL:
        return W.Call.isReturn(e) ? e : this.afterYield(e);
      case CALL_INDIRECT:
        return W.CallIndirect.isReturn(e) ? e : this.afterYield(e);
      case MEMORY_FILL:
        return this.mod.call(
          this.h.fill,
          [W.MemoryFill.getDest(e), W.MemoryFill.getValue(e), W.MemoryFill.getSize(e)],
          binaryen.none,
        );
      case MEMORY_COPY:
        return this.mod.call(
          this.h.copy,
          [W.MemoryCopy.getDest(e), W.MemoryCopy.getSource(e), W.MemoryCopy.getSize(e)],
          binaryen.none,
        );
      case MEMORY_INIT:
        W.MemoryInit.setSize(e, this.mod.call(this.h.bytes, [W.MemoryInit.getSize(e)], binaryen.i32));
        return e;
      case MEMORY_GROW:
        W.MemoryGrow.setDelta(e, this.mod.call(this.h.pages, [W.MemoryGrow.getDelta(e)], binaryen.i32));
        return e;
      case TABLE_GROW:
        W.TableGrow.setDelta(e, this.mod.call(this.h.entries, [W.TableGrow.getDelta(e)], binaryen.i32));
        return e;
    }
    return e;
  }

  /** After a yield, the rest of the current statement is charged again when it is over SPLIT_COST. */
  private afterYield(e: Ref): Ref {
    const rest = this.stmt.total - this.stmt.pos;
    if (rest <= SPLIT_COST) return e;
    const type = binaryen.getExpressionType(e);
    const m = this.mod;
    if (type === binaryen.none) return m.block(null, [e, this.spend(rest)], binaryen.none);
    if (type === binaryen.unreachable) return e;
    const local = this.temp(type);
    return m.block(null, [m.local.set(local, e), this.spend(rest), m.local.get(local, type)], type);
  }

  private temp(type: number): number {
    let index = this.temps.get(type);
    if (index === undefined) {
      index = W._BinaryenFunctionAddVar(this.func, type);
      this.temps.set(type, index);
    }
    return index;
  }

  /** fuel -= cost; if (fuel < 0) refill() — inline: a call per charge would cost more than the check. */
  private spend(cost: number): Ref {
    const m = this.mod;
    const fuel = () => m.global.get(this.h.fuel, binaryen.i32);
    return m.block(null, [
      m.global.set(this.h.fuel, m.i32.sub(fuel(), m.i32.const(cost))),
      m.if(m.i32.lt_s(fuel(), m.i32.const(0)), m.call(this.h.refill, [], binaryen.none)),
    ], binaryen.none);
  }
}
