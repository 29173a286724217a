/**
 * The tray end to end between two session buses (Debian's dbus-daemon): on the "guest" bus a test
 * StatusNotifierItem (agent/test/vmsilo-test-sni.c) and vmsilo-tray-guest as the session's watcher;
 * on the "host" bus vmsilo-tray-host, connected to the guest daemon over a unix socket standing in
 * for vsock, and a StatusNotifierWatcher (vmsilo-tray-guest again, as the desktop's) that the host
 * side registers its items with. busctl looks at the host bus as a panel would.
 * Then the host side against a hostile guest: a socket that sends what no guest daemon would.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Socket } from "node:net";
import { join } from "node:path";
import { tempDirRemovedAtExit } from "../support/harness.js";
import {
  PREAMBLE, T, WATCHER, buildTray, busctl, frame, itemPayload, itemProp, menuPayload, readOr, registered, rssKiB, run, startBus, trayPrerequisites, until,
  type ItemFields,
} from "./support.js";

const missing = trayPrerequisites();
if (missing) console.log(`SKIP: tray tests not run: ${missing}`);
const skip = missing ?? false;
const cleanups: Array<() => void> = [];
after(() => cleanups.reverse().forEach((f) => f()));

/** Two buses, the guest daemon, the host proxy and the desktop's watcher; the test item is started by the caller. */
function topology(label: string) {
  const bins = buildTray();
  const dir = tempDirRemovedAtExit(`tray-${label}`);
  const guestBus = startBus(dir, "guest");
  const hostBus = startBus(dir, "host");
  cleanups.push(guestBus.stop, hostBus.stop);
  const sock = join(dir, "tray.sock");
  const guest = run(guestBus.address, [bins.guest, "--listen-unix", sock, "--log-level", "debug"]);
  const watcher = run(hostBus.address, [bins.guest, "--listen-unix", join(dir, "desktop.sock")]);
  const host = run(hostBus.address, [bins.host, "--vm-name", "work", "--color", "#ff0000", "--unix", sock, "--log-level", "debug"]);
  for (const p of [guest, watcher, host]) cleanups.push(() => p.proc.kill());
  const events = join(dir, "events");
  const item = (args: string[]) => {
    const p = run(guestBus.address, [bins.sni, "--events", events, ...args]);
    cleanups.push(() => p.proc.kill());
    return p;
  };
  const logs = () => `guest daemon:\n${guest.stderr()}\nhost proxy:\n${host.stderr()}\nevents:\n${readOr(events)}`;
  return { dir, guestBus: guestBus.address, hostBus: hostBus.address, guest, host, watcher, item, events, logs };
}

test("a guest's item appears on the host's bus titled with the VM, tinted with its colour, without its icon name or theme path", { skip }, async () => {
  const t = topology("export");
  // 4x4 pixels of #102030, opaque; a hostile icon name and theme path that must not reach the host.
  t.item(["--title", "Mail", "--icon", "4:4:ff102030", "--icon-name", "/etc/shadow", "--icon-theme-path", "/etc"]);
  const [key] = (await until(() => registered(t.hostBus).length === 1 && registered(t.hostBus), 10000, t.logs)) as string[];
  const service = key.slice(0, key.indexOf("/"));
  assert.equal(key, `${service}/StatusNotifierItem`);
  assert.equal(itemProp(t.hostBus, service, "Title"), "[work] Mail");
  assert.equal(itemProp(t.hostBus, service, "Status"), "NeedsAttention");
  assert.equal(itemProp(t.hostBus, service, "Category"), "Communications");
  assert.equal(itemProp(t.hostBus, service, "Id"), "vmsilo-work-1");
  assert.equal(itemProp(t.hostBus, service, "IconName"), "");
  assert.equal(itemProp(t.hostBus, service, "IconThemePath"), "");
  assert.deepEqual(itemProp(t.hostBus, service, "ToolTip"), ["", [], "[work] tip title", "tip\ntext"]);
  const [[w, h, px]] = itemProp(t.hostBus, service, "IconPixmap");
  assert.deepEqual([w, h, px.length], [4, 4, 64]);
  const pixel = (x: number, y: number) => px.slice(4 * (y * 4 + x), 4 * (y * 4 + x) + 4);
  // Inside: half-way from #102030 to #ff0000, alpha kept; the frame: the VM's colour, opaque.
  assert.deepEqual(pixel(1, 1), [0xff, (0x10 + 0xff) >> 1, 0x20 >> 1, 0x30 >> 1]);
  assert.deepEqual(pixel(0, 0), [0xff, 0xff, 0, 0]);
  assert.deepEqual(pixel(3, 2), [0xff, 0xff, 0, 0]);

  // A change in the guest reaches the host (NewTitle followed through).
  const sni = t.item(["--title", "Chat"]);
  const two = (await until(() => registered(t.hostBus).length === 2 && registered(t.hostBus), 10000, t.logs)) as string[];
  const chat = two.map((k: string) => k.slice(0, k.indexOf("/"))).find((s: string) => itemProp(t.hostBus, s, "Title") === "[work] Chat")!;
  assert.ok(chat, t.logs());
  // Without pixels of its own, the item shows a disc in the VM's colour.
  const [[fw, fh, fpx]] = itemProp(t.hostBus, chat, "IconPixmap");
  assert.deepEqual([fw, fh], [22, 22]);
  assert.deepEqual(fpx.slice(4 * (11 * 22 + 11), 4 * (11 * 22 + 11) + 4), [0xff, 0xff, 0, 0]);
  assert.equal(fpx[0], 0, "the disc's corner is transparent");
  sni.proc.kill("SIGUSR1");
  await until(() => itemProp(t.hostBus, chat, "Title") === "[work] Chat again", 10000, t.logs);
  // An item that goes away in the guest goes away on the host.
  sni.proc.kill("SIGUSR2");
  await until(() => registered(t.hostBus).length === 1, 10000, t.logs);
  assert.equal(itemProp(t.hostBus, service, "Title"), "[work] Mail");

  // One job, measured: under 8 MiB resident (D20's budget for a per-VM helper).
  const rss = rssKiB(t.host.proc.pid!);
  assert.ok(rss < 8192, `vmsilo-tray-host: ${rss} KiB resident`);
  console.log(`vmsilo-tray-host RSS with an item: ${rss} KiB; vmsilo-tray-guest: ${rssKiB(t.guest.proc.pid!)} KiB`);
});

