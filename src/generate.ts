import { buildModel, type Model } from "./model/model.js";
import { hypervisorRefusals } from "./hypervisors/index.js";
import { OUT } from "./model/paths.js";
import { validate } from "./config/validate.js";
import type { Issue } from "./config/types.js";
import { serialiseUnit } from "./systemd/unit.js";
import { toolPaths } from "./render/context.js";
import { type FileTree, type GeneratedEntry, type GeneratedFile, isLink, provenance } from "./render/files.js";
import { vmDefinitions } from "./render/definitions.js";
import { CLI_NAMES, cliUsage } from "./render/usage.js";
import { renderManPage } from "./render/man.js";
import { renderCompletions } from "./render/completions.js";
import { renderManifest } from "./render/manifest.js";
import { renderPolkit } from "./render/polkit.js";
import { renderSharedScripts, renderUserClis, renderVmScripts } from "./render/scripts.js";
import { renderTmpfiles } from "./render/tmpfiles.js";
import { renderFirewall } from "./render/firewall.js";
import { renderUsb } from "./render/usb.js";
import { renderUnits } from "./render/units/index.js";

/** Bad input: every issue, each with its JSON path. The CLI prints them and exits 2. */
export class ConfigError extends Error {
  constructor(readonly issues: readonly Issue[]) {
    super(issues.map((i) => `${i.path}: ${i.message}`).join("\n"));
  }
}

export interface GenerateOptions {
  /** Absolute path the tree will be installed at (the Nix output); scripts and units refer to it. */
  readonly prefix: string;
}

/** Validate and resolve; throws ConfigError listing every issue. */
export function resolve(input: unknown): Model {
  const v = validate(input);
  if (!v.config) throw new ConfigError(v.issues);
  const m = buildModel(v.config);
  const refused = hypervisorRefusals(v.config);
  if (!m.model || refused.length) throw new ConfigError([...m.issues, ...refused]);
  return m.model;
}

/** config → files. Pure: no I/O, deterministic, the same bytes for the same input. */
export function generate(input: unknown, options: GenerateOptions): FileTree {
  if (!options.prefix.startsWith("/")) throw new Error(`prefix must be absolute, got ${options.prefix}`);
  const model = resolve(input);
  const t = toolPaths(model, options.prefix.replace(/\/+$/, ""));
  const files: GeneratedEntry[] = [];
  const units = renderUnits(model, t);
  // Where each unit comes from, to name both sides of a file-name clash.
  const sources = new Map<string, string>();
  const unitText = (dir: string) => (u: (typeof units.system)[number]) => {
    const path = `${dir}/${u.name}`;
    const other = sources.get(path);
    if (other !== undefined) {
      const option = (s: string) => s.replace(/^programs\.vmsilo\./, "");
      issues.push({ path: option(u.source), message: `generates ${path}, which ${option(other)} generates too; rename one of them` });
    }
    sources.set(path, u.source);
    return { path, mode: 0o644 as const, content: serialiseUnit(u, provenance(u.source)) };
  };
  const issues: Issue[] = [];
  files.push(...units.system.map(unitText(OUT.systemUnits)), ...units.user.map(unitText(OUT.userUnits)));
  for (const vm of model.vms) files.push(...renderVmScripts(model, vm, t));
  files.push(...renderSharedScripts(t, model), ...renderUserClis(model, t, units), renderTmpfiles(model), renderPolkit(model));
  files.push(...renderUsb(model, t));
  const firewall = renderFirewall(model);
  if (firewall) files.push(firewall);

  if (issues.length) throw new ConfigError(issues);
  const clis = CLI_NAMES.filter((n) => files.some((f) => f.path === `${OUT.bin}/${n}`)).map(cliUsage);
  for (const cli of clis) files.push(renderManPage(cli, clis.map((c) => c.name).filter((n) => n !== cli.name)), ...renderCompletions(cli, model.vms.map((v) => v.name)));
  const definitions = vmDefinitions(
    model,
    [...units.system.map((unit) => ({ dir: OUT.systemUnits, unit })), ...units.user.map((unit) => ({ dir: OUT.userUnits, unit }))],
    files.filter((f): f is GeneratedFile => !isLink(f)),
    t.prefix,
  );
  for (const [vm, digest] of definitions) files.push({ path: OUT.definition(vm), mode: 0o644, content: `${digest}\n` });
  const tree: FileTree = new Map(files.map((f) => [f.path, f]));
  const manifest = renderManifest(model, [...tree.keys()], definitions);
  tree.set(manifest.path, manifest);
  return new Map([...tree.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
