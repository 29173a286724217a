/**
 * A fake /sys/bus/pci for isolatedPciDevices: the Wi-Fi card 0000:03:00.0 bound to iwlwifi (its
 * interface wlp3s0), the drivers' directories, and the kernel's side of binding (KERNEL_SIDE),
 * which serves the drivers' `unbind` and `bind` files as FIFOs and moves the device's `driver`
 * link as the kernel does. Laid over the real bus by a mount namespace (vfio-bind.test.ts) or bound
 * into a container (e2e/nspawn/vfio.test.ts).
 */
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const BDF = "0000:03:00.0";

export interface FakePciOptions {
  /** wlp3s0 is up: the host uses the card. */
  up?: boolean;
  /** Whether vfio-pci is loaded (default yes). */
  vfioLoaded?: boolean;
}

/** Writes the fake bus into `root`. */
export function fakePciBus(root: string, o: FakePciOptions = {}): void {
  const dev = join(root, "devices", BDF);
  mkdirSync(join(dev, "net", "wlp3s0"), { recursive: true });
  writeFileSync(join(dev, "net", "wlp3s0", "flags"), o.up ? "0x1003\n" : "0x1002\n");
  writeFileSync(join(dev, "class"), "0x028000\n");
  writeFileSync(join(dev, "driver_override"), "(null)\n");
  for (const d of ["iwlwifi", ...(o.vfioLoaded === false ? [] : ["vfio-pci"])]) mkdirSync(join(root, "drivers", d), { recursive: true });
  symlinkSync("../../drivers/iwlwifi", join(dev, "driver"));
}

/**
 * bash, with $pci the fake bus: starts the kernel's side in the background and leaves its pids in
 * $pci_kernel. A write to a driver's unbind removes the device's driver link; one to vfio-pci's
 * bind (with driver_override set to it) makes the link point there.
 */
export const KERNEL_SIDE = String.raw`
[ -p "$pci/drivers/iwlwifi/unbind" ] || mkfifo "$pci/drivers/iwlwifi/unbind"
[ ! -d "$pci/drivers/vfio-pci" ] || [ -p "$pci/drivers/vfio-pci/bind" ] || mkfifo "$pci/drivers/vfio-pci/bind"
( while b=$(cat "$pci/drivers/iwlwifi/unbind"); do rm -f "$pci/devices/$b/driver"; done ) </dev/null >/dev/null 2>&1 &
pci_kernel=$!
if [ -p "$pci/drivers/vfio-pci/bind" ]; then
  ( while b=$(cat "$pci/drivers/vfio-pci/bind"); do
      # (after the unbind, which the loop above may still be finishing)
      while [ -L "$pci/devices/$b/driver" ]; do sleep 0.01; done
      [ "$(cat "$pci/devices/$b/driver_override")" = vfio-pci ] && ln -sfn ../../drivers/vfio-pci "$pci/devices/$b/driver"
    done ) </dev/null >/dev/null 2>&1 &
  pci_kernel="$pci_kernel $!"
fi
`;
