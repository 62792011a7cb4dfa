/**
 * The functions prepareModule adds to every module (see instrument.ts): refilling fuel and calling the host's clock
 * check, spending fuel for bulk operations by their size, and memory.fill / memory.copy in metered chunks.
 */
import binaryen from "binaryen";
import type { Ref } from "./binaryen_ir.ts";
import { BYTE_SHIFT, CHUNK_BYTES, FUEL_PER_TICK } from "./meter.ts";

export interface Helpers {
  fuel: string;
  refill: string;
  charge: string;
  bytes: string;
  entries: string;
  pages: string;
  fill: string;
  copy: string;
}

export function addHelpers(mod: binaryen.Module, h: Helpers, tick: string) {
  const { i32 } = binaryen;
  const none = binaryen.none;
  const m = mod;
  const get = (i: number) => m.local.get(i, i32);
  const fuel = () => m.global.get(h.fuel, i32);
  const charge = (cost: Ref) => m.call(h.charge, [cost], none);
  // Inline rather than a call to `charge`: small fills and copies are frequent (AssemblyScript's allocator and
  // strings), and the extra call measured ~1.5x on an allocation-heavy loop.
  const spendBytes = (n: Ref) =>
    m.block(null, [
      m.global.set(h.fuel, m.i32.sub(fuel(), m.i32.add(m.i32.shr_u(n, m.i32.const(BYTE_SHIFT)), m.i32.const(1)))),
      m.if(m.i32.lt_s(fuel(), m.i32.const(0)), m.call(h.refill, [], none)),
    ]);
  const minU = (a: () => Ref, limit: number) => m.select(a(), m.i32.const(limit), m.i32.lt_u(a(), m.i32.const(limit)));

  m.addFunction(
    h.refill,
    none,
    none,
    [],
    m.block(null, [m.global.set(h.fuel, m.i32.const(FUEL_PER_TICK)), m.call(tick, [], none)]),
  );
  m.addFunction(
    h.charge,
    binaryen.createType([i32]),
    none,
    [],
    m.block(null, [
      m.global.set(h.fuel, m.i32.sub(fuel(), get(0))),
      m.if(m.i32.lt_s(fuel(), m.i32.const(0)), m.call(h.refill, [], none)),
    ]),
  );
  // (n) -> n, spending fuel for n bytes / table entries / pages first. Sizes are clamped before scaling so the
  // cost cannot overflow; anything past the clamp fails on its own (memory and tables have small maximums).
  m.addFunction(h.bytes, binaryen.createType([i32]), i32, [], m.block(null, [spendBytes(get(0)), get(0)], i32));
  m.addFunction(
    h.entries,
    binaryen.createType([i32]),
    i32,
    [],
    m.block(
      null,
      [charge(m.i32.add(m.i32.shl(minU(() => get(0), 1 << 20), m.i32.const(6)), m.i32.const(64))), get(0)],
      i32,
    ),
  );
  m.addFunction(
    h.pages,
    binaryen.createType([i32]),
    i32,
    [],
    m.block(
      null,
      [charge(m.i32.add(m.i32.shl(minU(() => get(0), 65536), m.i32.const(8)), m.i32.const(4096))), get(0)],
      i32,
    ),
  );

  if (!m.hasMemory()) return; // no memory, no memory.fill or memory.copy to stand in for
  const memEnd = () => m.i64.shl(m.i64.extend_u(m.memory.size()), (m.i64.const as unknown as (v: bigint) => Ref)(16n));
  const outOfBounds = (ptr: number, len: number) =>
    m.i64.gt_u(m.i64.add(m.i64.extend_u(get(ptr)), m.i64.extend_u(get(len))), memEnd());
  const small = (len: number) => m.i32.le_u(get(len), m.i32.const(CHUNK_BYTES));
  const chunkCost = CHUNK_BYTES >> BYTE_SHIFT;
  const advance = (local: number, by: Ref) => m.local.set(local, m.i32.add(get(local), by));
  const shrink = (local: number) => m.local.set(local, m.i32.sub(get(local), m.i32.const(CHUNK_BYTES)));
  const C = () => m.i32.const(CHUNK_BYTES);

  // fill(d, v, n): small or out-of-bounds operations run as one instruction (an out-of-bounds one traps before
  // writing, as the spec requires); big ones run chunk by chunk, spending fuel before each chunk.
  m.addFunction(
    h.fill,
    binaryen.createType([i32, i32, i32]),
    none,
    [],
    m.block(null, [
      m.if(
        m.if(small(2), m.i32.const(1), outOfBounds(0, 2)),
        m.block(null, [spendBytes(get(2)), m.memory.fill(get(0), get(1), get(2)), m.return()]),
      ),
      m.loop(
        "chunk",
        m.block(null, [
          charge(m.i32.const(chunkCost)),
          m.memory.fill(get(0), get(1), C()),
          advance(0, C()),
          shrink(2),
          m.br("chunk", m.i32.gt_u(get(2), C())),
        ]),
      ),
      spendBytes(get(2)),
      m.memory.fill(get(0), get(1), get(2)),
    ]),
  );
  // copy(d, s, n): like fill; chunks run upwards when d <= s and downwards otherwise, so overlapping ranges copy
  // as memmove does (a chunk never overwrites source bytes a later chunk still reads).
  m.addFunction(
    h.copy,
    binaryen.createType([i32, i32, i32]),
    none,
    [],
    m.block(null, [
      m.if(
        m.if(small(2), m.i32.const(1), m.i32.or(outOfBounds(0, 2), outOfBounds(1, 2))),
        m.block(null, [spendBytes(get(2)), m.memory.copy(get(0), get(1), get(2)), m.return()]),
      ),
      m.if(
        m.i32.le_u(get(0), get(1)),
        m.loop(
          "up",
          m.block(null, [
            charge(m.i32.const(chunkCost)),
            m.memory.copy(get(0), get(1), C()),
            advance(0, C()),
            advance(1, C()),
            shrink(2),
            m.br("up", m.i32.gt_u(get(2), C())),
          ]),
        ),
        m.block(null, [
          m.loop(
            "down",
            m.block(null, [
              charge(m.i32.const(chunkCost)),
              shrink(2),
              m.memory.copy(m.i32.add(get(0), get(2)), m.i32.add(get(1), get(2)), C()),
              m.br("down", m.i32.gt_u(get(2), C())),
            ]),
          ),
        ]),
      ),
      spendBytes(get(2)),
      m.memory.copy(get(0), get(1), get(2)),
    ]),
  );
}
