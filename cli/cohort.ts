/**
 * `cohort`: the one command-line entry point.
 *   cohort server --config job.json [--port 8080] [--host 127.0.0.1] [--data-dir ./cohort-data] [--tls-cert F --tls-key F]
 *   cohort client --server URL --data PATH [--config client.json] [--id NAME] [--ca-file F | --server-fingerprint sha256:…]
 *   cohort demo [--rounds 10] [--clients 10] ...
 *   cohort privacy epsilon|calibrate|ledger ...
 *   cohort admin token create|list|revoke ..., cohort admin audit [--verify] ...
 */
import { Command, InvalidArgumentError } from 'commander';
import { CohortError } from '../shared/errors.ts';
import { LOG_LEVELS } from './log.ts';

// Subcommands are imported when run, so `cohort server` never loads the training stack.
const serverCommand = async (o: never) => (await import('./server.ts')).serverCommand(o);
const clientCommand = async (o: never) => (await import('./client.ts')).clientCommand(o);
const demoCommand = async (o: never) => (await import('./demo.ts')).demoCommand(o);
const privacyEpsilon = async (o: never) => (await import('./privacy.ts')).privacyEpsilon(o);
const privacyCalibrate = async (o: never) => (await import('./privacy.ts')).privacyCalibrate(o);
const privacyLedger = async (o: never) => (await import('./privacy.ts')).privacyLedger(o);
const tokenCreate = async (o: never) => (await import('./admin.ts')).tokenCreate(o);
const tokenList = async (o: never) => (await import('./admin.ts')).tokenList(o);
const tokenRevoke = async (id: string | undefined, o: never) => (await import('./admin.ts')).tokenRevoke(id, o);
const auditCommand = async (o: never) => (await import('./admin.ts')).auditCommand(o);
const remote = () => import('./admin-remote.ts');

function logLevel(value: string): string {
  if (!(LOG_LEVELS as string[]).includes(value)) {
    throw new InvalidArgumentError(`expected one of ${LOG_LEVELS.join(', ')}`);
  }
  return value;
}

