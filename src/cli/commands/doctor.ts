/**
 * `vault doctor`: checks this machine for everything vault uses and says, for each miss, the
 * command that fixes it. Exits EXIT.privilege when something this user's create and mount need is
 * missing (the checks and the verdict: src/system/doctor*.ts). Needs no root and changes nothing.
 */
import type { Command } from 'commander';
import { EXIT } from '../exit-codes.js';
import { evaluate, type DoctorReport, type ReportItem } from '../../system/doctor.js';
import { gatherFacts } from '../../system/doctor-facts.js';

/** The version of `vault doctor --json`'s shape (spec/doctor.schema.json). */
export const DOCTOR_JSON_VERSION = 1;

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('check this machine for what vault needs, and say how to fix what is missing (no root needed; changes nothing)')
    .option('--json', 'print JSON for scripts (spec/doctor.schema.json)')
    .action((o: { json?: boolean }) => {
      const report = evaluate(gatherFacts());
      const exitCode = report.ok ? EXIT.ok : EXIT.privilege;
      process.stdout.write(o.json ? doctorJson(report, exitCode) : renderDoctor(report, process.stdout.isTTY === true));
      process.exitCode = exitCode;
    });
}

export function doctorJson(report: DoctorReport, exitCode: number): string {
  return JSON.stringify({ version: DOCTOR_JSON_VERSION, ...report, exitCode }, null, 2) + '\n';
}

/** ✓ ✗ – ? on a terminal; words where the output goes to a file or a pipe. */
function mark(i: ReportItem, terminal: boolean): string {
  const [sym, word] =
    i.status === 'ok' ? ['✓', 'ok'] : i.status === 'unknown' ? ['?', 'unknown'] : i.needed ? ['✗', 'missing'] : ['–', 'optional'];
  return terminal ? sym : word.padEnd(8);
}

/** The report as people read it: who you are and your route, each group's checks, the verdict. */
export function renderDoctor(r: DoctorReport, terminal: boolean): string {
  const who = r.user.root ? 'root' : `${r.user.name} (uid ${r.user.uid})`;
  const route =
    r.route.name === 'root'
      ? 'vault creates and mounts directly (route root)'
      : `\`vault mount\` goes through ${r.route.name}${r.route.note ? ` (${r.route.note})` : ''}`;
  const out = [`you are ${who}: ${route}`];
  const width = Math.max(...r.groups.flatMap((g) => g.items.map((i) => i.label.length)));
  const indent = ' '.repeat(2 + (terminal ? 1 : 8) + 1 + width + 2);
  for (const g of r.groups) {
    out.push('', g.title);
    for (const i of g.items) {
      out.push(`  ${mark(i, terminal)} ${i.label.padEnd(width)}  ${i.detail}`);
      if (i.fix !== null) out.push(`${indent}fix: ${i.fix}`);
    }
  }
  out.push('');
  if (r.ok) out.push('everything vault needs to create and mount volumes for you is here');
  else out.push(`missing what vault needs to create and mount volumes for you: ${r.missing.join(', ')} (fixes above)`);
  if (r.user.root) out.push('ordinary users: run `vault doctor` as the user to check their routes');
  return out.join('\n') + '\n';
}
