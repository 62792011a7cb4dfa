/** A wasm module from WebAssembly text, for tests that need a guest doing one precise thing. */
import binaryen from "binaryen";

/** Any feature may be used; newer encodings V8 does not read by default (compact imports) are left off. */
export function wat(text: string): Uint8Array {
  const mod = binaryen.parseText(text);
  try {
    const compactImports = (binaryen.Features as unknown as Record<string, number>).CompactImports;
    mod.setFeatures(binaryen.Features.All & ~compactImports);
    return mod.emitBinary();
  } finally {
    mod.dispose();
  }
}
