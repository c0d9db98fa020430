/** The bench scripts' command line: `--name value` options and `--name` flags. */
const argv = process.argv.slice(2);

/** The value after `--name`, or `dflt` when it is not given. */
export function opt(name: string, dflt: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? (argv[i + 1] ?? dflt) : dflt;
}

/** Whether `--name` is given. */
export function flag(name: string): boolean {
  return argv.includes(`--${name}`);
}
