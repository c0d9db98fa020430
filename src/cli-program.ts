import { Command, Option } from 'commander';
import { closest } from './config/fields.js';
import { configJsonSchemaText } from './config/json-schema.js';
import { LOG_LEVELS, type LogLevel } from './config/schema.js';

/** Bad config or usage: the file is invalid, an unknown command or option. */
export const EXIT_CONFIG = 2;

export interface RunOpts {
  config: string;
  logLevel?: LogLevel;
}

export interface CheckOpts {
  config: string;
  print?: boolean;
  json?: boolean;
}

const configOption = (dflt?: string): Option => {
  const o = new Option('-c, --config <file>', 'TOML config file');
  return dflt ? o.default(dflt) : o;
};
const levelOption = (): Option =>
  new Option('--log-level <level>', 'log level, overrides [log] level').choices(LOG_LEVELS);

const COMMANDS = ['run', 'check', 'demo', 'schema', 'help'];

const HELP_AFTER = `
Examples:
  blitz-lb run --config config.toml             run until SIGINT/SIGTERM
  blitz-lb check --config config.toml           validate; print services, backends, certificates
  blitz-lb check --config config.toml --print   the effective config, defaults filled in (TOML)
  blitz-lb check --config config.toml --json    {valid, errors, warnings, config} for tools
  blitz-lb schema > config.schema.json          JSON Schema for editors (Taplo, Even Better TOML)
  blitz-lb demo                                 three demo backends behind the balancer on :8080

Exit codes:
  0  clean stop (run, demo); valid (check)
  1  runtime failure: a port in use, a listener that cannot bind
  2  bad config or usage: the file is invalid, an unknown command or option

Signals (run, demo):
  SIGTERM, SIGINT  stop accepting; open sessions finish for up to [process] shutdown_timeout,
                   then are cut; a second signal cuts them at once; exit 0
  SIGHUP           re-read the config file and apply the difference in place; an invalid file
                   is logged and the running config stays
  SIGUSR1          reopen the log file ([log] destination = "file") after logrotate moved it
  SIGUSR2          upgrade: start the blitz-lb on disk with the same arguments, hand it the
                   listening sockets, then stop accepting and drain once it serves
`;

/** What the commands do (cli.ts). */
export interface Commands {
  run(opts: RunOpts): Promise<void>;
  check(opts: CheckOpts): void;
  demo(opts: RunOpts): Promise<void>;
  /** Says `message` and exits with `code`. */
  fail(code: number, message: string): never;
}

/** The command line: commands, options, help; `demoConfig` is demo's default config file. */
export function buildProgram(version: string, demoConfig: string, c: Commands): Command {
  const { run, check, demo, fail } = c;
  const program = new Command('blitz-lb')
    .description('A Layer-4 TCP load balancer')
    .version(version, '-V, --version')
    .exitOverride()
    .enablePositionalOptions()
    .usage('[options] [command]')
    .helpCommand('help [command]', 'show help for a command')
    .addHelpText('after', HELP_AFTER)
    .argument('[command]')
    .addOption(configOption())
    .addOption(levelOption())
    .action(async (command: string | undefined, opts: Partial<RunOpts>, cmd: Command) => {
      if (command !== undefined) {
        // Not one of ours: the closest command name, by edit distance, is the likely meaning.
        const near = closest(command, COMMANDS);
        fail(
          EXIT_CONFIG,
          `unknown command "${command}"${near ? `; did you mean \`${near}\`?` : ''} (commands: ${COMMANDS.join(', ')}; see blitz-lb --help)`,
        );
      }
      if (!opts.config) {
        cmd.outputHelp({ error: true });
        fail(EXIT_CONFIG, 'missing --config FILE (or a command: run, check, demo, schema, help)');
      }
      await run(opts as RunOpts);
    });
  program
    .command('run')
    .description('run the balancer until SIGINT/SIGTERM')
    .addOption(configOption().makeOptionMandatory())
    .addOption(levelOption())
    .action((opts: RunOpts) => run(opts));
  program
    .command('check')
    .description('validate a config file and print its services and backends')
    .addOption(configOption().makeOptionMandatory())
    .option('--print', 'print the effective config (defaults filled in) as TOML')
    .option('--json', 'print {valid, errors, warnings, config} as JSON, for tools')
    .action((opts: CheckOpts) => check(opts));
  program
    .command('demo')
    .description('start three demo HTTP backends on loopback and the balancer in front of them')
    .addOption(configOption(demoConfig))
    .addOption(levelOption())
    .action((opts: RunOpts) => demo(opts));
  program
    .command('schema')
    .description('print the JSON Schema of the config file (for editors: Taplo, Even Better TOML)')
    .action(() => {
      process.stdout.write(configJsonSchemaText());
    });
  return program;
}