test("activation, scrolling and menu events on the host reach the guest's item; the menu is the guest's", { skip }, async () => {
  const t = topology("events");
  t.item(["--title", "Mail"]);
  await until(() => readOr(t.events).includes("registered") && registered(t.hostBus).length === 1, 10000, t.logs);
  const service = registered(t.hostBus)[0].split("/")[0];
  const call = (path: string, iface: string, ...args: string[]) => assert.ok(busctl(t.hostBus, ["call", service, path, iface, ...args]), `${args[0]}: ${t.logs()}`);
  call("/StatusNotifierItem", "org.kde.StatusNotifierItem", "Activate", "ii", "10", "20");
  call("/StatusNotifierItem", "org.kde.StatusNotifierItem", "SecondaryActivate", "ii", "1", "2");
  call("/StatusNotifierItem", "org.kde.StatusNotifierItem", "ContextMenu", "ii", "3", "4");
  call("/StatusNotifierItem", "org.kde.StatusNotifierItem", "Scroll", "is", "-3", "horizontal");
  assert.equal(itemProp(t.hostBus, service, "Menu"), "/MenuBar");
  const [revision, root] = busctl(t.hostBus, ["call", service, "/MenuBar", "com.canonical.dbusmenu", "GetLayout", "iias", "0", "-1", "0"]);
  assert.ok(revision >= 1);
  const labels = (node: any): any => [node[0], node[1].label?.data ?? node[1].type?.data ?? "", node[2].map((c: any) => labels(c.data))];
  assert.deepEqual(labels(root), [0, "", [[1, "Open", []], [2, "separator", []], [3, "More", [[4, "Deeper", []]]]]]);
  const deeper = root[2][2].data[2][0].data[1];
  assert.equal(deeper["toggle-type"].data, "checkmark");
  assert.equal(deeper["toggle-state"].data, 1);
  call("/MenuBar", "com.canonical.dbusmenu", "Event", "isvu", "1", "clicked", "i", "0", "0");
  call("/MenuBar", "com.canonical.dbusmenu", "AboutToShow", "i", "3");
  // An entry the guest never sent is not forwarded.
  call("/MenuBar", "com.canonical.dbusmenu", "Event", "isvu", "99", "clicked", "i", "0", "0");
  const want = ["Activate 10 20", "SecondaryActivate 1 2", "ContextMenu 3 4", "Scroll -3 horizontal", "Event 1 clicked", "AboutToShow 3"];
  await until(() => want.every((l) => readOr(t.events).split("\n").includes(l)), 10000, t.logs);
  assert.doesNotMatch(readOr(t.events), /Event 99/);
});

