/**
 * The stand-in packages for the programs that cannot run here, laid out as their Nix packages are
 * (bin/…), to be bound at the store paths of `programs.*` inside the container (../nspawn/harness.ts):
 * crosvm, cloudHypervisor (cloud-hypervisor and ch-remote) and vhostDeviceSound. (waylandSeccontext
 * is the real helper, talking to the test compositor: ../../wayland/.)
 * helper.c is linked statically (the GPU unit runs it with an empty root); the VMM halves are Node
 * programs (crosvm.ts, cloud-hypervisor.ts) run from the repository as the container sees it.
 * Each package holds its own copy of helper.c's binary: a package is bound alone at its store path.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../../support/harness.js";
import { CACHE, cached } from "../support.js";
import { createHash } from "node:crypto";

/** Where the container sees this repository and ../shared/vmm (the contract data the stand-ins check against). */
export const STAGE = "/srv/vmsilo-e2e";
export const REPO_IN_CONTAINER = `${STAGE}/repo`;
export const VMM_IN_CONTAINER = `${STAGE}/shared/vmm`;
const NODE = "/usr/bin/node";
const inRepo = (rel: string) => join(REPO_IN_CONTAINER, rel);

export interface StandIns {
  crosvm: string;
  cloudHypervisor: string;
  vhostDeviceSound: string;
}

/** Builds (once per helper.c) the three packages under the e2e cache. */
export function standIns(): StandIns {
  const src = join(ROOT, "test", "e2e", "standins", "helper.c");
  const key = createHash("sha256").update(readFileSync(src)).update(REPO_IN_CONTAINER).digest("hex").slice(0, 16);
  const dir = cached(join(CACHE, `standins-${key}`), (tmp) => {
    const helper = join(tmp, "helper");
    const cc = spawnSync("cc", ["-O2", "-static", "-Wall", "-Werror", `-DSTANDIN_NODE="${NODE}"`, `-DSTANDIN_CROSVM_JS="${inRepo("dist/test/e2e/standins/crosvm.js")}"`, "-o", helper, src], { encoding: "utf8" });
    if (cc.status !== 0) throw new Error(`cc helper.c failed: ${cc.stderr}`);
    const bin = (pkg: string, name: string, text?: string) => {
      mkdirSync(join(tmp, pkg, "bin"), { recursive: true });
      if (text === undefined) copyFileSync(helper, join(tmp, pkg, "bin", name));
      else writeFileSync(join(tmp, pkg, "bin", name), text, { mode: 0o755 });
    };
    bin("crosvm", "crosvm");
    // The mount point of the harness's list of checked `device gpu` command lines (helper.c).
    mkdirSync(join(tmp, "crosvm", "share", "vmsilo-e2e", "accepted"), { recursive: true });
    bin("vhost-device-sound", "vhost-device-sound");
    const ch = inRepo("dist/test/e2e/standins/cloud-hypervisor.js");
    for (const name of ["cloud-hypervisor", "ch-remote"]) bin("cloud-hypervisor", name, `#!/bin/sh\nexec ${NODE} ${ch} ${name} "$@"\n`);
  });
  return {
    crosvm: join(dir, "crosvm"),
    cloudHypervisor: join(dir, "cloud-hypervisor"),
    vhostDeviceSound: join(dir, "vhost-device-sound"),
  };
}
