/** The disposable VM's run in systemd-nspawn (disposable.sh), for its test and its benchmark. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../../support/harness.js";
import { CACHE, qemuTestConfig, testGuest, uniqueVmName, vmsiloToolsPackage } from "../support.js";
import { REPO_IN_CONTAINER, STAGE } from "../standins/index.js";
import { bootNspawn, nspawnPrerequisites, type NspawnRun } from "./harness.js";

/** Boots the disposable VM's container and runs disposable.sh; why when it cannot run here. */
export function runDisposables(label: string): NspawnRun | string {
  const why = nspawnPrerequisites();
  if (why) return why;
  const g = testGuest();
  if (typeof g === "string") return `systemd-nspawn e2e: ${g}`;
  const pat = uniqueVmName("dsp").slice(0, 20);
  const inStage = (p: string) => p.replaceAll(CACHE, `${STAGE}/cache`);
  const config = qemuTestConfig(g, pat, {
    kernelParams: ["console=ttyS0", "quiet"],
    stopTimeout: 20,
    disposable: { enable: true, slots: 2, preload: 1 },
    // Each slot's qemu binds its agent port in its working directory (a drop-in sets it per slot).
    extraArgs: ["-device", "virtio-serial-device,id=agentbus", "-chardev", "socket,id=agent,path=agent-port.socket,server=on,wait=off", "-device", "virtserialport,bus=agentbus.0,chardev=agent,name=vmsilo.agent"],
  }) as Record<string, any>;
  config.programs.jq = "/usr";
  config.startTimeout = 90;
  const driver = [`pat=${pat}`, `relay_js=${REPO_IN_CONTAINER}/dist/test/e2e/agent-relay.js`, `tools=${inStage(vmsiloToolsPackage())}`, readFileSync(join(ROOT, "test", "e2e", "nspawn", "disposable.sh"), "utf8")].join("\n");
  return bootNspawn({ label, config: JSON.parse(inStage(JSON.stringify(config))), driver, timeoutS: 600 });
}

