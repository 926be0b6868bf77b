// Builds dist/: tsc (CommonJS + declarations), an ESM wrapper per entry so
// the package loads from both `import` and `require`, and the browser client.
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
rmSync(dist, { recursive: true, force: true });
execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.json')], { stdio: 'inherit' });

const require = createRequire(import.meta.url);
for (const entry of ['index', 'client/index', 'testing']) {
  const cjs = path.join(dist, `${entry}.js`);
  if (!existsSync(cjs)) continue;
  const names = Object.keys(require(cjs)).filter((n) => n !== 'default' && n !== '__esModule');
  const base = `./${path.basename(entry)}.js`;
  writeFileSync(
    path.join(dist, `${entry}.mjs`),
    `import cjs from '${base}';\nexport const { ${names.join(', ')} } = cjs;\nexport default cjs;\n`,
  );
}

// The browser bundle's esbuild options live in one file: the example app
// bundles on the fly with the same ones (example-app/client-bundle.ts).
const browser = JSON.parse(readFileSync(path.join(root, 'scripts/browser-bundle.json'), 'utf8'));
const esbuild = await import('esbuild');
await esbuild.build({
  ...browser,
  absWorkingDir: root,
  outfile: path.join(dist, 'client/atr-client.js'),
  logLevel: 'warning',
});
