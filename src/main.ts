/**
 * The process entry: `start` (API, background work and, in sandbox mode, the sandbox banks in one process), `migrate`,
 * `providers check`, `register-client`. Owns configuration loading, signals and graceful shutdown.
 */
import { loadConfig, ConfigError, publicUrlSetting, type Config } from './config.ts';
import { createLogger } from './logger.ts';
import { adminTokenPath, resolveAdminToken } from './admin/token.ts';
import { createServer, type Role } from './server.ts';
import { openDb } from './db/db.ts';
import { migrate } from './db/migrate.ts';
import { runCli } from './cli/index.ts';
import { providersCommand } from './cli/providers.ts';

async function start(config: Config, role: Role): Promise<void> {
  const logger = createLogger(config.logLevel);
  const admin = resolveAdminToken(config.adminToken, config.dataDir);
  const server = await createServer({ config, logger, adminToken: admin.token, role, onProgress: (m) => console.log(`mooring: ${m}`) });
  let closing = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (closing) return;
    closing = true;
    console.log(`mooring: ${signal} received, finishing requests in flight and closing`);
    const force = setTimeout(() => {
      console.error('mooring: shutdown took longer than 10 s; exiting');
      process.exit(1);
    }, 10_000);
    force.unref();
    await server.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  if (server.app === null) {
    console.log(`mooring: sync worker running (concurrency ${config.workerConcurrency}); stop it with Ctrl-C or SIGTERM`);
    return;
  }
  await server.app.listen({ port: config.port, host: config.host });

  const lines = [
    '',
    `Mooring is running at ${config.publicUrl}`,
    `  storage:   ${config.databaseUrl === null ? `embedded PostgreSQL (PGlite) in ${config.dataDir}` : 'PostgreSQL (DATABASE_URL)'}`,
    `  role:      ${role === 'all' ? 'API and sync worker' : 'API only (run workers with: npx mooring worker)'}`,
    `  sandbox:   ${config.sandbox ? `on — ${server.catalog.all().filter((e) => e.origin === 'sandbox').length} sandbox providers, see ${config.publicUrl}/oidc/.well-known/all-connections` : 'off'}`,
    `  providers: ${config.providersFile === null ? 'none of your own (list them in MOORING_PROVIDERS_FILE)' : `${config.providers.length} from ${config.providersFile}`}`,
    `  API docs:  ${config.publicUrl}/docs`,
    `  discovery: ${config.publicUrl}/oidc/.well-known/openid-configuration`,
  ];
  if (admin.source === 'generated') {
    lines.push(`  admin token (shown once, stored in ${adminTokenPath(config.dataDir)}): ${admin.token}`);
  } else if (admin.source === 'file') {
    lines.push(`  admin token: stored in ${adminTokenPath(config.dataDir)}`);
  } else {
    lines.push('  admin token: from MOORING_ADMIN_TOKEN');
  }
  lines.push(
    '',
    'Register an API client:',
    '  npx mooring register-client --name "My app" --redirect-uri http://localhost:8080/callback',
    'or with HTTP (RFC 7591):',
    `  curl -X POST ${config.publicUrl}/oidc/reg -H "Authorization: Bearer <admin token>" -H "Content-Type: application/json" \\`,
    `       -d '{"client_name":"My app","redirect_uris":["http://localhost:8080/callback"],"token_endpoint_auth_method":"client_secret_basic"}'`,
    '',
  );
  console.log(lines.join('\n'));
}

async function main(argv: string[]): Promise<void> {
  const command = argv[0] ?? 'start';
  // The providers file alone: `providers …` must work while the rest of the configuration is incomplete, or the file is bad.
  if (command === 'providers') process.exit(await providersCommand(argv.slice(1), { publicUrl: publicUrlSetting() }));
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`mooring: ${err.message}\nFix the problems above (environment variables, or the providers file) and start again.`);
      process.exit(2);
    }
    throw err;
  }
  if (command === 'start') return start(config, 'all');
  if (command === 'api') return start(config, 'api');
  if (command === 'worker') return start(config, 'worker');
  if (command === 'migrate') {
    const db = await openDb({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 2 });
    const report = await migrate(db, (m) => console.log(`mooring: ${m}`));
    await db.close();
    console.log(`mooring: ${report.applied.length} migration(s) applied, ${report.alreadyApplied} already in place`);
    return;
  }
  const code = await runCli(command, argv.slice(1), config);
  process.exit(code);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(`mooring: failed to start: ${err instanceof Error ? err.message : String(err)}`);
  if (err instanceof Error && /ECONNREFUSED|connect/.test(err.message)) {
    console.error('mooring: check that PostgreSQL is running and DATABASE_URL is right, or unset DATABASE_URL to use the embedded database.');
  }
  if (err instanceof Error && /EADDRINUSE/.test(err.message)) console.error('mooring: the port is taken; set PORT to a free one.');
  process.exit(1);
});