export function buildProgram(): Command {
  const program = new Command('cohort')
    .description('Private federated learning: a coordinator, clients, and research simulations')
    .showHelpAfterError()
    // Options after a subcommand are the subcommand's (`cohort client identity --id X`).
    .enablePositionalOptions()
    .exitOverride();

  program
    .command('serve')
    .description('run a coordinator service for many jobs on one port: submit jobs over the admin API, clients join with --job')
    .option('-p, --port <port>', 'HTTP and Socket.IO port (0 = any free port)', '8080')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('-d, --data-dir <dir>', 'where the SQLite store lives', './cohort-data')
    .option('--client-auth <mode>', 'first-use (an unknown id is bound to the first key it presents) | certificate (enrolled devices only); default: first-use on loopback, certificate otherwise')
    .option('--ca-public-key <file>', 'the offline federation CA (cohort ca init wrote ca.pub): accept its certificates, mint none; default: a CA key in the data dir')
    .option('--revocation-list <file>', "with --ca-public-key: the CA's signed revocation list (cohort ca revoke), relayed to SecAgg rounds and re-read when it changes")
    .option('--tls-cert <file>', 'serve HTTPS and WSS with this PEM certificate (chain: the server certificate first)')
    .option('--tls-key <file>', 'the PEM private key of --tls-cert')
    .option('--insecure', 'allow plaintext HTTP/WebSocket on a non-loopback --host (logged as a warning)')
    .option('--log-level <level>', `log level (${LOG_LEVELS.join('|')})`, logLevel, 'info')
    .action(async (o) => run(async () => (await import('./server.ts')).serveCommand(o as never)));

  program
    .command('server')
    .description('run a coordinator for one job (resumes the job if the data dir already has it)')
    .requiredOption('-c, --config <file>', 'job config (JSON)')
    .option('-p, --port <port>', 'Socket.IO port (0 = any free port)', '8080')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('-d, --data-dir <dir>', 'where the SQLite store lives', './cohort-data')
    .option('--max-connections-per-ip <n>', 'open connections allowed from one address (raise behind a proxy or NAT)', '1024')
    .option('--max-unregistered <n>', 'connections that have not said hello, in all', '1024')
    .option('--max-unregistered-per-ip <n>', 'connections that have not said hello, per address', '64')
    .option('--client-auth <mode>', 'first-use (an unknown id is bound to the first key it presents) | certificate (enrolled devices only); default: first-use on loopback, certificate otherwise')
    .option('--ca-public-key <file>', 'the offline federation CA (cohort ca init wrote ca.pub): accept its certificates, mint none; default: a CA key in the data dir')
    .option('--revocation-list <file>', "with --ca-public-key: the CA's signed revocation list (cohort ca revoke), relayed to SecAgg rounds and re-read when it changes")
    .option('--tls-cert <file>', 'serve HTTPS and WSS with this PEM certificate (chain: the server certificate first)')
    .option('--tls-key <file>', 'the PEM private key of --tls-cert')
    .option('--insecure', 'allow plaintext HTTP/WebSocket on a non-loopback --host (logged as a warning)')
    .option('--log-level <level>', `log level (${LOG_LEVELS.join('|')})`, logLevel, 'info')
    .option('--linger-ms <ms>', 'after the job ends, keep telling reconnecting clients for up to this long (until minClients were told)', '15000')
    .action(async (o) => run(() => serverCommand(o as never)));

  const client = program
    .command('client')
    .description('join a coordinator and train on local data')
    .enablePositionalOptions()
    .option('-s, --server <url>', 'coordinator URL, e.g. https://coordinator.example:8080 (http:// only on loopback)')
    .option('--job <id>', 'join this job of a multi-job service (cohort serve); the namespace /jobs/<id>')
    .option('--data <path>', 'local data: .csv or .jsonl')
    .option('-c, --config <file>', 'client config (JSON); flags override it')
    .option('--id <clientId>', 'client id (default: from config, else random)')
    .option('--backend <name>', 'tensorflow | wasm | cpu (default: fastest available)')
    .option('--identity <file>', 'identity file: the device key and its certificate (default $COHORT_HOME/identities/<id>.json; created with mode 0600)')
    .option('--enrol-token <token>', 'a one-time enrolment token (cohort admin clients enroll): exchanged for a certificate at the first hello')
    .option('--certificate <file>', 'a certificate from `cohort ca sign` (offline CA) to keep in the identity file')
    .option('--ca-public-key <file>', "the federation CA's public key (ca.pub): pinned in the identity file; SecAgg neighbours must show its certificates")
    .option('--max-revocation-age <duration>', "with the CA pinned: require its signed revocation list, at most this old (e.g. 1h), in every SecAgg round")
    .option('--ca-file <file>', 'trust this PEM CA bundle for the server certificate, instead of the system store')
    .option('--server-fingerprint <sha256:hex>', "accept only a server certificate with this SHA-256 fingerprint (self-signed allowed); cohort serve logs it")
    .option('--insecure', 'allow plaintext http:// to a host that is not loopback')
    .option('--log-level <level>', `log level (${LOG_LEVELS.join('|')})`, logLevel, 'info')
    .action(async (o) => run(() => clientCommand(o as never)));
  client
    .command('identity')
    .description("this device's public key and fingerprint (the identity file is created if missing), and its certificate")
    .option('--identity <file>', 'the identity file')
    .option('--id <clientId>', 'the client id (its default identity file)')
    .option('--certificate <file>', 'import a certificate from `cohort ca sign` first')
    .option('--ca-public-key <file>', "pin the federation CA's public key (ca.pub)")
    .option('--json', 'JSON')
    .action(async (o) => run(async () => (await import('./client.ts')).identityCommand(o as never)));

  program
    .command('demo')
    .description('coordinator + 10 clients in one process on real MNIST digits; last line is JSON')
    .option('--rounds <n>', 'rounds of FedAvg')
    .option('--clients <n>', 'number of clients')
    .option('--epochs <n>', 'local epochs per round (E)')
    .option('--batch-size <n>', 'local batch size (B)')
    .option('--lr <x>', 'client learning rate')
    .option('--seed <n>', 'seed for data split, model init and shuffling')
    .option('--train-size <n>', 'MNIST digits to train on (default 8000)')
    .option('--test-size <n>', 'held-out digits (default 2000; train + test ≤ 10000)')
    .option('--data-dir <dir>', 'keep the coordinator store here (default: a temp dir)')
    .option('--backend <name>', 'tensorflow | wasm | cpu')
    .option('--dp <mode>', 'differential privacy: off | central | local | distributed (needs --secagg)', 'off')
    .option('--secagg', 'secure aggregation: the coordinator sees only the masked sum')
    .option('--noise <z>', 'DP noise multiplier (default 1)')
    .option('--clip <C>', 'DP clip norm (default 1)')
    .option('--budget <epsilon>', 'DP budget: stop before ε would exceed it')
    .option('--delta <d>', 'δ for ε (default 1e-5)')
    .option('--log-level <level>', `log level for stderr (${LOG_LEVELS.join('|')})`, logLevel, 'warn')
    .action(async (o) => run(() => demoCommand(o as never)));

  program
    .command('sim')
    .description('run a research experiment (fedavg, dp-fedavg, …); --help after the name lists its flags')
    .argument('<experiment>')
    .allowUnknownOption(true)
    .helpOption(false)
    .argument('[flags...]')
    .action(async (name: string, flags: string[]) =>
      run(async () => (await import('../simulations/index.ts')).runExperiment([name, ...flags])),
    );

  const privacy = program.command('privacy').description('privacy accounting: ε for a schedule, noise calibration, a job\'s ledger');
  privacy
    .command('epsilon')
    .description('ε after T rounds of the Poisson-subsampled Gaussian (RDP accountant)')
    .requiredOption('--q <q>', 'sampling probability per round')
    .requiredOption('--noise <z>', 'noise multiplier')
    .requiredOption('--steps <T>', 'number of rounds')
    .requiredOption('--delta <d>', 'target δ')
    .option('--orders <orders>', 'default | integer | comma-separated list', 'default')
    .option('--conversion <c>', 'improved | classic', 'improved')
    .option(
      '--adjacency <a>',
      'add-remove (a client present or absent; Poisson amplification) | replace-one (a client\'s update changed: sensitivity 2C; local mode, or against the coordinator; needs --q 1)',
      'add-remove',
    )
    .option('--json', 'print {"epsilon":E,"order":A}')
    .action(async (o) => run(() => privacyEpsilon(o as never)));
  privacy
    .command('calibrate')
    .description('smallest noise multiplier meeting (ε, δ) for q and T rounds')
    .requiredOption('--epsilon <e>', 'target ε')
    .requiredOption('--delta <d>', 'target δ')
    .requiredOption('--q <q>', 'sampling probability per round')
    .requiredOption('--steps <T>', 'number of rounds')
    .option('--adjacency <a>', 'add-remove | replace-one (sensitivity 2C; needs --q 1)', 'add-remove')
    .option('--json', 'print {"noiseMultiplier":Z}')
    .action(async (o) => run(() => privacyCalibrate(o as never)));
  privacy
    .command('ledger')
    .description("a job's privacy ledger: one row per committed round and per attempt's release to the coordinator, ε against each audience")
    .requiredOption('-d, --data-dir <dir>', 'the coordinator data dir')
    .requiredOption('--job <id>', 'job id')
    .option('--json', 'one JSON object per round')
    .action(async (o) => run(() => privacyLedger(o as never)));

  const ca = program.command('ca').description('the offline federation CA (on an admin machine): init a CA key, sign client certificates');
  ca.command('init')
    .description('create a CA key (DIR/ca.key, mode 0600) and its public key (DIR/ca.pub, for cohort serve --ca-public-key)')
    .option('--out <dir>', 'where to write them')
    .option('--json', 'JSON')
    .action(async (o) => run(async () => (await import('./ca.ts')).caInit(o as never)));
  ca.command('sign')
    .description("sign a client certificate for a device's public key (cohort client identity prints it)")
    .option('--ca-key <file>', 'the CA key (cohort ca init)')
    .option('--id <name>', 'the client id')
    .option('--public-key <key>', "the device's Ed25519 public key (base64url)")
    .option('--jobs <ids>', 'jobs it may join, comma-separated (default: any)')
    .option('--expires <duration>', 'validity, e.g. 90d or 24h (default 365d)')
    .option('--out <file>', 'write the certificate here (default: stdout)')
    .action(async (o) => run(async () => (await import('./ca.ts')).caSign(o as never)));
  ca.command('revoke')
    .description("add certificate serials to the CA's signed revocation list (for cohort serve --revocation-list; clients refuse SecAgg neighbours on it)")
    .option('--ca-key <file>', 'the CA key (cohort ca init)')
    .option('--serial <serial>', 'a certificate serial to revoke (repeatable)', (v: string, all: string[] = []) => [...all, v])
    .option('--list <file>', 'the revocation list to extend and rewrite (created if missing)')
    .option('--json', 'print the list')
    .action(async (o) => run(async () => (await import('./ca.ts')).caRevoke(o as never)));

  // Flags are checked by the commands (ConfigError, exit 2), not by commander's requiredOption (exit 1).
  const admin = program.command('admin').description('administration: API tokens and the audit log (local, --data-dir); jobs, ledger, versions, promote, rollback, download (a running coordinator, --server --token)');
  const token = admin.command('token').description('API tokens for the admin API (stored only as their SHA-256)');
  token
    .command('create')
    .description('create a token and print it, once')
    .option('-d, --data-dir <dir>', 'the coordinator data dir')
    .option('--role <role>', 'admin | operator | viewer')
    .option('--name <name>', 'a unique name (shown as the actor in the audit log)')
    .option('--json', 'print {"token":…,"id":…,"name":…,"role":…}')
    .action(async (o) => run(() => tokenCreate(o as never)));
  token
    .command('list')
    .description('list tokens (never their text)')
    .option('-d, --data-dir <dir>', 'the coordinator data dir')
    .option('--json', 'one JSON object per token')
    .action(async (o) => run(() => tokenList(o as never)));
  token
    .command('revoke')
    .description('revoke a token by id or name')
    .argument('[id-or-name]')
    .option('-d, --data-dir <dir>', 'the coordinator data dir')
    .action(async (id: string | undefined, o) => run(() => tokenRevoke(id, o as never)));
  admin
    .command('audit')
    .description('the audit log (newest last), or --verify its hash chain (exit 0 if it holds, 1 otherwise); local with --data-dir, else over the API of --server')
    .option('-d, --data-dir <dir>', 'the coordinator data dir')
    .option('--server <url>', 'a running coordinator instead of a data dir (or COHORT_SERVER)')
    .option('--token <token>', 'an API token, viewer or above (or COHORT_TOKEN)')
    .option('--insecure', 'allow plaintext http:// to a --server that is not loopback')
    .option('--ca-file <file>', "trust this PEM CA bundle for the coordinator's certificate, instead of the system store")
    .option('--server-fingerprint <sha256:hex>', "accept only a coordinator certificate with this SHA-256 fingerprint (self-signed allowed)")
    .option('--verify', 'recompute the hash chain')
    .option('--job <id>', 'rows whose target is the job or inside it')
    .option('--actor <name>', 'rows by this actor')
    .option('--action <action>', 'rows of this action')
    .option('--limit <n>', 'the newest N rows (default 1000, at most 10000)')
    .option('--json', 'one JSON object per row (with --verify: the result)')
    .action(async (o: { dataDir?: string; server?: string }) =>
      run(async () => (o.dataDir === undefined && (o.server ?? process.env.COHORT_SERVER) ? (await remote()).audit(o as never) : auditCommand(o as never))),
    );
  // Against a running coordinator's admin API (cli/admin-remote.ts).
  const api = (cmd: ReturnType<typeof admin.command>) =>
    cmd
      .option('--server <url>', 'the coordinator, e.g. http://127.0.0.1:8080 (or COHORT_SERVER)')
      .option('--token <token>', 'an API token (or COHORT_TOKEN)')
      .option('--insecure', 'allow plaintext http:// to a host that is not loopback')
      .option('--ca-file <file>', "trust this PEM CA bundle for the coordinator's certificate, instead of the system store")
      .option('--server-fingerprint <sha256:hex>', "accept only a coordinator certificate with this SHA-256 fingerprint (self-signed allowed)")
      .option('--json', 'JSON for scripts');
  api(admin.command('jobs').description('jobs on a running coordinator: submit FILE | list | show ID | pause ID | resume ID | stop ID').argument('<action>').argument('[id]')).action(
    async (action: string, id: string | undefined, o) => run(async () => (await remote()).jobs(action, id, o as never)),
  );
  api(admin.command('ledger').description("a job's privacy ledger, both audiences' ε and the next round's").argument('[id]')).action(async (id: string | undefined, o) =>
    run(async () => (await remote()).ledger(id, o as never)),
  );
  api(admin.command('versions').description("a job's model versions").argument('[id]')).action(async (id: string | undefined, o) => run(async () => (await remote()).versions(id, o as never)));
  api(admin.command('promote').description('tag a version production (--force past failing gates)').argument('[id]').argument('[round]').option('--force', 'promote despite failing promotion gates (audited)')).action(
    async (id: string | undefined, round: string | undefined, o) => run(async () => (await remote()).promote(id, round, o as never)),
  );
  api(admin.command('rollback').description('move the production tag back to the previous version').argument('[id]')).action(async (id: string | undefined, o) =>
    run(async () => (await remote()).rollback(id, o as never)),
  );
  api(admin.command('download').description('a version as a tfjs artifact (model.json + weights.bin)').argument('[id]').option('--round <r>', 'the version (default: production, else the latest)').option('--out <dir>', 'where to write it').option('--quantize <format>', 'int8 (per-channel affine) or float16')).action(
    async (id: string | undefined, o) => run(async () => (await remote()).download(id, o as never)),
  );
  api(
    admin
      .command('tokens')
      .description('API tokens over the admin API (an admin token): create NAME --role R | list | revoke ID|NAME')
      .argument('<action>')
      .argument('[arg]')
      .option('--role <role>', 'viewer | operator | admin (create)'),
  ).action(async (action: string, arg: string | undefined, o) => run(async () => (await remote()).tokens(action, arg, o as never)));
  api(
    admin
      .command('clients')
      .description('device identities over the admin API (operator): enroll NAME [--jobs a,b] [--expires 24h] | list | revoke NAME')
      .argument('<action>')
      .argument('[name]')
      .option('--jobs <ids>', 'jobs the enrolment allows, comma-separated (default: any)')
      .option('--expires <duration>', 'how long the enrolment token works (default 24h)'),
  ).action(async (action: string, arg: string | undefined, o) => run(async () => (await remote()).clients(action, arg, o as never)));

  return program;
}

async function run(action: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await action();
  } catch (err) {
    if (err instanceof CohortError) {
      process.stderr.write(`cohort: ${err.message}\n`);
      process.exitCode = 2;
    } else if (err instanceof Error && err.name === 'ApiRefusal') {
      // The admin API said no (cli/admin-remote.ts): its exit code says why.
      process.stderr.write(`cohort: ${err.message}\n`);
      process.exitCode = (err as Error & { exitCode: number }).exitCode;
    } else {
      process.stderr.write(`cohort: ${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = 1;
    }
  }
}

// `cohort … | head` closes stdout early: that is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const program = buildProgram();
try {
  await program.parseAsync(process.argv);
} catch (err) {
  const code = (err as { exitCode?: number }).exitCode;
  process.exitCode = typeof code === 'number' ? code : 1;
}
