/**
 * Lint layer: the whole generated unit set through `systemd-analyze verify`, in a stub root that
 * holds systemd's own units, the installed package and stubs of every program (see stub-root.ts).
 * The system units are verified together with multi-user.target, which pulls vmsilo.target in as
 * the NixOS module wires it, so ordering cycles against basic.target, sockets.target … are found;
 * the user units together with graphical-session.target, which pulls vmsilo-session.target in.
 *
 * verify exits 0 on unknown keys and bad values and only prints a warning, so any output on stderr
 * fails. verify checks only the first command of each Exec*= kind, so the tests also check that
 * every Exec*= executable exists in the root.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { accessSync, constants, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { EXAMPLES, example, skipWithoutTool, render } from "../support/harness.js";
import { type StubRoot, type ToolResult, buildStubRoot, execPaths, HOSTILE_STORE, hostileConfig, verifySystem, verifyUser } from "./stub-root.js";



/** One root per configuration for the whole file (building one writes ~100 files); removed at exit. */
const roots = new Map<string, StubRoot>();
function withRoot<T>(config: any, f: (root: StubRoot) => T): T {
  const key = JSON.stringify(config);
  let root = roots.get(key);
  if (!root) {
    root = buildStubRoot(config, render(config));
    roots.set(key, root);
    process.once("exit", root.cleanup);
  }
  return f(root);
}

/** At most 30 lines of a report. */
function head(text: string, n = 30): string {
  const lines = text.trimEnd().split("\n");
  return lines.length <= n ? lines.join("\n") : [...lines.slice(0, n), `… ${lines.length - n} more lines`].join("\n");
}

function assertClean(r: ToolResult, what: string): void {
  assert.ok(r.stderr === "", `systemd-analyze verify reports problems with ${what} (exit ${r.status}):\n${head(r.stderr)}`);
  assert.equal(r.status, 0, `systemd-analyze verify exited ${r.status} for ${what}:\n${r.stdout}`);
}

/** verify must fail: non-empty stderr matching `pattern`. */
function assertReports(r: ToolResult, pattern: RegExp, what: string): void {
  assert.notEqual(r.stderr, "", `systemd-analyze verify did not notice ${what}`);
  if (process.env.LINT_DEBUG) console.log(`${what}:\n${r.stderr}`);
  assert.match(r.stderr, pattern, `systemd-analyze verify noticed something else than ${what}:\n${head(r.stderr)}`);
}

function assertExecutablesExist(root: StubRoot): void {
  const missing: string[] = [];
  for (const [dir, units] of [[root.systemUnitDir, root.systemUnits], [root.userUnitDir, root.userUnits]] as const) {
    for (const u of units) {
      for (const exe of execPaths(readFileSync(join(dir, u), "utf8"))) {
        try {
          accessSync(join(root.dir, exe), constants.X_OK);
        } catch {
          missing.push(`${u}: ${exe}`);
        }
      }
    }
  }
  assert.deepEqual(missing, [], "Exec*= names programs the configured packages do not provide");
}

for (const name of EXAMPLES) {
  test(`systemd-analyze verify: system units of examples/${name}.json, with multi-user.target`, (t) => {
    if (skipWithoutTool(t, "systemd-analyze", "systemd")) return;
    withRoot(example(name), (root) => {
      assert.ok(root.systemUnits.length > 0);
      assertClean(verifySystem(root, root.systemUnits), `the system units of examples/${name}.json`);
    });
  });

  test(`systemd-analyze verify --user: user units of examples/${name}.json, with graphical-session.target`, (t) => {
    if (skipWithoutTool(t, "systemd-analyze", "systemd")) return;
    withRoot(example(name), (root) => {
      assert.ok(root.userUnits.length > 0);
      assertClean(verifyUser(root, root.userUnits), `the user units of examples/${name}.json`);
    });
  });

  test(`every Exec*= program of examples/${name}.json exists in its package`, () => {
    withRoot(example(name), assertExecutablesExist);
  });
}

/** desktop.json with its `work` made a disposable VM (three slots, one preloaded; docs/disposables.md). */
function disposableDesktop(): any {
  const c: any = example("desktop");
  const w = c.nixosVms.work;
  Object.assign(w, { disposable: { enable: true, slots: 3, preload: 1 }, autoStart: false, sharedHome: false, additionalDisks: [], rootOverlay: { type: "tmpfs" } });
  for (const s of Object.values(w.sharedDirectories ?? {}) as any[]) s.readonly = true;
  for (const i of Object.values(w.network?.interfaces ?? {}) as any[]) Object.assign(i, { macAddress: null, addresses: [], dhcp: true, tap: { ...i.tap, name: null, hostAddress: null } });
  for (const v of Object.values(c.nixosVms) as any[]) v.dependsOn = (v.dependsOn ?? []).filter((d: string) => d !== "work");
  return c;
}

test("systemd-analyze verify: a disposable VM's slots, their use sockets and services", (t) => {
  if (skipWithoutTool(t, "systemd-analyze", "systemd")) return;
  withRoot(disposableDesktop(), (root) => {
    assert.ok(root.systemUnits.some((u) => u.endsWith("vmsilo-work-d3_use.service")));
    assertClean(verifySystem(root, root.systemUnits), "the system units with a disposable VM");
    assertClean(verifyUser(root, root.userUnits), "the user units with a disposable VM");
    assertExecutablesExist(root);
  });
});

