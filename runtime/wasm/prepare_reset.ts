/**
 * Deploy-time half of instance reset (instance_reset.ts): prepareModule exports every mutable global, so that the
 * runtime can save them right after instantiation and put them back after each call, and says in the proof whether
 * the module's state is all in places a reset reaches (memory, those globals). What it cannot reach: tables the
 * guest changes (table.set, table.grow) and passive data segments it drops (data.drop: a dropped segment cannot be
 * brought back). Such a module, or one with a global JS cannot read (v128, references), gets a fresh instance per
 * call, as before. Element drops and table.fill/copy/init are refused by the metering already.
 */
import binaryen from "binaryen";
import { DATA_DROP, TABLE_GROW, TABLE_SET } from "./binaryen_ir.ts";
import { RESET_VERSION, type ResetPlan } from "./instance_reset.ts";
import { dataImage } from "./wasm_binary.ts";

const SAVED_TYPES = new Set([binaryen.i32, binaryen.i64, binaryen.f32, binaryen.f64]);

/** `kinds`: the expression ids in the module's code (instrument()). Run after the metering (its fuel is a global). */
export function planReset(mod: binaryen.Module, kinds: Set<number>): ResetPlan {
  if (kinds.has(TABLE_SET) || kinds.has(TABLE_GROW)) {
    return { version: RESET_VERSION, why: "it changes its tables (table.set, table.grow)" };
  }
  if (kinds.has(DATA_DROP)) return { version: RESET_VERSION, why: "it drops data segments (data.drop)" };
  const mutable: string[] = [];
  for (let i = 0; i < mod.getNumGlobals(); i++) {
    const info = binaryen.getGlobalInfo(mod.getGlobalByIndex(i));
    if (!info.mutable) continue;
    if (!SAVED_TYPES.has(info.type)) {
      return { version: RESET_VERSION, why: `its mutable global ${info.name} is not a number (i32, i64, f32, f64)` };
    }
    mutable.push(info.name);
  }
  const taken = new Set<string>();
  for (let i = 0; i < mod.getNumExports(); i++) taken.add(binaryen.getExportInfo(mod.getExportByIndex(i)).name);
  const globals: string[] = [];
  for (const [n, internal] of mutable.entries()) {
    let name = `__tau_global_${n}`;
    for (let k = 1; taken.has(name); k++) name = `__tau_global_${n}_${k}`;
    taken.add(name);
    mod.addGlobalExport(internal, name);
    globals.push(name);
  }
  return { version: RESET_VERSION, globals };
}

/** The plan for the module as emitted (`wasm`): with where its data segments are, if instantiation writes only them. */
export function withDataImage(plan: ResetPlan, wasm: Uint8Array): ResetPlan {
  const data = plan.globals ? dataImage(wasm) : undefined;
  return data ? { ...plan, data } : plan;
}
