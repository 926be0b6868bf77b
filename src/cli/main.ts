/**
 * `atr-server`: the standalone websocket server as a command. `run()` is what
 * the bin shim calls; it returns the exit code for usage errors and runs until
 * a signal otherwise.
 */
import { createAtr } from '../atr';
import type { Atr } from '../atr';
import type { AtrOptions } from '../config';
import type { Logger } from '../logger';
import { createStandaloneServer } from '../server/standalone';
import { jsonLogger } from './json-logger';
import { loadConfig } from './load-config';
import { UsageError, atrOptionsOf, helpText, parseCommandLine } from './options';
import type { CliSettings } from './options';

export interface RunIo {
  argv?: string[];
  env?: NodeJS.ProcessEnv;
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
  cwd?: string;
}

/** The broker of a URL, for logs: scheme and host, never the password. */
export function describeBroker(broker: unknown): string {
  if (typeof broker !== 'string') return broker && typeof broker === 'object' ? `a ${(broker as { kind?: string }).kind ?? 'custom'} broker object` : 'memory';
  return broker.replace(/\/\/[^@/]*@/, '//***@');
}

async function buildAtr(settings: CliSettings, io: Required<RunIo>): Promise<{ atr: Atr; logger: Logger }> {
  const fromConfig = settings.config ? await loadConfig(settings.config, io.cwd) : {};
  const options: Record<string, unknown> = { ...fromConfig, ...atrOptionsOf(settings) };
  if (options.logger === undefined) options.logger = jsonLogger(settings.logLevel, io.stdout);
  try {
    return { atr: createAtr(options as AtrOptions), logger: options.logger as Logger };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/**
 * Parses the command line and starts the server. Resolves to an exit code
 * when it should exit at once (help, usage error, failure to listen);
 * otherwise resolves once the server stopped after a signal.
 */
export async function run(io: RunIo = {}): Promise<number> {
  const full: Required<RunIo> = {
    argv: io.argv ?? process.argv.slice(2),
    env: io.env ?? process.env,
    stdout: io.stdout ?? ((t) => process.stdout.write(t)),
    stderr: io.stderr ?? ((t) => process.stderr.write(t)),
    cwd: io.cwd ?? process.cwd(),
  };
  let atr: Atr;
  let logger: Logger;
  let settings: CliSettings;
  try {
    const command = parseCommandLine(full.argv, full.env);
    if (command.command === 'help') {
      full.stdout(helpText());
      return 0;
    }
    if (command.command === 'version') {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      full.stdout(`${(require('../../package.json') as { version: string }).version}\n`);
      return 0;
    }
    settings = command.settings;
    ({ atr, logger } = await buildAtr(settings, full));
  } catch (err) {
    if (err instanceof UsageError) {
      full.stderr(`atr-server: ${err.message}\nRun atr-server --help for the options.\n`);
      return 2;
    }
    throw err;
  }

  const broker = atr.options.broker;
  if (broker === 'memory') {
    logger.warn({ broker: 'memory' }, 'atr-server: the memory broker only carries events published in this process; give --redis to share events with apps');
  }
  const standalone = createStandaloneServer(atr, { host: settings.host, port: settings.port, shutdownTimeout: settings.shutdownTimeout });
  let address;
  try {
    address = await standalone.listen();
  } catch (err) {
    logger.error({ err, host: settings.host, port: settings.port }, `atr-server: cannot listen on ${settings.host}:${settings.port}: ${(err as Error).message}`);
    await atr.close().catch(() => undefined);
    return 1;
  }
  // Redis may be down at start: the server serves anyway (/readyz says 503) and the broker retries.
  atr.connect().catch((err: Error) => {
    logger.warn({ err, broker: describeBroker(broker) }, 'atr-server: the broker is not reachable yet; retrying in the background');
  });
  logger.info({ host: address.address, port: address.port, broker: describeBroker(broker) }, 'atr-server: listening');

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn({ signal }, 'atr-server: second signal, exiting now');
        resolve(130);
        return;
      }
      stopping = true;
      logger.info({ signal }, 'atr-server: stopping');
      // The hard bound, in case something does not let go.
      const hard = setTimeout(() => resolve(1), settings.shutdownTimeout + 2000);
      hard.unref();
      standalone.close().then(
        () => {
          clearTimeout(hard);
          logger.info({ signal }, 'atr-server: stopped');
          process.off('SIGTERM', stop);
          process.off('SIGINT', stop);
          resolve(0);
        },
        (err: Error) => {
          logger.error({ err }, 'atr-server: shutdown failed');
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}

/** The bin entry: runs and exits with the code. */
export function main(): void {
  run().then(
    (code) => process.exit(code),
    (err: Error) => {
      process.stderr.write(`atr-server: ${err.stack ?? err.message}\n`);
      process.exit(1);
    },
  );
}

if (require.main === module) main();
