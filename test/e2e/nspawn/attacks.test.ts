/**
 * The desktop user against the generated units, under real systemd (harness.ts, attacks.sh): the
 * user owns their home and /shared, starts VMs through polkit, and tries to turn that into root:
 *
 *  - swapping a share's directory for a link to a root-only directory while its root virtiofsd
 *    starts (an atomic exchange in a tight loop, raced against RUNS restarts of the share's unit):
 *    no started virtiofsd may ever see the secret;
 *  - planting links in the VM's runtime directories (the ones a helper running as the user owns,
 *    and the VM directory itself), and in place of the socket cloud-hypervisor hands to the user;
 *  - pointing a disk image in a directory of theirs at a root-only file, or having the VM create
 *    its disk there: the VM does not start and says why.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { shellQuote } from "../../../src/shell/quote.js";
import { ROOT, example } from "../../support/harness.js";
import { skip } from "../support.js";
import { bootNspawn, nspawnPrerequisites } from "./harness.js";

const RUNS = 150;

/** A VM of a stand-in hypervisor, its images at a store path of its own. */
function standinVm(name: string, n: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const store = `/nix/store/${"4".repeat(31)}${n}-vmsilo-rootfs-${name}`;
  return { kernel: `${store}/bzImage`, initramfs: `${store}/initrd`, rootDisk: { path: `${store}/nixos.erofs` }, memory: 512, cpus: 1, ...extra };
}

test(`the user cannot reach root through a share (raced ${RUNS} times), the runtime directories or a disk image`, (t) => {
  const why = nspawnPrerequisites();
  if (why) return skip(t, why);
  const base = example("desktop") as Record<string, any>;
  const home = base.user.home as string;
  const facts = {
    vm: "sv",
    ch_vm: "sc",
    share_dir: `${home}/share`,
    share_unit: "vmsilo-sv-virtiofsd-share.service",
    share_mount: "/run/vmsilo/sv/virtiofs/share",
    secret: "/var/lib/vmsilo-e2e-secret",
    disk_vm: "sd",
    linked_disk: `${home}/vmdisks/data.img`,
    create_vm: "sn",
    created_disk: `${home}/newdisks/data.img`,
    runs: String(RUNS),
  };
  const config = {
    ...base,
    nixosVms: {
      sv: standinVm("sv", 1, { gpu: true, sharedDirectories: { share: { path: facts.share_dir } } }),
      sc: standinVm("sc", 2, { hypervisor: "cloud-hypervisor" }),
      // Created by the test itself (the harness would make it root's).
      sd: standinVm("sd", 3, { additionalDisks: [{ path: facts.linked_disk, id: "data", createSize: "16M" }] }),
      sn: standinVm("sn", 4, { additionalDisks: [{ path: facts.created_disk, id: "data", createSize: "16M" }] }),
    },
  };
  const driver = [...Object.entries(facts).map(([k, v]) => `${k}=${shellQuote(v)}`), readFileSync(join(ROOT, "test", "e2e", "nspawn", "attacks.sh"), "utf8")].join("\n");
  const run = bootNspawn({ label: "attacks", config, driver, timeoutS: 420 });
  t.after(run.remove);
  assert.ok(run.done, run.context());
  assert.deepEqual(run.failed, [], run.context());
  for (const check of ["share-never-leaked", "share-race-served", "user-paths-in-root-dirs", "run-root-still-roots", "vsock-never-planted", "linked-disk-refused", "created-disk-refused"]) {
    assert.match(run.result, new RegExp(`^ok ${check}$`, "m"), `${check}\n${run.context()}`);
  }
  const race = /^share-race served (\d+) refused (\d+) leaked (\d+)$/m.exec(run.result);
  assert.ok(race, run.context());
  console.log(`share race: ${race[1]} starts served the share, ${race[2]} were refused (the link), ${race[3]} leaked`);
});
