/**
 * The lint layer for qemu trees: every script (the launchers, the stop scripts, the QMP client,
 * create-disk, vm-exec) through shellcheck with no finding; the unit set through
 * `systemd-analyze verify` with systemd's own units, stderr treated as failure; every Exec*= program
 * present in its package. Two configurations: the qemu features with plain values, and with hostile
 * ones (quotes, `$`, backticks, `,` and `=` in paths and arguments).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { accessSync, constants, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { example, fileAt, have, render, scripts, tempDir, writeTree } from "../support/harness.js";
import { buildStubRoot, execPaths, verifySystem } from "./stub-root.js";

const Q = "/nix/store/7q3ma1k6lq7w0b4j5b5n7m5ax9w5q2yz-qemu-10.1.2";

/** Every qemu feature at once: two VMs (microvm and q35), shares, 9p, disks to create, taps and user networking, vm-exec. */
function qemuEverything(hostile = ""): any {
  const c = example("minimal") as any;
  c.programs = {
    ...c.programs,
    crosvm: null,
    qemu: Q,
    virtiofsd: "/nix/store/8v1rfs2b0m5x4r5g7y0w6q3s1m2n3b4c-virtiofsd-1.13.2",
    iproute2: "/nix/store/9i2p3r4o5u6t7e8r9i0p1r2o3u4t5e6r-iproute2-6.17.0",
  };
  const base = c.nixosVms.work;
  const vm = (extra: Record<string, unknown>) => ({ ...base, hypervisor: "qemu", ...extra });
  c.qemu = { accel: "kvm", machine: "microvm", extraArgs: [`-global${hostile}`] };
  c.vmExec = { enable: true, kernel: `/k${hostile}/vmlinux`, initramfs: `/k${hostile}/initrd`, kernelParams: ["a=b,c", `x=${hostile.replace(/[\s"]/g, "")}`], extraArgs: [`-d${hostile}`], storeDir: `/nix/store${hostile}`, timeout: 600 };
  c.nixosVms = {
    work: vm({
      rootOverlay: { type: "raw", size: "8G" },
      additionalDisks: [
        { path: `/var/lib/vmsilo/d${hostile}.qcow2`, format: "qcow2", createSize: "20G", id: "data" },
        { path: `/var/lib/vmsilo/s${hostile}.raw`, createSize: "1G" },
      ],
      sharedDirectories: { data: { path: `/srv/data${hostile}` } },
      sharedHome: true,
      network: {
        interfaces: {
          lan: { dhcp: true },
          nat: { type: "user", restrictNetwork: true, forwardPorts: [{ host: { port: 2222 }, guest: { port: 22 } }, { from: "guest", host: { address: "127.0.0.1", port: 80 }, guest: { address: "10.0.2.100", port: 80 } }] },
        },
      },
      qemu: { shares9p: { media: { path: `/srv/media${hostile}`, readonly: true } }, extraArgs: ["-device", `usb-tablet${hostile}`] },
    }),
    pc: vm({ qemu: { machine: "q35", console: "serial", cpu: "Skylake-Client,-hle", bios: `/bios${hostile}.bin` }, pciDevices: [{ path: "01:00.0" }] }),
  };
  return c;
}

const HOSTILE = ` sp'q "dq" $HOME \`id\` \\b %i ,c =e`;

function shellcheck(tree: ReturnType<typeof render>, exclude: string[] = []): string {
  const dir = writeTree(tree, tempDir("qemu-shellcheck"));
  try {
    const files = scripts(tree);
    for (const must of ["bin/vm-exec", "libexec/vmsilo/qmp", "libexec/vmsilo/create-disk", "libexec/vmsilo/work/launch", "libexec/vmsilo/pc/stop"]) assert.ok(files.includes(must), must);
    const r = spawnSync("shellcheck", ["-x", "--severity=style", "--shell=bash", "--format=gcc", ...(exclude.length ? [`--exclude=${exclude.join(",")}`] : []), "--", ...files], { cwd: dir, encoding: "utf8" });
    const report = (r.stdout + r.stderr).trim();
    assert.ok(r.status === 0 || (r.status === 1 && report !== ""), `shellcheck exited ${r.status}: ${report}`);
    return report;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("shellcheck: every script of a qemu tree is clean (launchers, stop, QMP client, create-disk, vm-exec)", (t) => {
  if (!have("shellcheck")) {
    console.log("SKIP: shellcheck not installed (apt-get install shellcheck)");
    return t.skip("shellcheck not installed");
  }
  assert.equal(shellcheck(render(qemuEverything())), "");
  // Hostile values: the same two exclusions as the other hostile check (data in single quotes).
  assert.equal(shellcheck(render(qemuEverything(HOSTILE)), ["SC2016", "SC1003"]), "");
});

test("bash -n: vm-exec and the qemu launchers parse with hostile values", () => {
  const tree = render(qemuEverything(HOSTILE));
  for (const path of scripts(tree)) {
    const r = spawnSync("bash", ["-n"], { input: fileAt(tree, path).content, encoding: "utf8" });
    assert.equal(r.status, 0, `${path}: ${r.stderr}`);
  }
});

test("systemd-analyze verify: the units of a qemu tree, with multi-user.target; every Exec*= program exists", (t) => {
  if (!have("systemd-analyze")) {
    console.log("SKIP: systemd-analyze not installed (apt-get install systemd)");
    return t.skip("systemd-analyze not installed");
  }
  for (const config of [qemuEverything(), qemuEverything(HOSTILE)]) {
    const tree = render(config);
    const root = buildStubRoot(config, tree);
    try {
      const r = verifySystem(root, root.systemUnits);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr.trim(), "", `systemd-analyze printed:\n${r.stderr}`);
      const missing: string[] = [];
      for (const u of root.systemUnits) {
        for (const exe of execPaths(readFileSync(join(root.systemUnitDir, u), "utf8"))) {
          try {
            accessSync(join(root.dir, exe), constants.X_OK);
          } catch {
            missing.push(`${u}: ${exe}`);
          }
        }
      }
      assert.deepEqual(missing, []);
    } finally {
      root.cleanup();
    }
  }
});
