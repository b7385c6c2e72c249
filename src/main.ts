// `npm start`: loads the config, starts paymail, and shuts down gracefully on SIGINT/SIGTERM.
import { ConfigError, loadConfig } from './config.ts';
import { FerretdbBuildError } from './db/ferretdb-build.ts';
import { createLogger } from './logger.ts';
import { startPaymail } from './server.ts';

let config;
try {
  config = loadConfig();
} catch (e) {
  if (e instanceof ConfigError) {
    process.stderr.write(`paymail: ${e.message}\n`);
    process.exit(1);
  }
  throw e;
}

const logger = createLogger(config.logLevel);
try {
  const running = await startPaymail(config, logger);
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      logger.error('shutdown took longer than 20 s; exiting');
      process.exit(1);
    }, 20_000);
    force.unref();
    running.stop().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
} catch (e) {
  if (e instanceof FerretdbBuildError) {
    logger.fatal(e.message);
    process.stderr.write(`paymail: ${e.message}\n`);
  } else {
    logger.fatal({ err: e }, 'start-up failed');
  }
  process.exit(1);
}
