// Every entry point in package.json's `exports` must hand out at runtime, to
// `import` and to `require` alike, exactly the values its declarations
// promise: a name that type-checks but is missing at runtime is the bug this
// guards against (it happened when the ESM entries were written by hand).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';
import { describe, expect, test } from 'vitest';

const root = path.resolve(__dirname, '../..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  name: string;
  exports: Record<string, string | { types: string; default: string }>;
};
const entries = Object.entries(pkg.exports).flatMap(([subpath, target]) =>
  typeof target === 'string' ? [] : [{ specifier: path.posix.join(pkg.name, subpath), types: path.join(root, target.types) }],
);

// Names the declarations export as values (classes, functions, constants);
// type-only exports have nothing at runtime.
function declaredValues(file: string): string[] {
  const program = ts.createProgram([file], { module: ts.ModuleKind.Node16, moduleResolution: ts.ModuleResolutionKind.Node16, noEmit: true, skipLibCheck: true });
  const checker = program.getTypeChecker();
  const module = checker.getSymbolAtLocation(program.getSourceFile(file)!)!;
  return checker
    .getExportsOfModule(module)
    .filter((s) => ((s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s).flags & ts.SymbolFlags.Value) !== 0)
    .map((s) => s.name)
    .sort();
}

// Loaded in a plain Node process (by the package's own name, through its
// `exports`), not through vitest's module loader, which would not show what
// Node's ESM loader makes of the CommonJS build.
const runtime = JSON.parse(
  execFileSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `
      import { createRequire } from 'node:module';
      const require = createRequire(process.cwd() + '/');
      const out = {};
      for (const specifier of ${JSON.stringify(entries.map((e) => e.specifier))}) {
        const esm = await import(specifier);
        const cjs = require(specifier);
        out[specifier] = {
          esm: Object.keys(esm).sort(),
          cjs: Object.keys(cjs).sort(),
          defaultIsCjs: esm.default === cjs,
          sameValues: Object.keys(cjs).every((k) => esm[k] === cjs[k]),
        };
      }
      console.log(JSON.stringify(out));
      `,
    ],
    { cwd: root, encoding: 'utf8' },
  ),
) as Record<string, { esm: string[]; cjs: string[]; defaultIsCjs: boolean; sameValues: boolean }>;

describe.each(entries)('$specifier', ({ specifier, types }) => {
  const declared = declaredValues(types);
  const { esm, cjs, defaultIsCjs, sameValues } = runtime[specifier]!;

  test('require() gives exactly the declared values', () => {
    expect(cjs.filter((k) => k !== '__esModule')).toEqual(declared);
  });

  // `default` and `__esModule` are how Node's loader presents any CommonJS
  // module to `import`; both are real at runtime.
  test('import gives exactly the declared values, plus the CommonJS default', () => {
    expect(esm.filter((k) => k !== 'default' && k !== '__esModule')).toEqual(declared);
    expect(defaultIsCjs).toBe(true);
  });

  test('import and require() share every object (one copy of each class)', () => {
    expect(sameValues).toBe(true);
  });
});