test("systemd-analyze verify: hostile paths and arguments stay one value each", (t) => {
  if (skipWithoutTool(t, "systemd-analyze", "systemd")) return;
  // Program paths get every character a store path may hold; data paths get every character.
  withRoot(hostileConfig(example("desktop"), HOSTILE_STORE), (root) => {
    assertClean(verifySystem(root, root.systemUnits), "the hostile system units");
    assertClean(verifyUser(root, root.userUnits), "the hostile user units");
    assertExecutablesExist(root);
  });
});

// ── The checks catch what they must ────────────────────────────────────────────────────────────

/**
 * Apply `edit` to one installed unit of the desktop example's root (and `prepare` to the root),
 * verify, and put everything back.
 */
function verifyEdited(scope: "system" | "user", unit: string, edit: (text: string) => string, prepare?: (root: StubRoot) => () => void): ToolResult {
  return withRoot(example("desktop"), (root) => {
    const path = join(scope === "system" ? root.systemUnitDir : root.userUnitDir, unit);
    const original = readFileSync(path, "utf8");
    const edited = edit(original);
    assert.notEqual(edited, original, `the edit of ${unit} changed nothing`);
    writeFileSync(path, edited);
    const undo = prepare?.(root);
    try {
      return scope === "system" ? verifySystem(root, root.systemUnits) : verifyUser(root, root.userUnits);
    } finally {
      writeFileSync(path, original);
      undo?.();
    }
  });
}

test("negative: an ordering cycle through sockets.target and basic.target is reported", (t) => {
  if (skipWithoutTool(t, "systemd-analyze", "systemd")) return;
  // The original's E.3.1: a prep service (default dependencies, so After=basic.target) that the
  // command socket requires and is ordered after; sockets.target is Before basic.target.
  const r = verifyEdited("system", "vmsilo-work.socket", (s) => `${s}\n[Unit]\nRequires=vmsilo-work-prep.service\nAfter=vmsilo-work-prep.service\n`);
  assertReports(r, /ordering cycle/, "an ordering cycle with sockets.target");
});

test("negative: an ordering cycle in the user session is reported", (t) => {
  if (skipWithoutTool(t, "systemd-analyze", "systemd")) return;
  // Without After=graphical-session.target, graphical-session.target (which wants vmsilo-session.target)
  // is ordered after it, it after the bind unit, and that after graphical-session.target.
  const r = verifyEdited("user", "vmsilo-session.target", (s) => s.replace(/^After=graphical-session\.target\n/m, ""));
  assertReports(r, /ordering cycle/, "an ordering cycle with graphical-session.target");
});

test("negative: an ExecStart= program missing from the root is reported", (t) => {
  if (skipWithoutTool(t, "systemd-analyze", "systemd")) return;
  // The unit is unchanged (a comment added); the package lacks the program.
  const r = verifyEdited("system", "vmsilo-work-prep.service", (s) => `${s}# edited\n`, (root) => {
    const prep = readFileSync(join(root.systemUnitDir, "vmsilo-work-prep.service"), "utf8");
    const exe = join(root.dir, execPaths(prep)[0]!);
    renameSync(exe, `${exe}.hidden`);
    return () => renameSync(`${exe}.hidden`, exe);
  });
  assertReports(r, /vmsilo-work-prep\.service: Command \S+\/bin\/install is not executable: No such file or directory/, "a missing ExecStart= program");
});

test("negative: a launcher missing from the installed package is reported", (t) => {
  if (skipWithoutTool(t, "systemd-analyze", "systemd")) return;
  const r = verifyEdited("system", "vmsilo-work-vm.service", (s) => s.replace(/(ExecStart=\S+\/launch)/, "$1-missing"));
  assertReports(r, /launch-missing is not executable/, "a missing launcher");
});

test("negative: an unknown key and a bad value are reported (verify only warns on them)", (t) => {
  if (skipWithoutTool(t, "systemd-analyze", "systemd")) return;
  const unknown = verifyEdited("system", "vmsilo-work-console-relay.service", (s) => `${s}ProtectSytem=strict\n`);
  assertReports(unknown, /Unknown key( name)? 'ProtectSytem' in section \[Service\]/, "an unknown key");
  const bad = verifyEdited("system", "vmsilo-work-gpu.service", (s) => s.replace(/^UMask=.*$/m, "UMask=0999"));
  assertReports(bad, /Failed to parse mode value, ignoring: 0999/, "a bad UMask= value");
  const badUser = verifyEdited("user", "vmsilo-work-session-bind.service", (s) => s.replace(/^RemainAfterExit=yes$/m, "RemainAfterExit=perhaps"));
  assertReports(badUser, /Failed to parse boolean value, ignoring: perhaps/, "a bad value in a user unit");
});

test("negative: a path setting split at a space is reported", (t) => {
  if (skipWithoutTool(t, "systemd-analyze", "systemd")) return;
  // What ReadWritePaths= of a share at "/srv/my share" looked like before it was quoted.
  const r = verifyEdited("system", "vmsilo-work-virtiofsd-projects.service", (s) => `${s}ReadWritePaths=/srv/my share\n`);
  assertReports(r, /ReadWritePaths= path is not absolute, ignoring: share/, "an unquoted path with a space");
});
