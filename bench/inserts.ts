/** Model insert throughput with and without Publishable (filled in once Publishable lands). */
import type { BenchEnv } from './session';
import type { Results } from './results';

export async function runInserts(_env: BenchEnv, _rows: number, _progress: (line: string) => void): Promise<Results['inserts']> {
  throw new Error('not built yet');
}
