/**
 * `/atr-client.js`: the browser client. Bundled from src/client/browser.ts
 * with esbuild (the options of scripts/browser-bundle.json) when the app
 * starts, so it always matches the source; dist/client/atr-client.js (from
 * `npm run build`) when esbuild is not installed.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(__dirname, '..');
const DIST_FILE = path.join(root, 'dist/client/atr-client.js');

export async function browserClientSource(): Promise<string> {
  try {
    const esbuild = await import('esbuild');
    // The same options as `npm run build` (scripts/browser-bundle.json).
    const options = JSON.parse(readFileSync(path.join(root, 'scripts/browser-bundle.json'), 'utf8')) as import('esbuild').BuildOptions;
    const result = await esbuild.build({ ...options, absWorkingDir: root, write: false, logLevel: 'silent' });
    return result.outputFiles[0]!.text;
  } catch (err) {
    if (existsSync(DIST_FILE)) return readFileSync(DIST_FILE, 'utf8');
    throw new Error(`Cannot build the browser client (${(err as Error).message}) and ${DIST_FILE} is missing: run npm run build`);
  }
}
