// Entry of the `code` shim: reads the command line that @vscode/test-electron gives VS Code, runs the
// extension-host test runner in the workbench, and exits with the runner's code (as VS Code does).
import { resolve } from 'node:path';
import { Workbench } from './workbench';

interface ShimArgs {
  readonly workspace: string;
  readonly extensionDevelopmentPath?: string;
  readonly extensionTestsPath?: string;
}

function parseArgs(argv: readonly string[], cwd: string): ShimArgs {
  const value = (name: string): string | undefined => {
    const i = argv.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
    if (i < 0) return undefined;
    const a = argv[i];
    return a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[i + 1];
  };
  // Flags that take a separate value, so that the value is not taken for the folder to open.
  const withValue = new Set(['--extensionTestsPath', '--extensionDevelopmentPath', '--user-data-dir', '--extensions-dir', '--locale']);
  const positional = argv.filter((a, i) => !a.startsWith('-') && !withValue.has(argv[i - 1] ?? ''));
  if (positional.length !== 1) throw new Error(`expected one folder to open, got ${JSON.stringify(positional)} in ${JSON.stringify(argv)}`);
  const abs = (p: string | undefined): string | undefined => (p === undefined ? undefined : resolve(cwd, p));
  return {
    workspace: resolve(cwd, positional[0]),
    extensionDevelopmentPath: abs(value('extensionDevelopmentPath')),
    extensionTestsPath: abs(value('extensionTestsPath')),
  };
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2), process.env.NAD_SHIM_CWD ?? process.cwd());
  const timeoutMs = Number(process.env.NAD_VSCODE_TEST_TIMEOUT_MS ?? 300_000);
  const started = Date.now();
  const wb = await Workbench.start({ name: 'extension-host', ...args });
  let code: number;
  let failure: string | undefined;
  try {
    code = await wb.waitForTestsExit(timeoutMs);
    if (code !== 0) failure = `extension-host tests exited with code ${code}`;
  } catch (e) {
    code = 1;
    failure = (e as Error).message;
  }
  if (failure) console.error(await wb.diagnostics(failure));
  else console.log(`[vscode-test] workbench ran the extension-host tests in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  await wb.close(failure !== undefined);
  return code;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  },
);
