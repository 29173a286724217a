import type { Model } from "../model/model.js";
import { HOME_TEMPLATE, OUT, poolLock, RUN_ROOT, SHARED_ROOT, STATE_ROOT } from "../model/paths.js";
import { type GeneratedFile, provenance } from "./files.js";

/**
 * tmpfiles.d rules (D4): /run/vmsilo and each VM's directory are root's; the user owns only what
 * user-run backends write (created per start by the prep unit) and the shared-home tree.
 */
export function renderTmpfiles(model: Model): GeneratedFile {
  const { name, group } = model.config.user;
  const rows: string[][] = [
    ["d", RUN_ROOT, "0755", "root", "root", "-"],
    ["d", STATE_ROOT, "0755", "root", "root", "-"],
  ];
  for (const vm of model.vms) {
    rows.push(["d", vm.paths.run, "0755", "root", "root", "-"], ["d", vm.paths.virtiofsDir, "0755", "root", "root", "-"]);
  }
  // A disposable VM's directory holds the lock vm-run --disposable takes its slots under, the user's.
  for (const d of model.disposables) rows.push(["d", `${RUN_ROOT}/${d.name}`, "0755", "root", "root", "-"], ["f", poolLock(d.name), "0600", name, group, "-"]);
  if (model.vms.some((v) => v.sharedHomePath === v.paths.defaultSharedHome)) rows.push(["d", SHARED_ROOT, "0755", name, group, "-"]);
  if (model.vms.some((v) => v.sharedHomePath !== null)) rows.push(["d", HOME_TEMPLATE, "0755", name, group, "-"]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) => r.map((c, i) => (i < r.length - 1 ? c.padEnd(widths[i]!) : c)).join(" "));
  const head = provenance("programs.vmsilo.nixosVms").map((l) => `# ${l}`);
  return { path: OUT.tmpfiles, mode: 0o644, content: [...head, ...lines].join("\n") + "\n" };
}
