/**
 * `npm start`: the example app on PORT (3000), an SQLite file and the memory
 * broker unless DATABASE_URL / REDIS_URL say otherwise.
 */
import { createExampleApp } from './app';
import { secretFromEnv } from './auth/token';
import { SEED_PASSWORD, SEED_USERS } from './seed';

function env(name: string): string | undefined {
  const value = process.env[name];
  return value === undefined || value === '' ? undefined : value;
}

async function main(): Promise<void> {
  const port = Number(env('PORT') ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new TypeError(`PORT must be a port number; got ${env('PORT')}`);
  const origins = env('ATR_EXAMPLE_ORIGIN')?.split(',').map((o) => o.trim());
  const app = await createExampleApp({
    port,
    host: env('HOST'),
    databaseUrl: env('DATABASE_URL'),
    databaseSchema: env('DATABASE_SCHEMA'),
    redisUrl: env('REDIS_URL'),
    origins,
    secret: secretFromEnv(),
  });
  const shown = `http://localhost:${(app.server.address() as { port: number }).port}`;
  console.log(`atr example app: ${shown}`);
  console.log(`  database: ${env('DATABASE_URL') ?? 'SQLite example-app/data/example.sqlite3'}; broker: ${env('REDIS_URL') ? 'Redis' : 'memory'}`);
  console.log(`  sign in as ${SEED_USERS.map((u) => u.email).join(', ')} (password "${SEED_PASSWORD}")`);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    app.close().then(() => process.exit(0), (err) => {
      console.error(err);
      process.exit(1);
    });
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err) => {
  if ((err as { code?: string }).code === 'EADDRINUSE') {
    console.error(`atr example app: port ${env('PORT') ?? 3000} is in use; stop what runs there or set PORT=another port`);
  } else {
    console.error(err);
  }
  process.exit(1);
});