/** The host proxy against a socket that sends `frames` after the preamble; what it said and how it ended. */
async function hostile(label: string, frames: Buffer[], preamble: Buffer = PREAMBLE): Promise<{ status: number | null; stderr: string; registeredAfter: number }> {
  const bins = buildTray();
  const dir = tempDirRemovedAtExit(`tray-hostile-${label}`);
  const bus = startBus(dir, "host");
  cleanups.push(bus.stop);
  const watcher = run(bus.address, [bins.guest, "--listen-unix", join(dir, "desktop.sock")]);
  cleanups.push(() => watcher.proc.kill());
  await until(() => busctl(bus.address, ["get-property", ...WATCHER, "ProtocolVersion"]) !== null, 5000, () => watcher.stderr());
  let peer: Socket | undefined;
  const sock = join(dir, "tray.sock");
  const server = createServer((s) => {
    peer = s;
    s.on("error", () => {});
    s.on("data", () => {});
    s.write(Buffer.concat([preamble, ...frames]));
  });
  await new Promise<void>((r) => server.listen(sock, r));
  cleanups.push(() => server.close());
  const host = run(bus.address, [bins.host, "--vm-name", "work", "--color", "#00ff00", "--unix", sock]);
  cleanups.push(() => host.proc.kill());
  const timer = setTimeout(() => host.proc.kill(), 10000);
  const status = await host.exited;
  clearTimeout(timer);
  peer?.destroy();
  return { status, stderr: host.stderr(), registeredAfter: registered(bus.address).length };
}

const item = (f: ItemFields = {}) => frame(T.ITEM, itemPayload(f));
const CASES: Array<[string, Buffer[], RegExp, Buffer?]> = [
  ["wrong preamble", [], /not the tray protocol/, Buffer.from("VMR\x01")],
  ["another version", [], /unsupported tray protocol version 2/, Buffer.from("VMT\x02")],
  ["unknown frame type", [frame(0x81, Buffer.alloc(12))], /frame type 0x81 is not one the guest sends/],
  ["frame over the bound, refused from its header", [Buffer.from([T.ITEM, 0x7f, 0xff, 0xff, 0xff])], /frame type 0x01 of 2147483647 bytes/],
  ["icon over 64x64", [item({ width: 65, height: 65 })], /frame type 0x01 of \d+ bytes|icon of 65x65 pixels/],
  ["icon of 64x1 claimed, 0 pixels sent", [item({ width: 64, height: 1, pixels: Buffer.alloc(0) })], /icon pixels: the frame ends/],
  ["title over the bound", [item({ title: "x".repeat(513) })], /item title: 513 bytes/],
  ["title with an escape sequence", [item({ title: "a\x1b]0;pwned\x07" })], /item title: not UTF-8 text without control characters/],
  ["title not UTF-8", [item({ title: Buffer.from([0x61, 0xff]) })], /not UTF-8/],
  ["status out of range", [item({ status: 9 })], /out of range/],
  ["trailing bytes", [frame(T.ITEM, Buffer.concat([itemPayload(), Buffer.from([0])]))], /1 bytes after the end/],
  ["more than 32 items", Array.from({ length: 33 }, (_, i) => item({ id: i + 1 })), /more than 32 items at once/],
  ["menu of an unknown item", [frame(T.MENU, menuPayload(7, [{ id: 1 }]))], /menu of item 7, which the guest has not sent/],
  ["menu entry whose parent comes later", [item(), frame(T.MENU, menuPayload(1, [{ id: 1, parent: 1, flags: 0x23 }]))], /parent 1 is not an earlier entry with a submenu/],
  [
    "menu nested 9 levels",
    [item(), frame(T.MENU, menuPayload(1, Array.from({ length: 9 }, (_, i) => ({ id: i + 1, parent: i === 0 ? 0xffff : i - 1, flags: 0x23 }))))],
    /nested 9 levels deep/,
  ],
  ["menu entries sharing an id", [item(), frame(T.MENU, menuPayload(1, [{ id: 5 }, { id: 5 }]))], /id 5 used twice/],
  ["menu of 257 entries", [item(), frame(T.MENU, menuPayload(1, Array.from({ length: 257 }, (_, i) => ({ id: i + 1, label: "" }))))], /257 entries/],
  ["remove of an unknown item", [frame(T.REMOVE, Buffer.alloc(4))], /remove of item 0/],
];

for (const [label, frames, why, preamble] of CASES) {
  test(`the host side refuses a guest that sends: ${label}`, { skip }, async () => {
    const r = await hostile(label.replace(/\W+/g, "-"), frames, preamble);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /refused what the guest sent, removing the VM's items: /);
    assert.match(r.stderr, why);
    // Whatever came before the bad frame is gone from the desktop with it.
    assert.equal(r.registeredAfter, 0, r.stderr);
  });
}

test("a good item before a bad frame is exported, then removed with the VM's others", { skip }, async () => {
  const r = await hostile("good-then-bad", [item({ title: "fine" }), frame(T.ITEM, Buffer.alloc(13))]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /item 1 \(\[work\] fine\) exported/);
  assert.match(r.stderr, /frame type 0x01 of 13 bytes \(expected 17 to \d+\)/);
});
